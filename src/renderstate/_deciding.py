"""Deciding a transition: the edge from the stored status, the change to write, the refusal.

:class:`~renderstate.ProjectLifecycle`'s drivers (sync and awaited) only perform the store
calls that :func:`plan_step` asks for; every decision (which edge, what to write, when to ask the
store, when to refuse) is taken here, and every record is built by :func:`finish`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from renderstate._fields import check_values
from renderstate._layout import Plan, trusted_change
from renderstate._observers import notify_observers
from renderstate._records import Change, TransitionRecord
from renderstate._status import Status, Trigger, sources_of
from renderstate.exceptions import InvalidTransitionError, RenderConflictError

if TYPE_CHECKING:
    from renderstate._lifecycle import ProjectLifecycle

__all__ = ["extra_fields", "finish", "plan_step", "refusal"]

_new_tuple: Final = tuple.__new__


def plan_step(  # noqa: PLR0917 - every transition calls it: positional, as the method was
    lifecycle: ProjectLifecycle[Any],
    trigger: Trigger,
    refreshed: bool,
    output: str | None,
    clear_output: bool,
    fields: Mapping[str, object] | None = None,
) -> tuple[Plan, Change] | None:
    """Decide from the status the object holds now: the change to apply, or None.

    ``None`` means "no edge from what the object holds, which may be stale: ask the
    store and decide again". Once the store has been asked (``refreshed``: a refresh,
    or a write the store refused because the status moved), no edge is a refusal.
    """
    layout = lifecycle._layout
    raw = getattr(lifecycle._project, layout.status_field)
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
        source = lifecycle.status  # UnknownStatusError for a value outside the four
        if refreshed:
            raise refusal(lifecycle, trigger, source)
        return None
    change = plan.change
    if layout.output_field is not None and (output is not None or clear_output):
        # The output is the transition's own payload: written even when the object
        # already holds that value, since the row may not (the object can be stale).
        if output is None:
            output = lifecycle._adapter.empty_output(lifecycle._project, layout.output_field)
        status_field = layout.status_field
        values = {status_field: change.values[status_field], layout.output_field: output}
        if fields:
            values.update(fields)
        change = trusted_change(status_field, change.expected, MappingProxyType(values))
    elif fields:
        # The app's own columns ride in the same guarded UPDATE as the status.
        status_field = layout.status_field
        values = {status_field: change.values[status_field], **fields}
        change = trusted_change(status_field, change.expected, MappingProxyType(values))
    return plan, change


def extra_fields(
    lifecycle: ProjectLifecycle[Any], fields: Mapping[str, object] | None
) -> dict[str, object] | None:
    """The app's extra ``fields`` for a transition, checked before anything is written."""
    if fields is None:
        return None
    layout = lifecycle._layout
    reserved = {layout.status_field: "status_field"}
    if layout.output_field is not None:
        reserved[layout.output_field] = "output_field"
    if lifecycle._columns is not None:
        reserved.update(lifecycle._columns.reserved)
    return check_values(fields, reserved, lifecycle._adapter, lifecycle._project) or None


def finish(
    lifecycle: ProjectLifecycle[Any],
    trigger: Trigger,
    plan: Plan,
    change: Change,
    error: str | None,
) -> TransitionRecord:
    """The record of a transition the store applied, told to the lifecycle's observers."""
    row = plan.row
    record: TransitionRecord = _new_tuple(
        TransitionRecord,
        (
            lifecycle._adapter.project_key(lifecycle._project),
            trigger,
            row.edge,
            plan.source,
            row.target,
            change.values,
            error,
        ),
    )
    if lifecycle._observers:
        notify_observers(lifecycle._observers, record)
    return record


def refusal(
    lifecycle: ProjectLifecycle[Any], trigger: Trigger, source: Status
) -> InvalidTransitionError:
    """The error refusing ``trigger`` from ``source``: a 409 for a second start, else a 400."""
    cls = (
        RenderConflictError
        if trigger is Trigger.START_RENDER and source is Status.PROCESSING
        else InvalidTransitionError
    )
    return cls(
        trigger=trigger.value,
        status=source.value,
        allowed=[s.value for s in sources_of(trigger)],
        project_key=lifecycle.project_key,
    )
