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

import contextlib
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from renderstate._attempts import Attempt, AttemptState, encode_key
from renderstate._status import Status
from renderstate.exceptions import (
    AttemptOwnedError,
    AttemptSupersededError,
    RenderCancelledError,
    RenderInterruptedError,
)

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, MeterProvider, UpDownCounter
    from opentelemetry.trace import Span, Tracer

    from renderstate._jobs import JobSpec
    from renderstate._records import TransitionRecord

__all__ = ["INSTRUMENTS", "METER_NAME", "TRACER_NAME", "Instrument"]

logger = logging.getLogger("renderstate.telemetry")

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

_MAX_REASONS: Final = 64
"""Distinct failure reasons (error classes) one process reports; the rest count as ``other``."""


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


class _Job(Protocol):
    """What telemetry reads of a :class:`~renderstate.RenderJob`."""

    @property
    def project(self) -> object: ...
    @property
    def project_key(self) -> object: ...
    @property
    def attempt(self) -> Attempt | None: ...
    @property
    def _trail(self) -> Trail | None: ...
    @property
    def _failure(self) -> BaseException | None: ...


class Trail:
    """What telemetry keeps about one job here: its span and where it is counted."""

    def __init__(self, span: Span, scope: str) -> None:
        self.span = span
        self.scope = scope
        self.lock = threading.Lock()
        self.queued = False  # counted in renders.queued, here
        self.queued_at: float | None = None
        self.began: float | None = None  # counted in renders.in_progress since, here
        self.taking_over = False  # its begin takes the attempt over: no queue wait
        self.outcome: str | None = None  # what its saved end was
        self.ended = False


@functools.cache
def _available() -> bool:
    try:
        import opentelemetry.metrics  # noqa: PLC0415 - the optional API, on first use
        import opentelemetry.trace  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


class _Instruments:
    """The instruments on one meter provider."""

    def __init__(self, provider: MeterProvider) -> None:
        self.provider = provider
        meter = provider.get_meter(METER_NAME)
        made: dict[str, Any] = {}
        for spec in INSTRUMENTS:
            if spec.kind == "counter":
                made[spec.name] = meter.create_counter(spec.name, spec.unit, spec.description)
            elif spec.kind == "up_down_counter":
                made[spec.name] = meter.create_up_down_counter(
                    spec.name, spec.unit, spec.description
                )
            else:
                made[spec.name] = meter.create_histogram(
                    spec.name,
                    spec.unit,
                    spec.description,
                    explicit_bucket_boundaries_advisory=spec.buckets,
                )
        self.started: Counter = made["renderstate.renders.started"]
        self.completed: Counter = made["renderstate.renders.completed"]
        self.failed: Counter = made["renderstate.renders.failed"]
        self.cancelled: Counter = made["renderstate.renders.cancelled"]
        self.taken_over: Counter = made["renderstate.renders.taken_over"]
        self.requeued: Counter = made["renderstate.renders.requeued"]
        self.in_progress: UpDownCounter = made["renderstate.renders.in_progress"]
        self.queued: UpDownCounter = made["renderstate.renders.queued"]
        self.duration: Histogram = made["renderstate.render.duration"]
        self.queue_wait: Histogram = made["renderstate.render.queue_wait"]


class _Cache:
    """The instruments and tracer of the current global providers, rebuilt when they change.

    Created on the API's proxy providers they work once an SDK is set; rebuilt, they follow
    a provider that tests set and reset.
    """

    def __init__(self) -> None:
        self.instruments: _Instruments | None = None
        self.tracer: tuple[object, Tracer] | None = None
        self.reasons: set[str] = set()
        self.lock = threading.Lock()


_cache = _Cache()


def _instruments() -> _Instruments:
    from opentelemetry import metrics  # noqa: PLC0415

    provider = metrics.get_meter_provider()
    made = _cache.instruments
    if made is None or made.provider is not provider:
        made = _cache.instruments = _Instruments(provider)
    return made


def _tracer() -> Tracer:
    from opentelemetry import trace  # noqa: PLC0415

    provider = trace.get_tracer_provider()
    made = _cache.tracer
    if made is None or made[0] is not provider:
        made = _cache.tracer = (provider, provider.get_tracer(TRACER_NAME))
    return made[1]


