"""Field layouts: where a model keeps its status and output, and the literals it stores.

A :class:`Layout` names the status and output attributes and maps each
:class:`~renderstate.Status` to the literal the model stores (:class:`Literals`). It
precomputes, once per layout, what every trigger does from every stored literal (a
:class:`Plan`), so a transition reads the status attribute and makes one dictionary
look-up. Layouts without a custom literal map are shared (:func:`layout_for`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from renderstate._machine import decide
from renderstate._records import Change
from renderstate._status import Status, Transition, Trigger

__all__ = ["DEFAULT_LAYOUT", "Layout", "Literals", "Plan", "layout_for", "trusted_change"]


class Literals:
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
    # (the status field is in a fresh read-only values proxy, expected is a one-literal
    # frozenset), so it skips that work on the hot path. Filling the instance dict directly
    # is what a frozen dataclass's own __init__ does, minus one call per field.
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

    def __init__(self, status_field: str, output_field: str, literals: Literals) -> None:
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
                change = Change(
                    status_field,
                    frozenset((to_stored[source],)),
                    MappingProxyType({status_field: to_stored[row.target]}),
                )
                plans[trigger][to_stored[source]] = Plan(row, source, change)
        self.plans = plans


DEFAULT_LAYOUT: Final = Layout("status", "output_path", _IDENTITY)
_LAYOUTS: dict[tuple[str, str], Layout] = {("status", "output_path"): DEFAULT_LAYOUT}
_LAYOUTS_LIMIT: Final = 256


def layout_for(
    status_field: str, output_field: str, values: Mapping[Status, Hashable] | None
) -> Layout:
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
