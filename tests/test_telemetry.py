"""Metrics and traces through OpenTelemetry, read back through the SDK's in-memory reader and
exporter: real renders on the thread executor (completed, failed by reason, cancelled,
refused, queued and in progress), a takeover and a recovery in the ledger, the trace context
a job carries to another process; and with no SDK, or no OpenTelemetry at all, nothing."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry, generate_latest

from otel_sdk import Recorded, recording, unset_providers
from renderstate import RenderCancelledError, RenderConflictError, RenderJob, RenderRunner, Status
from renderstate.adapters.memory import AsyncMemoryAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.runner import JobSpec
from renderstate.telemetry import INSTRUMENTS
from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject
from renderstate.typing import ProgressSink

ROOT = Path(__file__).resolve().parents[1]
STARTED = "renderstate.renders.started"
COMPLETED = "renderstate.renders.completed"
FAILED = "renderstate.renders.failed"
CANCELLED = "renderstate.renders.cancelled"
TAKEN_OVER = "renderstate.renders.taken_over"
REQUEUED = "renderstate.renders.requeued"
IN_PROGRESS = "renderstate.renders.in_progress"
QUEUED = "renderstate.renders.queued"
DURATION = "renderstate.render.duration"
QUEUE_WAIT = "renderstate.render.queue_wait"


class Gate:
    """A renderer that reports a frame, then waits until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, project: object, target: Path, progress: ProgressSink) -> None:
        target.write_bytes(b"HALF A VIDEO")
        progress("rendering", 1, 2)
        self.started.set()
        assert self.release.wait(30)
        progress("rendering", 2, 2)
        target.write_bytes(b"A VIDEO")


class Sending:
    """An executor that sends each job away, as Celery's does, and keeps its spec."""

    def __init__(self) -> None:
        self.specs: list[JobSpec] = []

    def schedule(self, job: RenderJob[Any]) -> None:
        self.specs.append(JobSpec.from_dict(json.loads(json.dumps(job.spec.to_dict()))))
        job.hand_off()

    def shutdown(self, wait: bool = True) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def counts(otel: Recorded) -> dict[str, float]:
    return {name: otel.value(name) for name in (STARTED, COMPLETED, FAILED, CANCELLED)}


def test_a_completed_render_is_counted_and_traced_from_the_request_that_started_it(
    tmp_path: Path,
) -> None:
    """Started and completed once, nothing left queued or in progress, one render time and
    one queue wait; its span is the child of the caller's current span, ended COMPLETED."""
    project = MemoryProject()
    with (
        recording() as otel,
        RenderRunner(MemoryAdapter(), FakeRenderer(frames=3), media_root=tmp_path) as runner,
    ):
        with trace.get_tracer("app").start_as_current_span("POST /export") as request:
            job = runner.submit(project)
        assert job.wait(30) is Status.COMPLETED
        assert counts(otel) == {STARTED: 1, COMPLETED: 1, FAILED: 0, CANCELLED: 0}
        assert otel.value(QUEUED) == 0
        assert otel.value(IN_PROGRESS) == 0
        assert otel.count(DURATION, outcome="completed", scope="MemoryProject") == 1
        assert otel.count(QUEUE_WAIT, scope="MemoryProject") == 1
        [span] = otel.spans("renderstate.render")
    assert span.parent is not None
    assert span.parent.span_id == request.get_span_context().span_id
    assert span.context.trace_id == request.get_span_context().trace_id
    assert dict(span.attributes or {}) == {
        "renderstate.scope": "MemoryProject",
        "renderstate.project_key": str(project.id),
        "renderstate.outcome": "completed",
    }
    assert span.status.status_code is StatusCode.UNSET
    assert [event.name for event in span.events] == ["renderstate.begin"]


def test_the_renderers_own_spans_nest_under_the_render_span(tmp_path: Path) -> None:
    """While the renderer runs, in the executor's thread, the render's span is the current
    one: a span the renderer starts (an asset fetch) is its child."""

    def fetching(project: object, target: Path, progress: ProgressSink) -> None:
        with trace.get_tracer("app").start_as_current_span("GET /assets/logo.png"):
            target.write_bytes(b"A VIDEO")

    with recording() as otel, RenderRunner(MemoryAdapter(), fetching, media_root=tmp_path) as r:
        assert r.submit(MemoryProject()).wait(30) is Status.COMPLETED
        [fetch] = otel.spans("GET /assets/logo.png")
        [render] = otel.spans("renderstate.render")
    assert fetch.parent is not None
    assert fetch.parent.span_id == render.context.span_id