F = TypeVar("F", bound=Callable[..., Any])


def _guarded(hook: F) -> F:
    """Log, never raise, what goes wrong in ``hook``: telemetry cannot fail a render."""

    @functools.wraps(hook)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return hook(*args, **kwargs)
        except Exception:
            logger.exception("renderstate telemetry failed in %s", hook.__name__)
            return None

    return guarded  # type: ignore[return-value]  # same signature as hook


def _scope_of(job: _Job) -> str:
    attempt = job.attempt
    return attempt.scope if attempt is not None else type(job.project).__name__


def _reason(error: BaseException | None) -> str:
    """The error's class name, or ``other`` past the first ``_MAX_REASONS`` of them."""
    name = "unknown" if error is None else type(error).__name__
    with _cache.lock:
        if name in _cache.reasons or len(_cache.reasons) < _MAX_REASONS:
            _cache.reasons.add(name)
            return name
    return "other"


# ------------------------------------------------------------------ the runner's events


@_guarded
def submitted(job: _Job) -> Trail | None:
    """A submit is about to start ``job``: its span begins, in the caller's context."""
    if not _available():
        return None
    scope = _scope_of(job)
    span = _tracer().start_span(
        RENDER_SPAN, attributes={SCOPE: scope, PROJECT_KEY: encode_key(job.project_key)}
    )
    return Trail(span, scope)


@_guarded
def refused(job: _Job, error: BaseException) -> None:
    """The start of ``job`` was refused or failed (a render already runs: 409)."""
    trail = job._trail
    if trail is not None:
        _end_span(trail, "refused", error, failed=True)


@_guarded
def started(job: _Job) -> None:
    """The start of ``job`` committed; it goes to its executor and waits for a worker."""
    trail = job._trail
    if trail is None:
        return
    attempt = job.attempt
    if attempt is not None:
        trail.scope = attempt.scope
        trail.span.set_attributes({SCOPE: attempt.scope, ATTEMPT_ID: attempt.id})
    with trail.lock:
        trail.queued, trail.queued_at = True, time.monotonic()
    instruments = _instruments()
    attributes = {SCOPE: trail.scope}
    instruments.started.add(1, attributes)
    instruments.queued.add(1, attributes)


@_guarded
def handed_off(job: _Job) -> None:
    """``job`` was sent to another process, which continues its trace."""
    trail = job._trail
    if trail is None:
        return
    with trail.lock:
        queued, trail.queued, trail.ended = trail.queued, False, True
    if queued:
        _instruments().queued.add(-1, {SCOPE: trail.scope})
    trail.span.update_name(SEND_SPAN)
    trail.span.set_attribute(OUTCOME, "handed_off")
    trail.span.end()


@_guarded
def delivered(job: _Job, spec: JobSpec) -> Trail | None:
    """``job`` came from another process: its span continues the sender's trace."""
    if not _available():
        return None
    from opentelemetry import propagate, trace  # noqa: PLC0415

    # A spec without a trace context continues the current one (a Celery
    # instrumentation's task span, say).
    parent = None if spec.trace is None else propagate.extract(dict(spec.trace))
    attempt = job.attempt
    scope = _scope_of(job)
    attributes: dict[str, str | int] = {SCOPE: scope, PROJECT_KEY: encode_key(job.project_key)}
    if attempt is not None:
        attributes[ATTEMPT_ID] = attempt.id
    span = _tracer().start_span(
        RENDER_SPAN, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    )
    trail = Trail(span, scope)
    trail.taking_over = attempt is not None and attempt.state is AttemptState.RENDERING
    return trail


@_guarded
def carrier(job: _Job) -> dict[str, str] | None:
    """The context of ``job``'s span, for the spec sent to another process (or ``None``)."""
    trail = job._trail
    if trail is None:
        return None
    from opentelemetry import propagate, trace  # noqa: PLC0415

    found: dict[str, str] = {}
    propagate.inject(found, context=trace.set_span_in_context(trail.span))
    return found or None


@contextlib.contextmanager
def rendering(job: _Job) -> Iterator[None]:
    """``job`` has begun here and renders: counted in progress, its span current."""
    trail = job._trail
    if trail is None:
        yield
        return
    _began(job, trail)
    from opentelemetry import trace  # noqa: PLC0415

    with trace.use_span(
        trail.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    ):
        yield


