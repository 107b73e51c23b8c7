"""Recording through the OpenTelemetry API, imported on first use.

The instruments and the tracer of the current global providers, and the guard that makes a
hook log rather than raise.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from renderstate.telemetry._names import INSTRUMENTS, METER_NAME, TRACER_NAME

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, MeterProvider, UpDownCounter
    from opentelemetry.trace import Tracer

logger = logging.getLogger("renderstate.telemetry")

_MAX_REASONS: Final = 64
"""Distinct failure reasons (error classes) one process reports; the rest count as ``other``."""


@functools.cache
def available() -> bool:
    try:
        import opentelemetry.metrics  # noqa: PLC0415 - the optional API, on first use
        import opentelemetry.trace  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


class Instruments:
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
        self.instruments: Instruments | None = None
        self.tracer: tuple[object, Tracer] | None = None
        self.reasons: set[str] = set()
        self.lock = threading.Lock()


_cache = _Cache()


def instruments() -> Instruments:
    from opentelemetry import metrics  # noqa: PLC0415

    provider = metrics.get_meter_provider()
    made = _cache.instruments
    if made is None or made.provider is not provider:
        made = _cache.instruments = Instruments(provider)
    return made


def tracer() -> Tracer:
    from opentelemetry import trace  # noqa: PLC0415

    provider = trace.get_tracer_provider()
    made = _cache.tracer
    if made is None or made[0] is not provider:
        made = _cache.tracer = (provider, provider.get_tracer(TRACER_NAME))
    return made[1]


F = TypeVar("F", bound=Callable[..., Any])


def guarded(hook: F) -> F:
    """Log, never raise, what goes wrong in ``hook``: telemetry cannot fail a render."""

    @functools.wraps(hook)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return hook(*args, **kwargs)
        except Exception:
            logger.exception("renderstate telemetry failed in %s", hook.__name__)
            return None

    return guarded  # type: ignore[return-value]  # same signature as hook


def reason(error: BaseException | None) -> str:
    """The error's class name, or ``other`` past the first ``_MAX_REASONS`` of them."""
    name = "unknown" if error is None else type(error).__name__
    with _cache.lock:
        if name in _cache.reasons or len(_cache.reasons) < _MAX_REASONS:
            _cache.reasons.add(name)
            return name
    return "other"
