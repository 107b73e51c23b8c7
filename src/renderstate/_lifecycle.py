"""ProjectLifecycle: the typed facade over one shared ``transitions`` Machine."""

from __future__ import annotations

import logging
import re
from collections.abc import Hashable, Iterable, Mapping
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any, Final, Generic

from transitions import Machine

from renderstate._memory import DEFAULT_ADAPTER
from renderstate._records import Change, TransitionRecord
from renderstate._status import (
    INITIAL_STATUS,
    RENDERABLE_STATUSES,
    TRANSITIONS,
    Status,
    Transition,
    Trigger,
    sources_of,
)
from renderstate.exceptions import (
    InvalidOutputPathError,
    InvalidTransitionError,
    RenderConflictError,
    UnknownStatusError,
)
from renderstate.typing import Adapter, Observer, ProjectT

__all__ = [
    "MACHINE",
    "ProjectLifecycle",
    "can_start_render",
    "decide",
    "notify_observers",
    "validate_output_path",
]

logger = logging.getLogger("renderstate")

_MISSING: Final = object()

# How often a transition re-decides after the adapter reports that the stored status
# moved under it. Each retry needs another writer to have changed the row in between,
# so this bound is only reached under pathological contention.
_MAX_ATTEMPTS: Final = 8


def _build_machine() -> Machine:
    return Machine(
        model=None,
        states=[s.value for s in Status],
        initial=INITIAL_STATUS.value,
        transitions=[
            {"trigger": t.trigger.value, "source": t.source.value, "dest": t.target.value}
            for t in TRANSITIONS
        ],
        auto_transitions=False,
        name="renderstate",
    )


MACHINE: Final = _build_machine()
"""The one ``transitions.Machine`` of the process, built from :data:`TRANSITIONS`.

It holds no model: lifecycles ask it which edge a trigger takes from a status, so
wrapping a project costs no machine construction and never touches the user's class.
"""

_ADAPTER_METHODS: Final = ("apply", "refresh_status", "project_key", "empty_output")

_ROWS: Final = {(t.trigger, t.source): t for t in TRANSITIONS}


def decide(trigger: Trigger, source: Status) -> Transition | None:
    """Return the table row ``trigger`` takes from ``source``, or ``None`` if there is none."""
    # Trigger and Status are str enums: they hash and compare as the Machine's names.
    event = MACHINE.events.get(trigger)
    candidates = event.transitions.get(source) if event is not None else None
    if not candidates:
        return None
    row = _ROWS[(trigger, source)]
    if candidates[0].dest != row.target:  # pragma: no cover - guards the derivation
        msg = f"machine and table disagree on {trigger} from {source}"
        raise AssertionError(msg)
    return row


def can_start_render(status: object) -> bool:
    """Tell whether a render may start from ``status`` (a :class:`Status` or its literal).

    Raises:
        UnknownStatusError: ``status`` is not one of the four literals.
    """
    try:
        parsed = Status(status)
    except (ValueError, TypeError):
        raise UnknownStatusError(value=status, allowed=[s.value for s in Status]) from None
    return parsed in RENDERABLE_STATUSES


_SCHEME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def validate_output_path(path: object) -> str:
    """Return ``path`` as a URL-relative POSIX string, or raise :class:`InvalidOutputPathError`."""
    if isinstance(path, PurePosixPath):
        path = str(path)
    if not isinstance(path, str):
        raise InvalidOutputPathError(path=path, reason=f"it is a {type(path).__name__}, not a str")
    reason = None
    if not path.strip():
        reason = "it is empty"
    elif _CONTROL.search(path):
        reason = "it contains a NUL or control character"
    elif "\\" in path:
        reason = "it contains a backslash; use '/' as the separator"
    elif _SCHEME.match(path):
        reason = "it has a URL scheme; store the path below the media root, not a URL"
    elif path.startswith("/"):
        reason = "it is absolute"
    else:
        segments = path.split("/")
        if ".." in segments:
            reason = "it contains a '..' segment"
        elif "." in segments or "" in segments:
            reason = "it is not normalised (empty or '.' segments)"
    if reason is not None:
        raise InvalidOutputPathError(path=path, reason=reason)
    return path


