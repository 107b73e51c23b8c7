"""ProjectLifecycle: the typed facade over one shared ``transitions`` Machine."""

from __future__ import annotations

import inspect
import logging
import re
import unicodedata
from collections.abc import Hashable, Iterable, Mapping
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any, Final, Generic, NamedTuple, cast

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
    ProjectNotFoundError,
    RenderConflictError,
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

logger = logging.getLogger("renderstate")

_MISSING: Final = object()

# How often a transition re-decides after the adapter reports that the stored status
# moved under it. Each retry needs another writer to have changed the row in between,
# so this bound is only reached under pathological contention.
_MAX_ATTEMPTS: Final = 8
_ATTEMPTS: Final = range(_MAX_ATTEMPTS)


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
# Paths every rule below accepts: segments of ASCII letters, digits, '_', '-' and '.', each
# starting with a letter, digit, '_' or '-' (so never '', '.' or '..'), no ':' (no scheme).
# One match answers the common case; anything else goes through the rules and their reasons.
_PLAIN_PATH: Final = re.compile(r"[\w\-][\w\-.]*(?:/[\w\-][\w\-.]*)*", re.ASCII)
# Unicode categories refused anywhere in a path: controls (C0, DEL and C1 such as \x85 and
# \x9b), format characters (bidi overrides, zero-width spaces), surrogates, private-use and
# unassigned code points, and the line and paragraph separators.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _refused_character(path: str) -> str | None:
    if path.isascii():
        found = _CONTROL.search(path)
        return None if found is None else found.group()
    for char in path:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def validate_output_path(path: object) -> str:
    """Return ``path`` as a URL-relative POSIX string, or raise :class:`InvalidOutputPathError`."""
    if type(path) is str and _PLAIN_PATH.fullmatch(path) is not None:
        return path
    if isinstance(path, PurePosixPath):
        path = str(path)
    if not isinstance(path, str):
        raise InvalidOutputPathError(path=path, reason=f"it is a {type(path).__name__}, not a str")
    reason = None
    if not path.strip():
        reason = "it is empty"
    elif (char := _refused_character(path)) is not None:
        name = "NUL" if char == "\0" else unicodedata.name(char, "")
        reason = (
            f"it contains the control or format character {char!r} (U+{ord(char):04X}"
            f"{' ' + name if name else ''}); "
            f"paths may not contain control, format, private-use or unassigned characters"
        )
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

    def same_kind(self, raw: object, status: Status) -> bool:
        """Whether ``raw``, equal to ``status``'s literal, is also of the literal's type.

        ``True == 1 == 1.0`` in Python: a stored ``True`` or ``1.0`` must not read as the
        status stored as ``1``. Subclasses count (a Django ``TextChoices`` member is a
        ``str``), but a bool never stands for a number.
        """
        literal = self.to_stored[status]
        kind = type(literal)
        if type(raw) is kind:
            return True
        return isinstance(raw, kind) and not (isinstance(raw, bool) and kind is not bool)


_IDENTITY: Final = _Literals(None)


class _Plan(NamedTuple):
    """What one trigger does from one stored literal, computed once per field layout."""

    row: Transition
    source: Status
    change: Change
    """The change without payload: the status alone, expected to hold ``source``'s literal."""


_new_object: Final = object.__new__
_new_tuple: Final = tuple.__new__


def _trusted_change(status_field: str, expected: frozenset[Hashable], values: Any) -> Change:
    # Change validates its arguments in __post_init__; the lifecycle builds only valid ones
    # (the status field is in a fresh read-only values proxy, expected is a one-literal
    # frozenset), so it skips that work on the hot path. Filling the instance dict directly
    # is what a frozen dataclass's own __init__ does, minus one call per field.
    change: Change = _new_object(Change)
    fields = change.__dict__
    fields["status_field"] = status_field
    fields["expected"] = expected
    fields["values"] = values
    return change