@_guarded
def _began(job: _Job, trail: Trail) -> None:
    now = time.monotonic()
    with trail.lock:
        queued, trail.queued = trail.queued, False
        trail.began = now
    instruments = _instruments()
    attributes = {SCOPE: trail.scope}
    if queued:
        instruments.queued.add(-1, attributes)
    instruments.in_progress.add(1, attributes)
    waited = _queue_wait(job, trail, now)
    if waited is not None:
        instruments.queue_wait.record(waited, attributes)
    trail.span.add_event("renderstate.begin", {"renderstate.queue_wait": waited or 0.0})


def _queue_wait(job: _Job, trail: Trail, now: float) -> float | None:
    if trail.taking_over:
        return None
    attempt = job.attempt
    if attempt is not None and attempt.started_at is not None and attempt.created_at:
        # On the database's clock: the start and the begin may be two processes.
        return max(0.0, attempt.started_at - attempt.created_at)
    if trail.queued_at is not None:
        return now - trail.queued_at
    return None


@_guarded
def saved(job: _Job, record: TransitionRecord) -> None:
    """The end of ``job`` was saved: COMPLETED, or FAILED with its error."""
    trail = job._trail
    if trail is None:
        return
    instruments = _instruments()
    attributes = {SCOPE: trail.scope}
    if record.target is Status.COMPLETED:
        trail.outcome = "completed"
        instruments.completed.add(1, attributes)
    elif isinstance(job._failure, RenderCancelledError):
        trail.outcome = "cancelled"
        instruments.cancelled.add(1, attributes)
    else:
        trail.outcome = "failed"
        instruments.failed.add(1, {**attributes, REASON: _reason(job._failure)})


@_guarded
def ended(job: _Job, error: BaseException | None) -> None:
    """``job`` has ended here (saved or not): its counts are taken back, its span ends."""
    trail = job._trail
    if trail is None:
        return
    with trail.lock:
        if trail.ended:
            return
        trail.ended = True
        queued, began = trail.queued, trail.began
        trail.queued = False
    outcome = trail.outcome or _unsaved(error)
    instruments = _instruments()
    attributes = {SCOPE: trail.scope}
    if queued:
        instruments.queued.add(-1, attributes)
    if began is not None:
        instruments.in_progress.add(-1, attributes)
        instruments.duration.record(time.monotonic() - began, {**attributes, OUTCOME: outcome})
    _end_span(trail, outcome, error, failed=outcome in ("failed", "unsaved"))


def _unsaved(error: BaseException | None) -> str:
    """The outcome of a job whose end saved nothing."""
    if isinstance(error, AttemptOwnedError):
        return "duplicate"  # another live owner renders the attempt
    if isinstance(error, (AttemptSupersededError, RenderInterruptedError)):
        return "superseded"  # a newer attempt, recovery or another owner decided
    return "unsaved"  # the save gave up: recovery ends it


def _end_span(trail: Trail, outcome: str, error: BaseException | None, *, failed: bool) -> None:
    from opentelemetry.trace import Status as SpanStatus  # noqa: PLC0415
    from opentelemetry.trace import StatusCode  # noqa: PLC0415

    span = trail.span
    span.set_attribute(OUTCOME, outcome)
    if error is not None:
        span.record_exception(error)
        if failed:
            span.set_status(SpanStatus(StatusCode.ERROR, type(error).__name__))
    span.end()


# ------------------------------------------------------------------ the ledger's events


@_guarded
def taken_over(attempt: Attempt) -> None:
    """``attempt`` was begun by a new owner after its owner's lease expired."""
    if _available():
        _instruments().taken_over.add(1, {SCOPE: attempt.scope})


@_guarded
def recovered(scope: str) -> None:
    """Recovery failed a render of a ``scope`` project whose process died."""
    if _available():
        _instruments().failed.add(1, {SCOPE: scope, REASON: RenderInterruptedError.__name__})


@_guarded
def requeued(scope: str) -> None:
    """A render of a ``scope`` project was submitted again, for another worker."""
    if _available():
        _instruments().requeued.add(1, {SCOPE: scope})
