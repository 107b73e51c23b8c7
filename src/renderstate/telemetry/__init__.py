"""Metrics and traces of every render, through the OpenTelemetry API.

There is nothing to call here. The runner and the ledger report each event of a render to
this module, which records it with ``opentelemetry-api`` (``pip install 'renderstate[otel]'``)
on the global meter and tracer providers: the ones your application configures with the
OpenTelemetry SDK. Without an SDK the API's instruments and spans do nothing and nothing
beyond the API is imported; without the API installed, this module does nothing at all.
The API is imported on the first event, not with renderstate.

The instruments (meter :data:`METER_NAME`) are listed in :data:`INSTRUMENTS`. Each render
attempt is one span (tracer :data:`TRACER_NAME`) named ``renderstate.render``, from the
``submit()`` that started it, in the caller's current context, to its end. A job handed to
another process (Celery) ends its span there, renamed ``renderstate.send``, and carries its
context in :attr:`JobSpec.trace <renderstate.runner.JobSpec.trace>`: the worker's
``renderstate.render`` span is its child. See "Metrics and traces" in the docs.

A failing hook is logged, never raised: telemetry cannot fail a render.
"""

from __future__ import annotations

from renderstate.telemetry._events import (
    Trail,
    carried,
    carrier,
    delivered,
    ended,
    handed_off,
    recovered,
    refused,
    rendering,
    requeued,
    saved,
    started,
    submitted,
    taken_over,
    traceparent,
)
from renderstate.telemetry._names import INSTRUMENTS, METER_NAME, TRACER_NAME, Instrument

__all__ = [
    "INSTRUMENTS",
    "METER_NAME",
    "TRACER_NAME",
    "Instrument",
    # The events the runner and the ledger report (telemetry.started(job) ...); an
    # integration that drives renders its own way may report them too.
    "Trail",
    "carried",
    "carrier",
    "delivered",
    "ended",
    "handed_off",
    "recovered",
    "refused",
    "rendering",
    "requeued",
    "saved",
    "started",
    "submitted",
    "taken_over",
    "traceparent",
]
