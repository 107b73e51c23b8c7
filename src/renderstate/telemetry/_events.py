"""The events of a render, as the runner and the ledger report them: counts and spans."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from renderstate._attempts import WIDTHS, Attempt, AttemptState, encode_key
from renderstate._status import Status
from renderstate.exceptions import (
    AttemptOwnedError,
    AttemptSupersededError,
    RenderCancelledError,
    RenderHandedBackError,
    RenderInterruptedError,
)
from renderstate.telemetry._names import (
    ATTEMPT_ID,
    OUTCOME,
    PROJECT_KEY,
    REASON,
    RENDER_SPAN,
    SCOPE,
    SEND_SPAN,
)
from renderstate.telemetry._recording import available, guarded, instruments, reason, tracer

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from renderstate._jobs import JobSpec
    from renderstate._records import TransitionRecord


_TRACEPARENT_WIDTH = WIDTHS["traceparent"]


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


def _scope_of(job: _Job) -> str:
    attempt = job.attempt
    return attempt.scope if attempt is not None else type(job.project).__name__


# ------------------------------------------------------------------ the runner's events


@guarded
def submitted(job: _Job) -> Trail | None:
    """A submit is about to start ``job``: its span begins, in the caller's context."""
    if not available():
        return None
    scope = _scope_of(job)
    span = tracer().start_span(
        RENDER_SPAN, attributes={SCOPE: scope, PROJECT_KEY: encode_key(job.project_key)}
    )
    return Trail(span, scope)


@guarded
def refused(job: _Job, error: BaseException) -> None:
    """The start of ``job`` was refused or failed (a render already runs: 409)."""
    trail = job._trail
    if trail is not None:
        _end_span(trail, "refused", error, failed=True)


@guarded
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
    counts = instruments()
    attributes = {SCOPE: trail.scope}
    counts.started.add(1, attributes)
    counts.queued.add(1, attributes)


@guarded
def handed_off(job: _Job) -> None:
    """``job`` was sent to another process, which continues its trace."""
    trail = job._trail
    if trail is None:
        return
    with trail.lock:
        queued, trail.queued, trail.ended = trail.queued, False, True
    if queued:
        instruments().queued.add(-1, {SCOPE: trail.scope})
    trail.span.update_name(SEND_SPAN)
    trail.span.set_attribute(OUTCOME, "handed_off")
    trail.span.end()


@guarded
def delivered(job: _Job, spec: JobSpec) -> Trail | None:
    """``job`` came from another process: its span continues the sender's trace."""
    if not available():
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
    span = tracer().start_span(
        RENDER_SPAN, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    )
    trail = Trail(span, scope)
    trail.taking_over = attempt is not None and attempt.state is AttemptState.RENDERING
    return trail


@guarded
def carrier(job: _Job) -> dict[str, str] | None:
    """The context of ``job``'s span, for the spec sent to another process (or ``None``)."""
    trail = job._trail
    if trail is None:
        return None
    from opentelemetry import propagate, trace  # noqa: PLC0415

    found: dict[str, str] = {}
    propagate.inject(found, context=trace.set_span_in_context(trail.span))
    return found or None


def traceparent(job: _Job) -> str | None:
    """The W3C ``traceparent`` of ``job``'s span, for its attempt's record (or ``None``).

    What a render sent again (after its worker died, or handed it back) carries, so its
    span stays in the trace of the request that started it. ``None`` when no SDK traces
    it, or for a propagator that writes no ``traceparent`` that fits the ledger's column.
    """
    found = (carrier(job) or {}).get("traceparent")
    return found if found is not None and len(found) <= _TRACEPARENT_WIDTH else None


def carried(attempt: Attempt) -> dict[str, str] | None:
    """The trace context a render of ``attempt`` sent again carries (or ``None``)."""
    return None if attempt.traceparent is None else {"traceparent": attempt.traceparent}


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


@guarded
def _began(job: _Job, trail: Trail) -> None:
    now = time.monotonic()
    with trail.lock:
        queued, trail.queued = trail.queued, False
        trail.began = now
    counts = instruments()
    attributes = {SCOPE: trail.scope}
    if queued:
        counts.queued.add(-1, attributes)
    counts.in_progress.add(1, attributes)
    waited = _queue_wait(job, trail, now)
    if waited is not None:
        counts.queue_wait.record(waited, attributes)
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


@guarded
def saved(job: _Job, record: TransitionRecord) -> None:
    """The end of ``job`` was saved: COMPLETED, or FAILED with its error."""
    trail = job._trail
    if trail is None:
        return
    counts = instruments()
    attributes = {SCOPE: trail.scope}
    if record.target is Status.COMPLETED:
        trail.outcome = "completed"
        counts.completed.add(1, attributes)
    elif isinstance(job._failure, RenderCancelledError):
        trail.outcome = "cancelled"
        counts.cancelled.add(1, attributes)
    else:
        trail.outcome = "failed"
        counts.failed.add(1, {**attributes, REASON: reason(job._failure)})


@guarded
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
    counts = instruments()
    attributes = {SCOPE: trail.scope}
    if queued:
        counts.queued.add(-1, attributes)
    if began is not None:
        counts.in_progress.add(-1, attributes)
        counts.duration.record(time.monotonic() - began, {**attributes, OUTCOME: outcome})
    _end_span(trail, outcome, error, failed=outcome in ("failed", "unsaved"))


def _unsaved(error: BaseException | None) -> str:
    """The outcome of a job whose end saved nothing."""
    if isinstance(error, AttemptOwnedError):
        return "duplicate"  # another live owner renders the attempt
    if isinstance(error, RenderHandedBackError):
        return "requeued"  # handed back to the queue: another worker renders it
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


@guarded
def taken_over(attempt: Attempt) -> None:
    """``attempt`` was begun by a new owner after its owner's lease expired."""
    if available():
        instruments().taken_over.add(1, {SCOPE: attempt.scope})


@guarded
def recovered(scope: str) -> None:
    """Recovery failed a render of a ``scope`` project whose process died."""
    if available():
        instruments().failed.add(1, {SCOPE: scope, REASON: RenderInterruptedError.__name__})


@guarded
def requeued(scope: str) -> None:
    """A render of a ``scope`` project was submitted again, for another worker."""
    if available():
        instruments().requeued.add(1, {SCOPE: scope})
