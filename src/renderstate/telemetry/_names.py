"""The names renderstate records under: meter, tracer, spans, attributes, instruments."""

from __future__ import annotations

import dataclasses
from typing import Final

__all__ = ["INSTRUMENTS", "METER_NAME", "TRACER_NAME", "Instrument"]

METER_NAME: Final = "renderstate"
"""The name of the meter the instruments are created on (the instrumentation scope)."""
TRACER_NAME: Final = "renderstate"
"""The name of the tracer the spans are started with."""

RENDER_SPAN: Final = "renderstate.render"
SEND_SPAN: Final = "renderstate.send"

SCOPE: Final = "renderstate.scope"
PROJECT_KEY: Final = "renderstate.project_key"
ATTEMPT_ID: Final = "renderstate.attempt_id"
OUTCOME: Final = "renderstate.outcome"
REASON: Final = "renderstate.reason"


@dataclasses.dataclass(frozen=True)
class Instrument:
    """One instrument renderstate records, as created on the meter."""

    name: str
    """Its OpenTelemetry name."""
    kind: str
    """``counter``, ``up_down_counter`` or ``histogram``."""
    unit: str
    """Its UCUM unit (``{render}`` is a count of renders)."""
    description: str
    """What it measures."""
    attributes: tuple[str, ...] = (SCOPE,)
    """The attributes its values carry; each takes a bounded set of values."""
    buckets: tuple[float, ...] | None = None
    """A histogram's bucket boundaries (advice to the SDK, in seconds)."""


_RENDER_BUCKETS: Final = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
_WAIT_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)

INSTRUMENTS: Final = (
    Instrument("renderstate.renders.started", "counter", "{render}", "Renders started."),
    Instrument("renderstate.renders.completed", "counter", "{render}", "Renders completed."),
    Instrument(
        "renderstate.renders.failed",
        "counter",
        "{render}",
        "Renders failed, by the class of their error (cancelled ones are not counted here).",
        (SCOPE, REASON),
    ),
    Instrument("renderstate.renders.cancelled", "counter", "{render}", "Renders cancelled."),
    Instrument(
        "renderstate.renders.taken_over",
        "counter",
        "{render}",
        "Renders begun again by another owner after their owner's lease expired.",
    ),
    Instrument("renderstate.renders.requeued", "counter", "{render}", "Renders submitted again."),
    Instrument(
        "renderstate.renders.in_progress",
        "up_down_counter",
        "{render}",
        "Renders this process is rendering now.",
    ),
    Instrument(
        "renderstate.renders.queued",
        "up_down_counter",
        "{render}",
        "Renders started in this process that wait for a worker of its executor.",
    ),
    Instrument(
        "renderstate.render.duration",
        "histogram",
        "s",
        "Seconds from a render's begin to its end, by outcome.",
        (SCOPE, OUTCOME),
        _RENDER_BUCKETS,
    ),
    Instrument(
        "renderstate.render.queue_wait",
        "histogram",
        "s",
        "Seconds from a render's start to its begin.",
        (SCOPE,),
        _WAIT_BUCKETS,
    ),
)
"""Every instrument, in the order of the docs' table."""
