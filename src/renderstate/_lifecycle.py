"""ProjectLifecycle: the typed facade over one shared ``transitions`` Machine.

Its methods read as a transition's flow: plan from the stored status (``_layout``, from the
table through ``_machine``), apply through the adapter (sync, or awaited: ``_async``), re-read
the store when the status moved, report the record (``_observers``). Paths: ``_paths``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any, Final, Generic, cast

from renderstate._app_columns import AppColumns
from renderstate._async import AWAITABLE, ThreadedAdapter, is_async_adapter
from renderstate._deciding import extra_fields, finish, plan_step, refusal
from renderstate._layout import DEFAULT_LAYOUT, StatusValues, layout_for
from renderstate._machine import MACHINE, can_start_render, decide
from renderstate._memory import DEFAULT_ADAPTER
from renderstate._observers import describe_error, notify_observers
from renderstate._paths import validate_output_path
from renderstate._records import TransitionRecord
from renderstate._status import RENDERABLE_STATUSES, Status, Trigger
from renderstate.exceptions import (
    ProjectNotFoundError,
    UnknownStatusError,
)
from renderstate.typing import Adapter, AsyncAdapter, Observer, ProjectT

__all__ = [
    "MACHINE",
    "ProjectLifecycle",
    "can_start_render",
    "decide",
    "notify_observers",
    "validate_output_path",
]

# renderstate.ledger imports this name from here; fail() and afail() use it too.
_describe: Final = describe_error

_MISSING: Final = object()

# How often a transition re-decides after the adapter reports that the stored status
# moved under it. Each retry needs another writer to have changed the row in between,
# so this bound is only reached under pathological contention.
_MAX_ATTEMPTS: Final = 8
_ATTEMPTS: Final = range(_MAX_ATTEMPTS)


class ProjectLifecycle(Generic[ProjectT]):
    """Drives one project's ``status`` through the five edges, persisting through an adapter.

    Wraps any object (ORM row, dataclass, plain object) without changing its class.
    With a sync :class:`~renderstate.typing.Adapter`, call :meth:`start_render`,
    :meth:`complete` and :meth:`fail`, or await :meth:`astart_render`, :meth:`acomplete`
    and :meth:`afail` (the adapter then runs in a worker thread, so the event loop never
    blocks). With an :class:`~renderstate.typing.AsyncAdapter`, await the ``a``-methods.
    Both paths take the same decisions, raise the same errors and return the same records.

    Args:
        project: The object whose status this lifecycle drives.
        adapter: Persists each transition, sync or async; defaults to the shared
            in-memory :class:`~renderstate.adapters.memory.MemoryAdapter`.
        status_field: The attribute holding the status.
        output_field: The attribute holding the URL-relative path of the last video, or
            ``None`` for a model with no such column: transitions then write the status
            alone, and the attempt ledger keeps the path (each completed attempt's
            ``output_path``; see :meth:`RenderRunner.video
            <renderstate.RenderRunner.video>`).
        values: Maps each :class:`Status` to the literal the model stores, for models
            spelled differently; statuses left out store their own name. A status the
            model stores as several literals maps to a list of them, the first being the
            one written: ``{Status.PROCESSING: ["QUEUED", "PROCESS"]}`` reads both as
            PROCESSING, and every guarded ``UPDATE`` matches both.
        observers: Callables told about each transition after it has been persisted.
        error_field: The app's own column for why the last render failed, if it has one:
            :meth:`fail` writes the error's one-line description there (cut to the
            column's length, or to 8000 characters for a column without one) in its
            guarded ``UPDATE``, and :meth:`start_render` empties
            it (``None``, or ``""`` for a column that is not nullable) in its own.
        task_id_field: The app's own column for the task system's id of the render
            (a Celery task id): :meth:`start_render` writes its ``task_id`` there in its
            guarded ``UPDATE``, or empties it when the render has none.

    Raises:
        AttributeError: ``project`` has no ``status_field`` or ``output_field`` attribute.
        ValueError: ``values`` gives two statuses one literal, a status no literal, or
            has a key that is not a status; ``error_field`` or ``task_id_field`` is no
            column of the model, one of the other fields, or a column that holds no
            text (an integer, a date: the database would refuse what is written there).
        TypeError: ``adapter`` lacks a method of the adapter contract.
    """

    __slots__ = (
        "__weakref__",
        "_adapter",
        "_async",
        "_columns",
        "_layout",
        "_observers",
        "_project",
    )

    def __init__(
        self,
        project: ProjectT,
        adapter: Adapter[ProjectT] | AsyncAdapter[ProjectT] | None = None,
        *,
        status_field: str = "status",
        output_field: str | None = "output_path",
        values: StatusValues | None = None,
        observers: Iterable[Observer] = (),
        error_field: str | None = None,
        task_id_field: str | None = None,
    ) -> None:
        if project is None:
            # A lookup that found nothing, not a model with other field names.
            msg = (
                "ProjectLifecycle() got None instead of a project: the lookup found no "
                "project. Check for it first and raise "
                "ProjectNotFoundError(project_key=...) (a 404 in the web helpers)."
            )
            raise TypeError(msg)
        if not hasattr(project, status_field) or (
            output_field is not None and not hasattr(project, output_field)
        ):
            option, name = (
                ("status_field", status_field)
                if not hasattr(project, status_field)
                else ("output_field", str(output_field))
            )
            msg = (
                f"{type(project).__name__} has no attribute {name!r}; pass "
                f"{option}='...' naming the attribute that holds it"
            )
            if option == "output_field":
                msg += (
                    ", or output_field=None if the model has no column for the video's "
                    "path (a RenderRunner with a ledger keeps it in the attempts)"
                )
            raise AttributeError(msg)
        if status_field == output_field:
            msg = f"status_field and output_field are both {status_field!r}; they must differ"
            raise ValueError(msg)
        if adapter is None:
            self._adapter: Any = DEFAULT_ADAPTER
            self._async = False
        else:
            self._async = is_async_adapter(adapter)
            self._adapter = adapter
        self._project = project
        self._layout = (
            DEFAULT_LAYOUT
            if values is None and status_field == "status" and output_field == "output_path"
            else layout_for(status_field, output_field, values)
        )
        # No list for the common case of no observer: it would cost every binding 56 bytes.
        self._observers: list[Observer] | None = list(observers) if observers else None
        self._columns: AppColumns | None = (
            None
            if error_field is None and task_id_field is None
            else AppColumns(self, error_field, task_id_field)
        )

    def __repr__(self) -> str:
        key = self.project_key
        field = self._layout.status_field
        stored = getattr(self._project, field, _MISSING)
        return f"<ProjectLifecycle project={key!r} {field}={stored!r}>"

    @property
    def project(self) -> ProjectT:
        """The wrapped object."""
        return self._project

    @property
    def project_key(self) -> object:
        """The project's primary key, as the adapter reads it."""
        key: object = self._adapter.project_key(self._project)
        return key

    @property
    def status(self) -> Status:
        """The project's current status, as the object holds it.

        Raises:
            UnknownStatusError: the stored value is none of the four (mapped) literals.
            ProjectNotFoundError: the status is ``None`` and the adapter finds no key: an
                ORM object that was never saved (a column default applies on insert).
        """
        layout = self._layout
        raw = getattr(self._project, layout.status_field)
        try:
            status = layout.literals.from_stored[raw]
        except (KeyError, TypeError):
            status = None
        if status is not None and layout.literals.same_kind(raw, status):
            return status
        key = self.project_key
        # An ORM object that was never saved has no key, and its status column default is
        # applied only on INSERT; the in-memory adapters store on the object itself.
        in_object = getattr(self._adapter, "stores_in_object", False)
        if raw is None and key is None and not in_object:
            raise ProjectNotFoundError(
                project_key=None,
                detail=(
                    f"its {layout.status_field} is None, as a new object's is until it is "
                    f"saved: add it to the session and flush, or save() it, first"
                ),
            )
        raise UnknownStatusError(
            value=raw,
            allowed=layout.literals.allowed,
            field=layout.status_field,
            project_key=key,
        )

    def _rebound(self, adapter: Adapter[ProjectT]) -> ProjectLifecycle[ProjectT]:
        """The same project, fields, literals and observers, persisted through ``adapter``.

        The async ledger runs the sync ledger's code with the adapter of its own store,
        which writes on the store's connection (in the same transaction as the ledger).
        """
        twin: ProjectLifecycle[ProjectT] = object.__new__(ProjectLifecycle)
        twin._project = self._project
        twin._adapter = adapter
        twin._async = False
        twin._layout = self._layout
        twin._observers = self._observers
        twin._columns = self._columns
        return twin

    @property
    def can_start_render(self) -> bool:
        """Whether :meth:`start_render` would be accepted from the current status."""
        return self.status in RENDERABLE_STATUSES

    def refresh(self) -> Status:
        """Read the stored status and output path into the object, and return the status.

        For an object that may be stale, or that a rolled-back transaction left holding
        values the row does not: nothing is written.

        Raises:
            ProjectNotFoundError: the project is not stored.
            UnknownStatusError: the stored status is not one of the four.
            TypeError: the adapter is async.
        """
        if self._async:
            msg = (
                f"{type(self._adapter).__name__} is an async adapter: "
                f"use 'await lifecycle.arefresh()' instead of refresh()"
            )
            raise TypeError(msg)
        adapter = cast("Adapter[Any]", self._adapter)
        adapter.refresh_status(self._project, self._layout.status_field)
        if self._layout.output_field is not None:
            adapter.refresh_status(self._project, self._layout.output_field)
        return self.status

    async def arefresh(self) -> Status:
        """Await :meth:`refresh`: the same reads, without blocking the event loop.

        Raises:
            ProjectNotFoundError: the project is not stored.
            UnknownStatusError: the stored status is not one of the four.
        """
        adapter = self._awaitable_adapter()
        await adapter.refresh_status(self._project, self._layout.status_field)
        if self._layout.output_field is not None:
            await adapter.refresh_status(self._project, self._layout.output_field)
        return self.status

    def add_observer(self, observer: Observer) -> None:
        """Tell ``observer`` about every later transition of this lifecycle."""
        if self._observers is None:
            self._observers = [observer]
        else:
            self._observers.append(observer)

    def start_render(self, *, task_id: str | None = None) -> TransitionRecord:
        """Move to PROCESSING: the first render, a re-render or a retry.

        Args:
            task_id: The task system's id of the render, written to ``task_id_field``
                when the lifecycle names one (ignored otherwise); ``error_field`` is
                emptied in the same ``UPDATE``.

        Raises:
            RenderConflictError: a render is already running (HTTP 409).
            UnknownStatusError: the stored status is not one of the four.
            ProjectNotFoundError: the project is not stored.
            ValueError: ``task_id`` is longer than ``task_id_field``'s column or holds a
                NUL character; nothing was written.
            TypeError: the adapter is async; await :meth:`astart_render` instead.
        """
        return self._run(
            Trigger.START_RENDER,
            None,
            None,
            clear_output=False,
            fields=None if self._columns is None else self._columns.on_start(task_id),
        )

    def complete(
        self, output_path: str | PurePosixPath, *, fields: Mapping[str, object] | None = None
    ) -> TransitionRecord:
        """Move PROCESSING -> COMPLETED and store ``output_path`` with it.

        Args:
            output_path: The video's URL-relative path, e.g. ``"projects/42/final.mp4"``.
            fields: Other columns of the app to write with it, in the same guarded
                ``UPDATE`` (``{"duration": 12.5, "metadata": {...}}``): a completion that
                is refused writes none of them. A column the ORM stamps on every write
                (``updated_at``) keeps the value given here, on every adapter.

        Raises:
            InvalidOutputPathError: the path is absolute, has ``..``, a scheme, ...
            InvalidTransitionError: the project is not PROCESSING (a late or duplicate call).
            ValueError: ``fields`` names no column of the model, or the status or output
                column, or holds a text longer than its column; nothing was written.
            TypeError: the adapter is async; await :meth:`acomplete` instead.
        """
        extra = extra_fields(self, fields)
        return self._run(
            Trigger.COMPLETE,
            validate_output_path(output_path),
            None,
            clear_output=False,
            fields=extra,
        )

    def fail(
        self, error: BaseException | str | None = None, *, clear_output: bool = False
    ) -> TransitionRecord:
        """Move PROCESSING -> FAILED.

        The previous ``output_path`` is kept, so the last good video stays reachable.
        With ``clear_output=True`` it is set to the adapter's "no video" value: ``None``
        if the field is nullable (and for plain objects), else ``""``; that value is
        written even if the object already holds it, since the row may not.

        Args:
            error: What went wrong; recorded in the returned record for observers.
            clear_output: Forget the previous video as well.

        Raises:
            InvalidTransitionError: the project is not PROCESSING (a late or duplicate call).
            TypeError: the adapter is async; await :meth:`afail` instead.
        """
        text = _describe(error)
        return self._run(
            Trigger.FAIL,
            None,
            text,
            clear_output=clear_output,
            fields=None if self._columns is None else self._columns.on_fail(text),
        )

    @property
    def _names_task_id(self) -> bool:
        """Whether the lifecycle names the app's ``task_id_field``."""
        return self._columns is not None and self._columns.task_id_field is not None

    def _task_id_value(self, task_id: str) -> object:
        """``task_id`` as :meth:`_write_task_id` writes it (see :meth:`AppColumns.task_id_value`).

        Raises:
            ValueError: it is longer than ``task_id_field``'s column or holds a NUL.
        """
        assert self._columns is not None  # the caller checked _names_task_id
        return self._columns.task_id_value(task_id)

    def _write_task_id(self, value: object) -> bool:
        """Write ``value`` to ``task_id_field`` while PROCESSING (:meth:`AppColumns.write_task_id`).

        Returns:
            Whether it was written (``False``: the project is no longer PROCESSING).
        """
        assert self._columns is not None  # the caller checked _names_task_id
        return self._columns.write_task_id(self, value)

    async def astart_render(self, *, task_id: str | None = None) -> TransitionRecord:
        """Await :meth:`start_render`: same edges, errors and record, without blocking the loop.

        Raises:
            RenderConflictError: a render is already running (HTTP 409).
            UnknownStatusError: the stored status is not one of the four.
            ProjectNotFoundError: the project is not stored.
        """
        return await self._arun(
            Trigger.START_RENDER,
            None,
            None,
            clear_output=False,
            fields=None if self._columns is None else self._columns.on_start(task_id),
        )

    async def acomplete(
        self, output_path: str | PurePosixPath, *, fields: Mapping[str, object] | None = None
    ) -> TransitionRecord:
        """Await :meth:`complete`: same edges, errors and record, without blocking the loop.

        Raises:
            InvalidOutputPathError: the path is absolute, has ``..``, a scheme, ...
            InvalidTransitionError: the project is not PROCESSING (a late or duplicate call).
            ValueError: ``fields`` is refused as by :meth:`complete`; nothing was written.
        """
        extra = extra_fields(self, fields)
        return await self._arun(
            Trigger.COMPLETE,
            validate_output_path(output_path),
            None,
            clear_output=False,
            fields=extra,
        )

    async def afail(
        self, error: BaseException | str | None = None, *, clear_output: bool = False
    ) -> TransitionRecord:
        """Await :meth:`fail`: same edges, errors and record, without blocking the loop.

        Raises:
            InvalidTransitionError: the project is not PROCESSING (a late or duplicate call).
        """
        text = _describe(error)
        return await self._arun(
            Trigger.FAIL,
            None,
            text,
            clear_output=clear_output,
            fields=None if self._columns is None else self._columns.on_fail(text),
        )

    # The sync and async drivers below only perform the store calls that plan_step
    # (renderstate._deciding) asks for; it takes every decision, finish() builds the record.

    def _run(
        self,
        trigger: Trigger,
        output: str | None,
        error: str | None,
        clear_output: bool,
        fields: Mapping[str, object] | None = None,
    ) -> TransitionRecord:
        if self._async:
            msg = (
                f"{type(self._adapter).__name__} is an async adapter: "
                f"use 'await lifecycle.{AWAITABLE[trigger]}' instead of {trigger.value}()"
            )
            raise TypeError(msg)
        adapter = self._adapter
        project = self._project
        refreshed = False
        for _ in _ATTEMPTS:
            step = plan_step(self, trigger, refreshed, output, clear_output, fields)
            if step is None:
                adapter.refresh_status(project, self._layout.status_field)
            elif adapter.apply(project, step[1]):
                return finish(self, trigger, step[0], step[1], error)
            refreshed = True
        raise refusal(self, trigger, self.status)

    async def _arun(
        self,
        trigger: Trigger,
        output: str | None,
        error: str | None,
        clear_output: bool,
        fields: Mapping[str, object] | None = None,
    ) -> TransitionRecord:
        adapter = self._awaitable_adapter()
        project = self._project
        refreshed = False
        for _ in _ATTEMPTS:
            step = plan_step(self, trigger, refreshed, output, clear_output, fields)
            if step is None:
                await adapter.refresh_status(project, self._layout.status_field)
            elif await adapter.apply(project, step[1]):
                return finish(self, trigger, step[0], step[1], error)
            refreshed = True
        raise refusal(self, trigger, self.status)

    def _awaitable_adapter(self) -> AsyncAdapter[Any]:
        # A sync adapter's calls run in a worker thread, so the event loop never blocks.
        return self._adapter if self._async else ThreadedAdapter(self._adapter)