class _Layout:
    """A field layout (names and literals) with every plan of the machine precomputed.

    Plans are keyed by the literal the object stores, so the hot path reads the status
    attribute and makes one dictionary look-up, with no enum conversion.
    """

    __slots__ = ("literals", "output_field", "plans", "status_field")

    def __init__(self, status_field: str, output_field: str, literals: _Literals) -> None:
        self.status_field = status_field
        self.output_field = output_field
        self.literals = literals
        to_stored = literals.to_stored
        plans: dict[Trigger, dict[Hashable, _Plan]] = {trigger: {} for trigger in Trigger}
        for trigger in Trigger:
            for source in Status:
                row = decide(trigger, source)
                if row is None:
                    continue
                change = Change(
                    status_field,
                    frozenset((to_stored[source],)),
                    MappingProxyType({status_field: to_stored[row.target]}),
                )
                plans[trigger][to_stored[source]] = _Plan(row, source, change)
        self.plans = plans


_DEFAULT_LAYOUT: Final = _Layout("status", "output_path", _IDENTITY)
_LAYOUTS: dict[tuple[str, str], _Layout] = {("status", "output_path"): _DEFAULT_LAYOUT}
_LAYOUTS_LIMIT: Final = 256


def _layout(
    status_field: str, output_field: str, values: Mapping[Status, Hashable] | None
) -> _Layout:
    if values is not None:
        return _Layout(status_field, output_field, _Literals(values))
    key = (status_field, output_field)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = _Layout(status_field, output_field, _IDENTITY)
        if len(_LAYOUTS) < _LAYOUTS_LIMIT:
            _LAYOUTS[key] = layout
    return layout


# Adapter classes already checked: class -> whether its ``apply`` is a coroutine function.
# Deciding from the class keeps binding cheap; an instance that gets its methods from
# elsewhere (attributes set on the instance) is checked on its own every time.
_ADAPTER_KINDS: dict[type, bool] = {}


def _is_async_adapter(adapter: object) -> bool:
    cls = type(adapter)
    kind = _ADAPTER_KINDS.get(cls)
    if kind is not None:
        return kind
    missing = [m for m in _ADAPTER_METHODS if not hasattr(adapter, m)]
    if missing:
        msg = (
            f"{cls.__name__} is not an adapter: it lacks {', '.join(missing)}; "
            f"see renderstate.typing.Adapter and renderstate.typing.AsyncAdapter"
        )
        raise TypeError(msg)
    kind = inspect.iscoroutinefunction(adapter.apply)  # type: ignore[attr-defined]
    if all(hasattr(cls, m) for m in _ADAPTER_METHODS) and "apply" not in getattr(
        adapter, "__dict__", ()
    ):
        _ADAPTER_KINDS[cls] = kind
    return kind


class _ThreadedAdapter:
    """Presents a sync adapter as an async one: its store calls run in a worker thread."""

    __slots__ = ("_adapter",)

    def __init__(self, adapter: Adapter[Any]) -> None:
        self._adapter = adapter

    async def apply(self, project: object, change: Change) -> bool:
        import asyncio  # noqa: PLC0415 - only async callers pay for importing asyncio

        return await asyncio.to_thread(self._adapter.apply, project, change)

    async def refresh_status(self, project: object, status_field: str) -> None:
        import asyncio  # noqa: PLC0415 - only async callers pay for importing asyncio

        await asyncio.to_thread(self._adapter.refresh_status, project, status_field)

    def project_key(self, project: object) -> object:
        return self._adapter.project_key(project)

    def empty_output(self, project: object, field: str) -> str | None:
        return self._adapter.empty_output(project, field)