def test_asubmit_traces_from_the_awaiting_tasks_span(tmp_path: Path) -> None:
    """An async view's asubmit(): the render's span is the child of the span current in the
    awaiting task, and the render is counted as a submit's is."""
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=2),
        media_root=tmp_path,
        async_adapter=AsyncMemoryAdapter(),
    )

    async def view() -> tuple[RenderJob[MemoryProject], int]:
        with trace.get_tracer("app").start_as_current_span("POST /export") as request:
            job = await runner.asubmit(MemoryProject())
        await asyncio.to_thread(job.wait, 30)
        return job, request.get_span_context().span_id

    with recording() as otel:
        job, request_id = asyncio.run(view())
        assert job.status is Status.COMPLETED
        assert otel.value(COMPLETED) == 1
        [span] = otel.spans("renderstate.render")
    runner.shutdown()
    assert span.parent is not None
    assert span.parent.span_id == request_id


def test_failures_are_counted_by_the_class_of_their_error(tmp_path: Path) -> None:
    """Each failed render counts under its error's class name (never its message); its span
    ends in error with the exception recorded."""

    class DiskFullError(OSError):
        pass

    with recording() as otel:
        for exception in (ValueError("frame 1 of user 42 is bad"), DiskFullError, ValueError):
            renderer = FakeRenderer(frames=3, fail_at_frame=1, exception=exception)
            with RenderRunner(MemoryAdapter(), renderer, media_root=tmp_path) as runner:
                assert runner.submit(MemoryProject()).wait(30) is Status.FAILED
        assert otel.value(FAILED, reason="ValueError") == 2
        assert otel.value(FAILED, reason="DiskFullError") == 1
        assert {p.attributes["renderstate.reason"] for p in otel.points(FAILED)} == {
            "ValueError",
            "DiskFullError",
        }
        assert otel.value(COMPLETED) == 0
        assert otel.count(DURATION, outcome="failed") == 3
        spans = otel.spans("renderstate.render")
    assert [s.status.status_code for s in spans] == [StatusCode.ERROR] * 3
    assert [s.status.description for s in spans] == ["ValueError", "DiskFullError", "ValueError"]
    recorded = [e for e in spans[0].events if e.name == "exception"]
    assert recorded[0].attributes is not None
    assert recorded[0].attributes["exception.message"] == "frame 1 of user 42 is bad"


def test_reasons_are_bounded(tmp_path: Path) -> None:
    """However many error classes renders fail with, a process reports a bounded set of
    reasons: past them, ``other``."""
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(frames=1), media_root=tmp_path, executor=InlineExecutor()
    )
    with recording() as otel:
        for n in range(70):
            runner._renderer = FakeRenderer(
                frames=2, fail_at_frame=1, exception=type(f"Error{n}", (Exception,), {})
            )
            assert runner.submit(MemoryProject()).wait(30) is Status.FAILED
        reasons = {p.attributes["renderstate.reason"] for p in otel.points(FAILED)}
        assert otel.value(FAILED) == 70
    runner.shutdown()
    assert "other" in reasons
    assert len(reasons) <= 65


def test_a_cancelled_render_counts_as_cancelled_not_failed(tmp_path: Path) -> None:
    """A render cancelled mid-way counts once as cancelled; its span says so, not in error."""
    gate = Gate()
    with recording() as otel, RenderRunner(MemoryAdapter(), gate, media_root=tmp_path) as runner:
        job = runner.submit(MemoryProject())
        assert gate.started.wait(30)
        assert job.cancel("the user pressed cancel")
        gate.release.set()
        assert job.wait(30) is Status.FAILED
        assert isinstance(job.error, RenderCancelledError)
        assert counts(otel) == {STARTED: 1, COMPLETED: 0, FAILED: 0, CANCELLED: 1}
        assert otel.count(DURATION, outcome="cancelled") == 1
        [span] = otel.spans("renderstate.render")
    assert span.attributes is not None
    assert span.attributes["renderstate.outcome"] == "cancelled"
    assert span.status.status_code is StatusCode.UNSET


