"""The Celery app of the telemetry tests' workers: ``celery_app``'s settings, a renderer that
fails the projects titled ``fail``, and the OpenTelemetry SDK exporting every span and the
metrics as JSON lines to files of this process in the directory ``RENDERSTATE_TEST_OTEL``
names (the SDK's console exporters, written to a file), flushed after each task."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery.signals import task_postrun
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from renderstate import RenderRunner
from renderstate.cli._store import Project
from renderstate.runner.celery import register
from renderstate.testing import FakeRenderer
from renderstate.typing import ProgressSink

# celery_app registers its own render task (a shared task, which every app finds under the
# same name, the first one registered winning) when it sees its settings: hide them while
# its helpers are imported, so this app's task is the one that runs.
_hidden = os.environ.pop("RENDERSTATE_TEST_CELERY", None)
try:
    from runner.celery_app import Settings, build_app, store_for
finally:
    if _hidden is not None:
        os.environ["RENDERSTATE_TEST_CELERY"] = _hidden

OTEL = "RENDERSTATE_TEST_OTEL"


class DiskFullError(OSError):
    """What the renders of projects titled ``fail`` fail with."""


class Picky:
    """FakeRenderer, except that a project titled ``fail`` fails at its first frame."""

    def __init__(self, settings: Settings) -> None:
        self.fine = FakeRenderer(frames=settings.frames, frame_delay=settings.frame_delay)
        self.failing = FakeRenderer(frames=3, fail_at_frame=1, exception=DiskFullError)

    def __call__(self, project: Project, target: Path, progress: ProgressSink) -> None:
        renderer = self.failing if project.title == "fail" else self.fine
        renderer(project, target, progress)


def make_runner(settings: Settings) -> RenderRunner[Project]:
    store, ledger = store_for(settings)
    return RenderRunner(
        store.adapter,
        Picky(settings),
        media_root=Path(settings.media),
        ledger=ledger,
        loader=store.loader,
    )


def configure(directory: Path) -> tuple[TracerProvider, MeterProvider]:
    pid = os.getpid()
    spans = (directory / f"spans-{pid}.jsonl").open("a", buffering=1)
    numbers = (directory / f"metrics-{pid}.jsonl").open("a", buffering=1)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(
            ConsoleSpanExporter(out=spans, formatter=lambda span: span.to_json(indent=None) + "\n")
        )
    )
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(
        ConsoleMetricExporter(out=numbers, formatter=lambda data: data.to_json(indent=None) + "\n"),
        export_interval_millis=3_600_000,  # exported after each task (below) and at exit
    )
    meter_provider = MeterProvider(metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def _flush_after_each_task(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    @task_postrun.connect(weak=False)
    def flush(**_: Any) -> None:
        tracer_provider.force_flush()
        meter_provider.force_flush()


if OTEL in os.environ:
    SETTINGS = Settings.from_env()
    _flush_after_each_task(*configure(Path(os.environ[OTEL])))
    app = build_app(SETTINGS)
    register(app, lambda: make_runner(SETTINGS), sweep=SETTINGS.sweep, grace=SETTINGS.grace)