def _describe(error: BaseException | str | None) -> str | None:
    if error is None or isinstance(error, str):
        return error
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _Literals:
    """The two-way map between statuses and the literals a model stores."""

    __slots__ = ("from_stored", "to_stored")

    def __init__(self, values: Mapping[Status, Hashable] | None) -> None:
        to_stored: dict[Status, Hashable] = {s: s.value for s in Status}
        for key, literal in (values or {}).items():
            try:
                status = Status(key)
            except ValueError:
                msg = (
                    f"values has the key {key!r}, which is not a Status; "
                    f"use Status.DRAFT, Status.PROCESSING, Status.COMPLETED or Status.FAILED"
                )
                raise ValueError(msg) from None
            try:
                hash(literal)
            except TypeError:
                msg = f"values[{status}] = {literal!r} is not hashable; use a str or an int"
                raise TypeError(msg) from None
            to_stored[status] = literal
        from_stored = {literal: status for status, literal in to_stored.items()}
        if len(from_stored) != len(to_stored):
            literal, clash = next(
                (literal, [str(s) for s in Status if to_stored[s] == literal])
                for literal in from_stored
                if sum(to_stored[s] == literal for s in Status) > 1
            )
            msg = (
                f"values stores {' and '.join(clash)} as the same literal {literal!r}, so a "
                f"stored {literal!r} could not be read back; give each status its own literal "
                f"(a status left out of values stores its own name)"
            )
            raise ValueError(msg)
        self.to_stored = to_stored
        self.from_stored = from_stored


_IDENTITY: Final = _Literals(None)


