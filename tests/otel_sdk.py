"""The OpenTelemetry SDK, configured for one test: in-memory metric reader and span exporter.

:func:`recording` sets the SDK's providers as the process's global ones for the length of a
test and unsets them after (as ``opentelemetry-test-utils`` does), so that every other test
in the process runs without an SDK, as an application that configures none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once


def unset_providers() -> None:
    """Back to no SDK: the API's proxies, which a later ``set_*_provider`` may replace."""
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    metrics_internal._PROXY_METER_PROVIDER = metrics_internal._ProxyMeterProvider()
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    trace._PROXY_TRACER_PROVIDER = trace.ProxyTracerProvider()


@dataclasses.dataclass
class Recorded:
    """What the SDK recorded during the test."""

    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter
    tracer_provider: TracerProvider

    def points(self, name: str) -> list[Any]:
        """Every data point of the instrument ``name`` (cumulative since the test began)."""
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def value(self, name: str, **attributes: str) -> float:
        """The sum of a counter's points whose attributes include ``attributes``."""
        return sum(p.value for p in self.points(name) if _has(p, attributes))

    def count(self, name: str, **attributes: str) -> int:
        """How many values a histogram recorded with ``attributes``."""
        return sum(p.count for p in self.points(name) if _has(p, attributes))

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """The ended spans, oldest first, those named ``name`` if given."""
        ended = list(self.exporter.get_finished_spans())
        return [s for s in ended if name is None or s.name == name]


def _has(point: Any, attributes: dict[str, str]) -> bool:
    # Short names: reason="ValueError" is the attribute renderstate.reason.
    return all(point.attributes.get(f"renderstate.{k}") == v for k, v in attributes.items())


@contextmanager
def recording(*readers: MetricReader) -> Iterator[Recorded]:
    """Configure the SDK (in-memory reader and exporter, and ``readers``) for the block."""
    unset_providers()
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader, *readers], shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    metrics.set_meter_provider(meter_provider)
    trace.set_tracer_provider(tracer_provider)
    try:
        yield Recorded(reader, exporter, tracer_provider)
    finally:
        unset_providers()
        meter_provider.shutdown()
        tracer_provider.shutdown()