def test_in_progress_and_queued_follow_the_renders_of_this_process(tmp_path: Path) -> None:
    """With one worker: one render in progress and one queued while the first runs; a queued
    job cancelled leaves the queue without ever counting in progress; all back to 0."""
    gate = Gate()
    with (
        recording() as otel,
        RenderRunner(MemoryAdapter(), gate, media_root=tmp_path, max_workers=1) as runner,
    ):
        first = runner.submit(MemoryProject())
        assert gate.started.wait(30)
        second, third = runner.submit(MemoryProject()), runner.submit(MemoryProject())
        assert (otel.value(IN_PROGRESS), otel.value(QUEUED)) == (1, 2)
        assert third.cancel()
        assert third.wait(30) is Status.FAILED
        assert (otel.value(IN_PROGRESS), otel.value(QUEUED)) == (1, 1)
        gate.release.set()
        assert first.wait(30) is Status.COMPLETED
        assert second.wait(30) is Status.COMPLETED
        assert (otel.value(IN_PROGRESS), otel.value(QUEUED)) == (0, 0)
        assert counts(otel) == {STARTED: 3, COMPLETED: 2, FAILED: 0, CANCELLED: 1}
        assert otel.count(QUEUE_WAIT) == 2


def test_a_refused_start_is_traced_but_not_counted(tmp_path: Path) -> None:
    """A second submit while the project renders (409) starts nothing: one render counted,
    and a span that ends in error with the RenderConflictError."""
    gate = Gate()
    project = MemoryProject()
    with recording() as otel, RenderRunner(MemoryAdapter(), gate, media_root=tmp_path) as runner:
        job = runner.submit(project)
        with pytest.raises(RenderConflictError):
            runner.submit(project)
        gate.release.set()
        assert job.wait(30) is Status.COMPLETED
        assert otel.value(STARTED) == 1
        refused, rendered = otel.spans("renderstate.render")
    assert refused.attributes is not None
    assert refused.attributes["renderstate.outcome"] == "refused"
    assert refused.status.status_code is StatusCode.ERROR
    assert [e.attributes["exception.type"] for e in refused.events if e.attributes] == [
        "renderstate.exceptions.RenderConflictError"
    ]
    assert rendered.attributes is not None
    assert rendered.attributes["renderstate.outcome"] == "completed"


def take_over(tmp_path: Path) -> tuple[JobSpec, RenderJob[MemoryProject]]:
    """A job sent away, begun by a worker that died, taken over by another runner."""
    clock = Clock()
    attempts = MemoryAttemptStore(clock=clock)
    project = MemoryProject()
    sending = Sending()
    ledger = Ledger(attempts, clock=clock, lease=5.0)
    web = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=sending, ledger=ledger
    )
    worker = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=2),
        media_root=tmp_path,
        executor=InlineExecutor(),
        ledger=ledger,
        loader=attempts.loader([project]),
    )
    web.submit(project)
    [spec] = sending.specs
    assert spec.attempt_id is not None
    dead = ledger.get(spec.attempt_id)
    assert dead is not None
    ledger.begin(dead)  # a worker that began it, then died
    clock.now += 60
    job = worker.execute(spec)
    worker.shutdown()
    web.shutdown()
    return spec, job


def test_a_takeover_continues_the_senders_trace_and_counts(tmp_path: Path) -> None:
    """A job sent away ends its span as renderstate.send, its context in the spec; its first
    owner dies (its lease runs out) and another runner takes the attempt over: counted as
    taken over and completed there, no queue wait, its span the send span's child."""
    with recording() as otel:
        spec, job = take_over(tmp_path)
        assert job.status is Status.COMPLETED
        assert otel.value(TAKEN_OVER, scope="MemoryProject") == 1
        assert otel.value(COMPLETED) == 1
        assert otel.value(QUEUED) == 0, "it waited in the task queue, not in a process"
        assert otel.value(IN_PROGRESS) == 0
        assert otel.count(QUEUE_WAIT) == 0
        [sent] = otel.spans("renderstate.send")
        [rendered] = otel.spans("renderstate.render")
    assert spec.trace is not None
    assert spec.trace["traceparent"].startswith(
        f"00-{sent.context.trace_id:032x}-{sent.context.span_id:016x}-"
    )
    assert rendered.parent is not None
    assert rendered.parent.span_id == sent.context.span_id
    assert rendered.kind is SpanKind.CONSUMER
    assert rendered.attributes is not None
    assert rendered.attributes["renderstate.attempt_id"] == spec.attempt_id
    assert rendered.attributes["renderstate.outcome"] == "completed"
    assert sent.attributes is not None
    assert sent.attributes["renderstate.outcome"] == "handed_off"


