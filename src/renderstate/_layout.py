"""Field layouts: where a model keeps its status and output, and the literals it stores.

A :class:`Layout` names the status and output attributes and maps each
:class:`~renderstate.Status` to the literal the model stores (:class:`Literals`). It
precomputes, once per layout, what every trigger does from every stored literal (a
:class:`Plan`), so a transition reads the status attribute and makes one dictionary
look-up. Layouts without a custom literal map are shared (:func:`layout_for`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeAlias

from renderstate._machine import decide
from renderstate._records import Change
from renderstate._status import Status, Transition, Trigger

__all__ = [
    "DEFAULT_LAYOUT",
    "Layout",
    "Literals",
    "Plan",
    "StatusValues",
    "layout_for",
    "trusted_change",
]


StatusValues: TypeAlias = Mapping[Status, Hashable | Sequence[Hashable]]
"""What ``values=`` takes: each :class:`~renderstate.Status` to the literal the model stores,
or to a list or tuple of literals that all read as that status (the first is the one
written), e.g. ``{Status.PROCESSING: ("QUEUED", "PROCESS")}``. Every literal is of one type,
the column's (``str``, with Django ``TextChoices`` members, or ``int``): map all four statuses
to integers, never ``None``."""


MAX_LITERALS: Final = 500
"""How many literals one status may have: every guarded ``UPDATE`` sends all of its source's
literals as parameters, and databases cap those (PostgreSQL at 65 535, old SQLite at 999)."""


def _literals_of(status: Status, given: object) -> tuple[Hashable, ...]:
    """The literals ``given`` names for ``status``, checked: one, or a non-empty sequence."""
    many = isinstance(given, (list, tuple))
    literals: tuple[Hashable, ...] = tuple(given) if many else (given,)  # type: ignore[arg-type]
    if not literals:
        msg = (
            f"values[{status}] is an empty {type(given).__name__}; give the literal the "
            f"model stores for {status}, or a list of them, the first being the one written"
        )
        raise ValueError(msg)
    if len(literals) > MAX_LITERALS:
        # Refused here, not by the database at the end of a render: the start would
        # commit and the completion's UPDATE fail, leaving the project PROCESSING.
        msg = (
            f"values[{status}] lists {len(literals)} literals; at most {MAX_LITERALS}: every "
            f"guarded UPDATE sends them all as parameters, and databases cap those"
        )
        raise ValueError(msg)
    seen: set[Hashable] = set()
    for position, literal in enumerate(literals):
        where = f"values[{status}][{position}]" if many else f"values[{status}]"
        if literal is None:
            # The guarded UPDATE matches with IN (...), and NULL IN (NULL) is never true
            # in SQL: a status stored as NULL could never be moved on.
            msg = (
                f"{where} is None; a stored literal is a str or an int (SQL's IN never "
                f"matches NULL): give the status column a default such as {status.value!r}"
            )
            raise TypeError(msg)
        if isinstance(literal, (list, tuple, set, frozenset)):
            msg = f"{where} = {literal!r} is a collection; a stored literal is a str or an int"
            raise TypeError(msg)
        try:
            hash(literal)
        except TypeError:
            msg = f"{where} = {literal!r} is not hashable; use a str or an int"
            raise TypeError(msg) from None
        # A set, not a scan of the earlier literals: a long list stays linear.
        if literal in seen:
            msg = f"values[{status}] lists {literal!r} twice; list each literal once"
            raise ValueError(msg)
        seen.add(literal)
    return literals


def _kind(literal: object) -> type:
    """The column type a literal needs: str, int and bool apart, subclasses with their base."""
    for kind in (bool, int, str, bytes):
        if isinstance(literal, kind):
            return kind
    return type(literal)


def _check_one_kind(all_stored: Mapping[Status, tuple[Hashable, ...]]) -> None:
    """Refuse literals of different types: one status column holds one type.

    A partial map such as ``{Status.DRAFT: 10, Status.PROCESSING: 20}`` leaves COMPLETED
    stored as ``"COMPLETED"``: the render would start and its end would then be refused
    by the integer column (PostgreSQL, MariaDB) after the video was made.
    """
    first_status, first = next(iter(all_stored.items()))
    kind = _kind(first[0])
    for status, literals in all_stored.items():
        for literal in literals:
            if _kind(literal) is not kind:
                msg = (
                    f"values stores {first_status} as {first[0]!r} ({kind.__name__}) but "
                    f"{status} as {literal!r} ({_kind(literal).__name__}); a status column "
                    f"holds one type: map every status to a {kind.__name__} (a status left "
                    f"out of values stores its own name, a str)"
                )
                raise TypeError(msg)


class Literals:
    """The two-way map between statuses and the literals a model stores.

    A status may be stored as several literals (an app's ``QUEUED`` and ``PROCESS`` both
    PROCESSING): every one of them reads as that status and is matched by the guarded
    ``UPDATE``; the first is the one a transition writes (:attr:`to_stored`).
    """

    __slots__ = ("all_stored", "from_stored", "to_stored")

    def __init__(self, values: StatusValues | None) -> None:
        all_stored: dict[Status, tuple[Hashable, ...]] = {s: (s.value,) for s in Status}
        for key, given in (values or {}).items():
            try:
                status = Status(key)
            except ValueError:
                msg = (
                    f"values has the key {key!r}, which is not a Status; "
                    f"use Status.DRAFT, Status.PROCESSING, Status.COMPLETED or Status.FAILED"
                )
                raise ValueError(msg) from None
            all_stored[status] = _literals_of(status, given)
        owners: dict[Hashable, Status] = {}
        for status in Status:
            for literal in all_stored[status]:
                clash = owners.get(literal)
                if clash is not None:
                    msg = (
                        f"values stores {clash} and {status} as the same literal {literal!r}, "
                        f"so a stored {literal!r} could not be read back; give each status "
                        f"its own literals (a status left out of values stores its own name)"
                    )
                    raise ValueError(msg)
                owners[literal] = status
        _check_one_kind(all_stored)
        self.all_stored = all_stored
        """Every literal of each status, the written one first."""
        self.to_stored = {status: literals[0] for status, literals in all_stored.items()}
        """The literal a transition writes for each status."""
        self.from_stored: dict[Hashable, Status] = owners
        """The status each stored literal reads as."""

    @property
    def allowed(self) -> list[Hashable]:
        """Every literal the status field may hold, in the order of the statuses."""
        return [literal for status in Status for literal in self.all_stored[status]]

    def same_kind(self, raw: object, status: Status) -> bool:
        """Whether ``raw``, equal to one of ``status``'s literals, is also of its kind.

        ``True == 1 == 1.0`` in Python: a stored ``True`` or ``1.0`` must not read as the
        status stored as ``1``. Subclasses count both ways: a Django ``TextChoices`` member
        given in ``values`` reads the plain ``str`` the database hands back, and a member
        set on the object reads as a plain ``str`` literal. A bool never stands for a number.
        """
        for literal in self.all_stored[status]:
            if literal == raw and _kind(raw) is _kind(literal):
                return True
        return False


_IDENTITY: Final = Literals(None)


class Plan(NamedTuple):
    """What one trigger does from one stored literal, computed once per field layout."""

    row: Transition
    source: Status
    change: Change
    """The change without payload: the status alone, expected to hold ``source``'s literal."""