class ProjectLifecycle(Generic[ProjectT]):
    """Drives one project's ``status`` through the five edges, persisting through an adapter.

    Wraps any object (ORM row, dataclass, plain object) without changing its class.

    Args:
        project: The object whose status this lifecycle drives.
        adapter: Persists each transition; defaults to the shared in-memory
            :class:`~renderstate.adapters.memory.MemoryAdapter`.
        status_field: The attribute holding the status.
        output_field: The attribute holding the URL-relative path of the last video.
        values: Maps each :class:`Status` to the literal the model stores, for models
            spelled differently; statuses left out store their own name.
        observers: Callables told about each transition after it has been persisted.

    Raises:
        AttributeError: ``project`` has no ``status_field`` or ``output_field`` attribute.
        ValueError: ``values`` is not a one-to-one map of statuses to literals.
    """

    __slots__ = (
        "_adapter",
        "_literals",
        "_observers",
        "_output_field",
        "_project",
        "_status_field",
    )

    def __init__(
        self,
        project: ProjectT,
        adapter: Adapter[ProjectT] | None = None,
        *,
        status_field: str = "status",
        output_field: str = "output_path",
        values: Mapping[Status, Hashable] | None = None,
        observers: Iterable[Observer] = (),
    ) -> None:
        for option, name in (("status_field", status_field), ("output_field", output_field)):
            if not hasattr(project, name):
                msg = (
                    f"{type(project).__name__} has no attribute {name!r}; pass "
                    f"{option}='...' naming the attribute that holds it"
                )
                raise AttributeError(msg)
        if status_field == output_field:
            msg = f"status_field and output_field are both {status_field!r}; they must differ"
            raise ValueError(msg)
        if adapter is not None:
            missing = [m for m in _ADAPTER_METHODS if not hasattr(adapter, m)]
            if missing:
                msg = (
                    f"{type(adapter).__name__} is not an adapter: it lacks {', '.join(missing)}; "
                    f"see renderstate.typing.Adapter"
                )
                raise TypeError(msg)
        self._project = project
        self._adapter: Adapter[Any] = DEFAULT_ADAPTER if adapter is None else adapter
        self._status_field = status_field
        self._output_field = output_field
        self._literals = _IDENTITY if values is None else _Literals(values)
        self._observers: list[Observer] = list(observers)

    def __repr__(self) -> str:
        key = self.project_key
        stored = getattr(self._project, self._status_field, _MISSING)
        return f"<ProjectLifecycle project={key!r} {self._status_field}={stored!r}>"

    @property
    def project(self) -> ProjectT:
        """The wrapped object."""
        return self._project

    @property
    def project_key(self) -> object:
        """The project's primary key, as the adapter reads it."""
        return self._adapter.project_key(self._project)

    @property
    def status(self) -> Status:
        """The project's current status, as the object holds it.

        Raises:
            UnknownStatusError: the stored value is none of the four (mapped) literals.
        """
        raw = getattr(self._project, self._status_field)
        try:
            return self._literals.from_stored[raw]
        except (KeyError, TypeError):
            raise UnknownStatusError(
                value=raw,
                allowed=list(self._literals.to_stored.values()),
                field=self._status_field,
                project_key=self.project_key,
            ) from None

    @property
    def can_start_render(self) -> bool:
        """Whether :meth:`start_render` would be accepted from the current status."""
        return self.status in RENDERABLE_STATUSES

    def add_observer(self, observer: Observer) -> None:
        """Tell ``observer`` about every later transition of this lifecycle."""
        self._observers.append(observer)

    def start_render(self) -> TransitionRecord:
        """Move to PROCESSING: the first render, a re-render or a retry.

        Raises:
            RenderConflictError: a render is already running (HTTP 409).
            UnknownStatusError: the stored status is not one of the four.
            ProjectNotFoundError: the project is not stored.
        """
        return self._run(Trigger.START_RENDER)

    def complete(self, output_path: str | PurePosixPath) -> TransitionRecord:
        """Move PROCESSING -> COMPLETED and store ``output_path`` with it.

        Args:
            output_path: The video's URL-relative path, e.g. ``"projects/42/final.mp4"``.

        Raises:
            InvalidOutputPathError: the path is absolute, has ``..``, a scheme, ...
            InvalidTransitionError: the project is not PROCESSING (a late or duplicate call).
        """
        path = validate_output_path(output_path)
        return self._run(Trigger.COMPLETE, output=path)

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
        """
        return self._run(Trigger.FAIL, error=_describe(error), clear_output=clear_output)

    def _run(
        self,
        trigger: Trigger,
        *,
        output: str | None = None,
        error: str | None = None,
        clear_output: bool = False,
    ) -> TransitionRecord:
        to_stored = self._literals.to_stored
        source = self.status
        refreshed = False
        for _ in range(_MAX_ATTEMPTS):
            row = decide(trigger, source)
            if row is None:
                if refreshed:
                    raise self._refusal(trigger, source)
                # The object may be stale (loaded before another request or worker moved
                # the row on): ask the store before refusing, and decide again.
                self._adapter.refresh_status(self._project, self._status_field)
                refreshed = True
                fresh = self.status
                if fresh is source:
                    raise self._refusal(trigger, source)
                source = fresh
                continue
            values: dict[str, Any] = {self._status_field: to_stored[row.target]}
            # The output is the transition's own payload: written even when the object
            # already holds that value, since the row may not (the object can be stale).
            if output is not None:
                values[self._output_field] = output
            elif clear_output:
                values[self._output_field] = self._adapter.empty_output(
                    self._project, self._output_field
                )
            frozen = MappingProxyType(values)
            change = Change(self._status_field, frozenset((to_stored[source],)), frozen)
            if self._adapter.apply(self._project, change):
                record = TransitionRecord(
                    project_key=self.project_key,
                    trigger=trigger,
                    edge=row.edge,
                    source=source,
                    target=row.target,
                    changes=frozen,
                    error=error,
                )
                if self._observers:
                    self._notify(record)
                return record
            # The stored status moved under us; the adapter refreshed the object.
            source = self.status
            refreshed = True
        raise self._refusal(trigger, source)

    def _refusal(self, trigger: Trigger, source: Status) -> InvalidTransitionError:
        cls = (
            RenderConflictError
            if trigger is Trigger.START_RENDER and source is Status.PROCESSING
            else InvalidTransitionError
        )
        return cls(
            trigger=trigger.value,
            status=source.value,
            allowed=[s.value for s in sources_of(trigger)],
            project_key=self.project_key,
        )

    def _notify(self, record: TransitionRecord) -> None:
        notify_observers(self._observers, record)


def notify_observers(observers: Iterable[Observer], record: TransitionRecord) -> None:
    """Tell each observer about ``record``; one that raises is logged and the rest still run."""
    for observer in observers:
        try:
            observer(record)
        except Exception:
            # The transition is already persisted: an observer cannot undo it, and one
            # broken observer must not hide the transition from the others.
            logger.exception(
                "renderstate observer %r failed on %s of project %r",
                observer,
                record.edge.value,
                record.project_key,
            )