class Queueing(Sending):
    """A sending executor whose route the ledger records, as Celery's: a sweep requeues."""

    route = "celery"


def test_a_render_a_sweep_sends_again_stays_in_the_request_s_trace(tmp_path: Path) -> None:
    """A job sent away is begun by a worker that dies (the context it received dies with
    it); a sweep takes the attempt back and sends it again with the request's trace context,
    stored with the attempt, so the render that completes it is the send span's child, in
    the request's trace, and the requeue is counted."""
    clock = Clock()
    attempts = MemoryAttemptStore(clock=clock)
    project = MemoryProject()
    executor = Queueing()
    with recording() as otel:
        ledger = Ledger(attempts, clock=clock, lease=5.0)
        web = RenderRunner(
            MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=executor, ledger=ledger
        )
        web.submit(project)
        worker = RenderRunner(
            MemoryAdapter(),
            FakeRenderer(frames=2),
            media_root=tmp_path,
            executor=InlineExecutor(),
            ledger=ledger,
            loader=attempts.loader([project]),
        )
        [first] = executor.specs
        assert first.attempt_id is not None
        dead = ledger.get(first.attempt_id)
        assert dead is not None
        assert first.trace is not None
        assert dead.traceparent == first.trace["traceparent"]
        ledger.begin(dead, worker="elsewhere.example:4242")  # a worker began it, then died
        clock.now += 60
        sent: list[JobSpec] = []
        [swept] = worker.sweep("celery", lambda spec, route: sent.append(spec))
        assert swept.requeued is not None
        [again] = sent
        job = worker.execute(JobSpec.from_dict(json.loads(json.dumps(again.to_dict()))))
        assert job.status is Status.COMPLETED
        worker.shutdown()
        web.shutdown()
        [send] = otel.spans("renderstate.send")
        [rendered] = otel.spans("renderstate.render")
        assert otel.value(REQUEUED, scope="MemoryProject") == 1
    assert again.trace == first.trace
    assert rendered.parent is not None
    assert rendered.parent.span_id == send.context.span_id
    assert rendered.context.trace_id == send.context.trace_id
    assert rendered.attributes is not None
    assert rendered.attributes["renderstate.outcome"] == "completed"


def test_an_untraced_request_records_no_trace_context(tmp_path: Path) -> None:
    """Without an SDK the attempt records no trace context, and a sweep sends none."""
    clock = Clock()
    attempts = MemoryAttemptStore(clock=clock)
    project = MemoryProject()
    ledger = Ledger(attempts, clock=clock, lease=5.0)
    executor = Queueing()
    web = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=executor, ledger=ledger
    )
    web.submit(project)
    [first] = executor.specs
    assert first.attempt_id is not None
    attempt = ledger.get(first.attempt_id)
    assert attempt is not None
    assert attempt.traceparent is None
    ledger.begin(attempt, worker="elsewhere.example:4242")
    clock.now += 60
    sent: list[JobSpec] = []
    worker = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(),
        media_root=tmp_path,
        ledger=ledger,
        loader=attempts.loader([project]),
    )
    worker.sweep("celery", lambda spec, route: sent.append(spec))
    assert [spec.trace for spec in sent] == [None]
    worker.shutdown()
    web.shutdown()


def recover_and_requeue(tmp_path: Path) -> None:
    """Recovery fails a render whose process died and submits it again; then a runner
    without a ledger fails a project left PROCESSING."""
    clock = Clock()
    attempts = MemoryAttemptStore()
    project = MemoryProject()
    lifecycle = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path).lifecycle
    Ledger(attempts, clock=clock).start(lifecycle(project))
    clock.now += 3600
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=2),
        media_root=tmp_path,
        executor=InlineExecutor(),
        ledger=Ledger(attempts, clock=clock),
        loader=attempts.loader([project]),
    )
    assert len(runner.recover_interrupted(requeue=True)) == 1
    runner.shutdown()
    plain = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path)
    assert len(plain.recover_interrupted([MemoryProject(status="PROCESSING")])) == 1  # type: ignore[arg-type]
    plain.shutdown()