_new_object: Final = object.__new__


def trusted_change(status_field: str, expected: frozenset[Hashable], values: Any) -> Change:
    """Build a :class:`Change` the lifecycle knows to be valid, without validating it."""
    # Change validates its arguments in __post_init__; the lifecycle builds only valid ones
    # (the status field is in a fresh read-only values proxy, expected is a frozenset of
    # the source's literals), so it skips that work on the hot path. Filling the instance
    # dict directly is what a frozen dataclass's own __init__ does, minus one call per field.
    change: Change = _new_object(Change)
    fields = change.__dict__
    fields["status_field"] = status_field
    fields["expected"] = expected
    fields["values"] = values
    return change


class Layout:
    """A field layout (names and literals) with every plan of the machine precomputed.

    Plans are keyed by the literal the object stores, so the hot path reads the status
    attribute and makes one dictionary look-up, with no enum conversion.
    """

    __slots__ = ("literals", "output_field", "plans", "status_field")

    def __init__(self, status_field: str, output_field: str | None, literals: Literals) -> None:
        self.status_field = status_field
        self.output_field = output_field
        self.literals = literals
        to_stored = literals.to_stored
        plans: dict[Trigger, dict[Hashable, Plan]] = {trigger: {} for trigger in Trigger}
        for trigger in Trigger:
            for source in Status:
                row = decide(trigger, source)
                if row is None:
                    continue
                # Any literal of the source reads as it, and the guarded UPDATE matches
                # them all: another writer may have stored any one of them meanwhile.
                change = Change(
                    status_field,
                    frozenset(literals.all_stored[source]),
                    MappingProxyType({status_field: to_stored[row.target]}),
                )
                plan = Plan(row, source, change)
                for literal in literals.all_stored[source]:
                    plans[trigger][literal] = plan
        self.plans = plans


DEFAULT_LAYOUT: Final = Layout("status", "output_path", _IDENTITY)
_LAYOUTS: dict[tuple[str, str | None], Layout] = {("status", "output_path"): DEFAULT_LAYOUT}
_LAYOUTS_LIMIT: Final = 256


def layout_for(status_field: str, output_field: str | None, values: StatusValues | None) -> Layout:
    """Return the layout for these fields and literals; the shared one when ``values`` is None."""
    if values is not None:
        return Layout(status_field, output_field, Literals(values))
    key = (status_field, output_field)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = Layout(status_field, output_field, _IDENTITY)
        if len(_LAYOUTS) < _LAYOUTS_LIMIT:
            _LAYOUTS[key] = layout
    return layout