_AWAITABLE: Final = {
    Trigger.START_RENDER: "astart_render()",
    Trigger.COMPLETE: "acomplete(output_path)",
    Trigger.FAIL: "afail(error)",
}


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
        output_field: The attribute holding the URL-relative path of the last video.
        values: Maps each :class:`Status` to the literal the model stores, for models
            spelled differently; statuses left out store their own name.
        observers: Callables told about each transition after it has been persisted.

    Raises:
        AttributeError: ``project`` has no ``status_field`` or ``output_field`` attribute.
        ValueError: ``values`` is not a one-to-one map of statuses to literals.
        TypeError: ``adapter`` lacks a method of the adapter contract.
    """

    __slots__ = ("__weakref__", "_adapter", "_async", "_layout", "_observers", "_project")

    def __init__(
        self,
        project: ProjectT,
        adapter: Adapter[ProjectT] | AsyncAdapter[ProjectT] | None = None,
        *,
        status_field: str = "status",
        output_field: str = "output_path",
        values: Mapping[Status, Hashable] | None = None,
        observers: Iterable[Observer] = (),
    ) -> None:
        if not hasattr(project, status_field) or not hasattr(project, output_field):
            option, name = (
                ("status_field", status_field)
                if not hasattr(project, status_field)
                else ("output_field", output_field)
            )
            msg = (
                f"{type(project).__name__} has no attribute {name!r}; pass "
                f"{option}='...' naming the attribute that holds it"
            )
            raise AttributeError(msg)
        if status_field == output_field:
            msg = f"status_field and output_field are both {status_field!r}; they must differ"
            raise ValueError(msg)
        if adapter is None:
            self._adapter: Any = DEFAULT_ADAPTER
            self._async = False
        else:
            self._async = _is_async_adapter(adapter)
            self._adapter = adapter
        self._project = project
        self._layout = (
            _DEFAULT_LAYOUT
            if values is None and status_field == "status" and output_field == "output_path"
            else _layout(status_field, output_field, values)
        )
        # No list for the common case of no observer: it would cost every binding 56 bytes.
        self._observers: list[Observer] | None = list(observers) if observers else None

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
            allowed=list(layout.literals.to_stored.values()),
            field=layout.status_field,
            project_key=key,
        )

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
        await adapter.refresh_status(self._project, self._layout.output_field)
        return self.status

    def add_observer(self, observer: Observer) -> None:
        """Tell ``observer`` about every later transition of this lifecycle."""
        if self._observers is None:
            self._observers = [observer]
        else:
            self._observers.append(observer)

    def start_render(self) -> TransitionRecord:
        """Move to PROCESSING: the first render, a re-render or a retry.

        Raises:
            RenderConflictError: a render is already running (HTTP 409).
            UnknownStatusError: the stored status is not one of the four.
            ProjectNotFoundError: the project is not stored.
            TypeError: the adapter is async; await :meth:`astart_render` instead.
        """
        return self._run(Trigger.START_RENDER, None, None, clear_output=False)

    def complete(self, output_path: str | PurePosixPath) -> TransitionRecord:
        """Move PROCESSING -> COMPLETED and store ``output_path`` with it.

        Args:
            output_path: The video's URL-relative path, e.g. ``"projects/42/final.mp4"``.

        Raises:
            InvalidOutputPathError: the path is absolute, has ``..``, a scheme, ...
            InvalidTransitionError: the project is not PROCESSING (a late or duplicate call).
            TypeError: the adapter is async; await :meth:`acomplete` instead.
        """
        return self._run(
            Trigger.COMPLETE, validate_output_path(output_path), None, clear_output=False
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
        return self._run(Trigger.FAIL, None, _describe(error), clear_output=clear_output)

    async def astart_render(self) -> TransitionRecord:
        """Await :meth:`start_render`: same edges, errors and record, without blocking the loop.

        Raises:
            RenderConflictError: a render is already running (HTTP 409).
            UnknownStatusError: the stored status is not one of the four.
            ProjectNotFoundError: the project is not stored.
        """
        return await self._arun(Trigger.START_RENDER, None, None, clear_output=False)

    async def acomplete(self, output_path: str | PurePosixPath) -> TransitionRecord:
        """Await :meth:`complete`: same edges, errors and record, without blocking the loop.

        Raises:
            InvalidOutputPathError: the path is absolute, has ``..``, a scheme, ...
            InvalidTransitionError: the project is not PROCESSING (a late or duplicate call).
        """
        return await self._arun(
            Trigger.COMPLETE, validate_output_path(output_path), None, clear_output=False
        )

    async def afail(
        self, error: BaseException | str | None = None, *, clear_output: bool = False
    ) -> TransitionRecord:
        """Await :meth:`fail`: same edges, errors and record, without blocking the loop.

        Raises:
            InvalidTransitionError: the project is not PROCESSING (a late or duplicate call).
        """
        return await self._arun(Trigger.FAIL, None, _describe(error), clear_output=clear_output)

    # The sync and async drivers below only perform the store calls that _plan asks for;
    # every decision (which edge, what to write, when to ask the store, when to refuse)
    # is taken by _plan, and every record is built by _finish.

    def _run(
        self, trigger: Trigger, output: str | None, error: str | None, clear_output: bool
    ) -> TransitionRecord:
        if self._async:
            msg = (
                f"{type(self._adapter).__name__} is an async adapter: "
                f"use 'await lifecycle.{_AWAITABLE[trigger]}' instead of {trigger.value}()"
            )
            raise TypeError(msg)
        adapter = self._adapter
        project = self._project
        refreshed = False
        for _ in _ATTEMPTS:
            step = self._plan(trigger, refreshed, output, clear_output)
            if step is None:
                adapter.refresh_status(project, self._layout.status_field)
            elif adapter.apply(project, step[1]):
                return self._finish(trigger, step[0], step[1], error)
            refreshed = True
        raise self._refusal(trigger, self.status)

    async def _arun(
        self, trigger: Trigger, output: str | None, error: str | None, clear_output: bool
    ) -> TransitionRecord:
        adapter = self._awaitable_adapter()
        project = self._project
        refreshed = False
        for _ in _ATTEMPTS:
            step = self._plan(trigger, refreshed, output, clear_output)
            if step is None:
                await adapter.refresh_status(project, self._layout.status_field)
            elif await adapter.apply(project, step[1]):
                return self._finish(trigger, step[0], step[1], error)
            refreshed = True
        raise self._refusal(trigger, self.status)

    def _awaitable_adapter(self) -> AsyncAdapter[Any]:
        # A sync adapter's calls run in a worker thread, so the event loop never blocks.
        return self._adapter if self._async else _ThreadedAdapter(self._adapter)

    def _plan(
        self, trigger: Trigger, refreshed: bool, output: str | None, clear_output: bool
    ) -> tuple[_Plan, Change] | None:
        """Decide from the status the object holds now: the change to apply, or None.

        ``None`` means "no edge from what the object holds, which may be stale: ask the
        store and decide again". Once the store has been asked (``refreshed``: a refresh,
        or a write the store refused because the status moved), no edge is a refusal.
        """
        layout = self._layout
        raw = getattr(self._project, layout.status_field)
        try:
            plan = layout.plans[trigger].get(raw)
        except TypeError:  # an unhashable value is never a known literal
            plan = None
        # True == 1 == 1.0: only a value of the literal's own type is that literal.
        if (
            plan is not None
            and type(raw) is not str
            and not layout.literals.same_kind(raw, plan.source)
        ):
            plan = None
        if plan is None:
            source = self.status  # UnknownStatusError for a value outside the four
            if refreshed:
                raise self._refusal(trigger, source)
            return None
        change = plan.change
        if output is not None or clear_output:
            # The output is the transition's own payload: written even when the object
            # already holds that value, since the row may not (the object can be stale).
            if output is None:
                output = self._adapter.empty_output(self._project, layout.output_field)
            status_field = layout.status_field
            values = {status_field: change.values[status_field], layout.output_field: output}
            change = _trusted_change(status_field, change.expected, MappingProxyType(values))
        return plan, change

    def _finish(
        self, trigger: Trigger, plan: _Plan, change: Change, error: str | None
    ) -> TransitionRecord:
        row = plan.row
        record: TransitionRecord = _new_tuple(
            TransitionRecord,
            (
                self._adapter.project_key(self._project),
                trigger,
                row.edge,
                plan.source,
                row.target,
                change.values,
                error,
            ),
        )
        if self._observers:
            notify_observers(self._observers, record)
        return record

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