def test_recovery_counts_dead_renders_as_failed_and_its_requeue(tmp_path: Path) -> None:
    """A render whose process died counts as failed (RenderInterruptedError) when recovery
    fails it, with or without a ledger, and as requeued when recovery submits it again."""
    with recording() as otel:
        recover_and_requeue(tmp_path)
        assert otel.value(FAILED, reason="RenderInterruptedError") == 2
        assert otel.value(REQUEUED, scope="MemoryProject") == 1
        assert otel.value(STARTED) == otel.value(COMPLETED) == 1


def test_a_spec_carries_its_trace_context_only_when_traced(tmp_path: Path) -> None:
    """The trace context survives JSON and from_dict(); without an SDK the spec's dict is
    what it always was (no "trace" entry), and a trace context that is not one is refused."""
    project = MemoryProject()
    sending = Sending()
    ledger = Ledger(MemoryAttemptStore())
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=sending, ledger=ledger
    )
    job = runner.submit(project)
    assert "trace" not in job.spec.to_dict()
    assert sending.specs[0].trace is None
    runner.shutdown()
    traced = JobSpec(project_key="1", output_path="a.mp4", trace={"traceparent": "00-ab-cd-01"})
    assert JobSpec.from_dict(json.loads(json.dumps(traced.to_dict()))).trace == traced.trace
    assert traced == JobSpec(project_key="1", output_path="a.mp4"), "not part of its identity"
    assert hash(traced) == hash(JobSpec(project_key="1", output_path="a.mp4"))
    with pytest.raises(ValueError, match=r"JobSpec.trace must be a mapping of strings"):
        JobSpec(project_key="1", output_path="a.mp4", trace={"traceparent": 7})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"JobSpec.trace has 1 entries, or one longer than"):
        JobSpec(project_key="1", output_path="a.mp4", trace={"tracestate": "x" * 9000})


