"""The one ``transitions`` Machine, derived from the table, and the questions it answers.

:data:`MACHINE` is built once per process from :data:`~renderstate.TRANSITIONS`;
:func:`decide` asks it which table row a trigger takes from a status, and
:func:`can_start_render` answers the question a view asks before it offers "Export video".
"""

from __future__ import annotations

from typing import Final

from transitions import Machine

from renderstate._status import (
    INITIAL_STATUS,
    RENDERABLE_STATUSES,
    TRANSITIONS,
    Status,
    Transition,
    Trigger,
)
from renderstate.exceptions import UnknownStatusError

__all__ = ["MACHINE", "can_start_render", "decide"]


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
