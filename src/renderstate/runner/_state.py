"""RunnerState: what every concern of one runner shares (adapter, ledger, options, locks, jobs).

The :class:`~renderstate.runner.RenderRunner` facade builds one and hands it to each step of
the flow (starting, owning, publishing, ending) and to the concerns around it (recovering,
stopping), so each module reads its inputs from one named place.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Generic

from renderstate._lifecycle import ProjectLifecycle, notify_observers, validate_output_path
from renderstate._records import TransitionRecord
from renderstate.exceptions import ProjectNotFoundError
from renderstate.ledger import AsyncLedger, Ledger
from renderstate.runner._heartbeat import Heartbeat
from renderstate.runner._locks import _KeyLocks
from renderstate.typing import (
    Adapter,
    AsyncAdapter,
    Executor,
    Observer,
    ProjectLoader,
    ProjectT,
    Renderer,
)

if TYPE_CHECKING:
    from renderstate.runner._owning import Registry


@dataclasses.dataclass(eq=False)
class RunnerState(Generic[ProjectT]):
    """One runner's collaborators, options and shared mutable state."""

    adapter: Adapter[ProjectT]
    async_adapter: AsyncAdapter[ProjectT] | None
    ledger: Ledger | None
    async_ledger: AsyncLedger | None
    """The runner's ledger when it was given an AsyncLedger (``ledger`` is then its threads')."""
    loader: ProjectLoader[ProjectT] | None
    heartbeat: Heartbeat | None
    renderer: Renderer[ProjectT]
    media_root: Path
    executor: Executor
    options: dict[str, Any]
    # Told by the runner itself, after it has released the project's key lock: an
    # observer that submits another project must not wait on a lock held here.
    observers: tuple[Observer, ...]
    output_path_for: Callable[[ProjectT], str] | None
    find_processing: Callable[[], Iterable[ProjectT]] | None
    persist_timeout: float
    progress_interval: float
    registry: Registry[ProjectT]
    immediate: bool | None
    """The runner's ``immediate=``; see ``_immediate`` for what else decides."""
    """Each project's current job here, under the registry's lock (see ``_owning``)."""
    # Each project's key lock orders what must not interleave for that one project: a
    # submit's start and registration, a job's supersession check and what it guards
    # (replacing the video, saving the end). It is held during database round trips,
    # so projects never queue behind each other's database work.
    key_locks: _KeyLocks = dataclasses.field(default_factory=_KeyLocks)
    recovered: dict[object, tuple[object, str]] = dataclasses.field(default_factory=dict)
    """Without a ledger: why recovery failed a project, with the job that was the project's
    current one here when it did (``None``: none), so only a newer job hides the reason."""
    closed: bool = False
    sleep: Callable[[float], None] = time.sleep

    def lifecycle(self, project: ProjectT) -> ProjectLifecycle[ProjectT]:
        """A lifecycle for ``project`` that tells the runner's observers."""
        return ProjectLifecycle(project, self.adapter, observers=self.observers, **self.options)

    def quiet_lifecycle(self, project: ProjectT) -> ProjectLifecycle[ProjectT]:
        """A lifecycle that notifies no observer: the runner does, outside its locks."""
        return ProjectLifecycle(project, self.adapter, **self.options)

    @property
    def failing_options(self) -> dict[str, Any]:
        """The lifecycle options the ledger's ``recover`` and ``sweep`` take (no task id)."""
        return {k: v for k, v in self.options.items() if k != "task_id_field"}

    def notify(self, record: TransitionRecord) -> None:
        """Tell the runner's observers about ``record``."""
        notify_observers(self.observers, record)

    def output_path(self, project: ProjectT) -> str:
        """The URL-relative path a successful render of ``project`` is stored at."""
        key = self.adapter.project_key(project)
        if key is None:
            raise ProjectNotFoundError(project_key=None)
        if self.output_path_for is None:
            return validate_output_path(_default_output_path(key))
        return validate_output_path(self.output_path_for(project))

    def file_for(self, output_path: str) -> Path:
        """Where the file stored at ``output_path`` is on disk."""
        return self.media_root.joinpath(*PurePosixPath(output_path).parts)

    def check_open(self) -> None:
        """Raise ``RuntimeError`` once the runner has been shut down."""
        if self.closed:
            msg = "this RenderRunner has been shut down; create a new one to render again"
            raise RuntimeError(msg)


def _default_output_path(key: object) -> str:
    return f"projects/{key}/final.mp4"