def test_a_broken_telemetry_setup_never_fails_a_render(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A meter provider that raises is logged; the render completes all the same."""

    class BrokenMeterProvider(MeterProvider):
        def get_meter(self, *args: Any, **kwargs: Any) -> Any:
            msg = "the exporter's configuration is wrong"
            raise RuntimeError(msg)

    unset_providers()
    metrics.set_meter_provider(BrokenMeterProvider(shutdown_on_exit=False))
    try:
        with RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path) as runner:
            assert runner.submit(MemoryProject()).wait(30) is Status.COMPLETED
    finally:
        unset_providers()
    assert "renderstate telemetry failed in started" in caplog.text


def test_the_docs_give_the_prometheus_names_the_exporter_makes(tmp_path: Path) -> None:
    """docs/telemetry.md lists every instrument, and the name Prometheus shows it under is
    the one OpenTelemetry's Prometheus exporter makes of it."""
    page = (ROOT / "docs" / "telemetry.md").read_text()
    rows = re.findall(
        r"^\| `(renderstate\.[a-z_.]+)` \| ([a-z -]+) \| `([a-z_]+)` \|", page, re.MULTILINE
    )
    documented = {name: (kind, prometheus) for name, kind, prometheus in rows}
    assert set(documented) == {i.name for i in INSTRUMENTS}
    registry = CollectorRegistry()
    gate = Gate()
    with recording(PrometheusMetricReader(registry=registry)):
        with RenderRunner(MemoryAdapter(), gate, media_root=tmp_path, max_workers=1) as runner:
            running = runner.submit(MemoryProject())
            assert gate.started.wait(30)
            cancelled = runner.submit(MemoryProject())
            assert cancelled.cancel()
            gate.release.set()
            assert running.wait(30) is Status.COMPLETED
            runner._renderer = FakeRenderer(fail_at_frame=1)
            assert runner.submit(MemoryProject()).wait(30) is Status.FAILED
        take_over(tmp_path / "taken")
        recover_and_requeue(tmp_path / "recovered")
        scrape = generate_latest(registry).decode()
    kinds = dict(re.findall(r"^# TYPE (\S+) (\S+)$", scrape, re.MULTILINE))
    for name, (kind, prometheus) in documented.items():
        sample = prometheus + ("_bucket" if kind == "histogram" else "")
        assert re.search(rf"^{sample}\{{", scrape, re.MULTILINE), (name, scrape)
        expected = {"counter": "counter", "up-down counter": "gauge", "histogram": "histogram"}
        assert kinds[prometheus] == expected[kind], (name, kinds)


def test_the_docs_setup_prints_spans_and_metrics() -> None:
    """The docs' console setup, run in a fresh process around one render, prints the render's
    span and its metrics as the SDK's console exporters write them."""
    page = (ROOT / "docs" / "telemetry.md").read_text()
    setup = re.findall(r"^```python\n(.*?)^```", page, re.MULTILINE | re.DOTALL)[0]
    code = setup + textwrap.dedent("""
        import tempfile
        from opentelemetry import metrics, trace
        from renderstate import RenderRunner, Status
        from renderstate.testing import FakeRenderer, MemoryAdapter, MemoryProject

        configure_telemetry("docs-example")
        with RenderRunner(MemoryAdapter(), FakeRenderer(3), media_root=tempfile.mkdtemp()) as r:
            assert r.submit(MemoryProject()).wait(30) is Status.COMPLETED
        trace.get_tracer_provider().shutdown()
        metrics.get_meter_provider().shutdown()
        """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "renderstate.render"' in done.stdout
    assert '"renderstate.outcome": "completed"' in done.stdout
    assert '"name": "renderstate.renders.completed"' in done.stdout
    assert '"service.name": "docs-example"' in done.stdout


NO_SDK = """
import importlib.metadata, json, sys, tempfile
from pathlib import Path
from renderstate import RenderRunner, Status
from renderstate.ledger import Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.testing import FakeRenderer, MemoryAdapter, MemoryProject

class Sending:
    specs = []
    def schedule(self, job):
        self.specs.append(job.spec.to_dict())
        job.hand_off()
    def shutdown(self, wait=True):
        pass

def render():
    media = tempfile.mkdtemp()
    with RenderRunner(MemoryAdapter(), FakeRenderer(frames=2), media_root=media) as runner:
        assert runner.submit(MemoryProject()).wait(30) is Status.COMPLETED
    sent = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=media, executor=Sending(),
                        ledger=Ledger(MemoryAttemptStore()))
    sent.submit(MemoryProject())
    sent.shutdown()

render()
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry")
report = {"loaded": loaded, "spec": Sending.specs[0]}
if "--api" in sys.argv:
    api = {str(f) for f in importlib.metadata.files("opentelemetry-api")}
    site = Path(sys.modules["opentelemetry"].__path__[0]).parent
    report["outside_api"] = [
        name for name in loaded
        if getattr(sys.modules[name], "__file__", None)
        and str(Path(sys.modules[name].__file__).relative_to(site)) not in api
    ]
    # Only now an SDK: what the renders above recorded would show; a render now does.
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    def started():
        data = reader.get_metrics_data()
        return sum(
            p.value
            for r in (data.resource_metrics if data else ())
            for s in r.scope_metrics for m in s.metrics if m.name == "renderstate.renders.started"
            for p in m.data.data_points
        )
    report["before"] = started()
    render()
    report["after"] = started()
print(json.dumps(report))
"""


def run_child(code: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_without_an_sdk_nothing_is_emitted_and_only_the_api_is_imported() -> None:
    """In a fresh process with the API and no SDK configured: renders complete, only the
    API's own modules are imported, a sent spec carries no trace context, and nothing was
    recorded (an SDK configured afterwards counts only the renders after it)."""
    report = run_child(NO_SDK, "--api")
    assert report["loaded"], "the API is used"
    assert report["outside_api"] == []
    assert "trace" not in report["spec"]
    assert (report["before"], report["after"]) == (0, 2)


def test_without_opentelemetry_installed_renders_run_as_before() -> None:
    """With no opentelemetry package importable at all, renders complete and nothing of it
    is imported."""
    code = "import sys\nsys.modules['opentelemetry'] = None\n" + NO_SDK
    report = run_child(code)
    assert report["loaded"] == ["opentelemetry"], "only the blocked name itself"
    assert "trace" not in report["spec"]
