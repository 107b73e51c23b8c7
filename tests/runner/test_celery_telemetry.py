"""Metrics and traces across real `celery worker` processes (Redis broker, a SQLite file
shared with the test process): the web process's span ends as renderstate.send and the
worker's renderstate.render continues its trace, completed, failed by reason, and taken
over by a second worker after the first was SIGKILLed. The workers run the OpenTelemetry
SDK and export to files (``celery_otel_app``); the test process records in memory."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from opentelemetry import trace

from otel_sdk import recording
from renderstate import Status
from runner.celery_app import Settings
from runner.celery_otel_app import OTEL
from runner.celery_workers import (
    REDIS_URL,
    Worker,
    Workers,
    new_settings,
    redis_reachable,
    workers_for,
)
from runner.test_celery import RABBITMQ_URL, rabbitmq_reachable, web_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not redis_reachable(), reason="needs Redis at 127.0.0.1:6379"),
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return new_settings(tmp_path)


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_settings(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """The test's settings with Redis as the broker, or RabbitMQ (Redis keeps the results)."""
    if request.param == "redis":
        yield settings
        return
    if not rabbitmq_reachable():
        pytest.skip("needs RabbitMQ at 127.0.0.1:5672")
    yield replace(settings, broker=RABBITMQ_URL, backend=REDIS_URL)
    with Connection(RABBITMQ_URL) as connection:
        channel = connection.default_channel
        channel.queue_delete(settings.queue)
        channel.exchange_delete(settings.queue)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    with workers_for(settings, tmp_path / "logs") as started:
        yield started


def start(workers: Workers, name: str, exported: Path) -> Worker:
    """A solo `celery worker` on the telemetry app, exporting into ``exported``."""
    exported.mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "runner.celery_otel_app",
        "worker",
        "--hostname",
        f"{name}-{workers.settings.queue}@%h",
        "--pool",
        "solo",
        "--queues",
        workers.settings.queue,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
    ]
    return workers.start(name, command=command, env={OTEL: str(exported)})


def eventually(found: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.05)
    msg = f"timed out waiting for {what}"
    raise AssertionError(msg)


def spans_of(exported: Path, worker: Worker) -> list[dict[str, Any]]:
    path = exported / f"spans-{worker.pid}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def render_spans(exported: Path, worker: Worker, count: int) -> list[dict[str, Any]]:
    """The worker's renderstate.render spans once there are ``count`` of them."""
    found = [s for s in spans_of(exported, worker) if s["name"] == "renderstate.render"]
    return found if len(found) >= count else []


def worker_metrics(exported: Path, worker: Worker) -> dict[str, list[dict[str, Any]]]:
    """The data points of each renderstate instrument, from the worker's last export."""
    path = exported / f"metrics-{worker.pid}.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    points: dict[str, list[dict[str, Any]]] = {}
    for resource in json.loads(lines[-1])["resource_metrics"] if lines else ():
        for scope in resource["scope_metrics"]:
            for metric in scope["metrics"]:
                points[metric["name"]] = metric["data"]["data_points"]
    return points


def total(points: dict[str, list[dict[str, Any]]], name: str, **attributes: str) -> float:
    wanted = {f"renderstate.{k}": v for k, v in attributes.items()}
    return sum(
        p.get("value", p.get("count", 0))
        for p in points.get(name, [])
        if all(p["attributes"].get(k) == v for k, v in wanted.items())
    )


def hex_id(number: int, width: int) -> str:
    return f"0x{number:0{width}x}"


def test_a_worker_continues_the_request_s_trace_and_counts_completed_and_failed(
    tmp_path: Path, broker_settings: Settings
) -> None:
    """Two submits inside a request span: each ends in the web process as renderstate.send
    (its context sent in the spec), and the worker's renderstate.render span is its child in
    the same trace: one completed, one failed with its DiskFullError recorded. The worker
    counts one completed and one failed by reason DiskFullError, the web process two starts
    and nothing left queued."""
    settings = broker_settings
    exported = tmp_path / "exported"
    with (
        workers_for(settings, tmp_path / "logs") as workers,
        recording() as otel,
        web_for(settings) as web,
    ):
        worker = start(workers, "traced", exported)
        fine, failing = web.project("fine"), web.project("fail")
        with trace.get_tracer("app").start_as_current_span("POST /export") as request:
            jobs = [web.runner.submit(fine), web.runner.submit(failing)]
        assert web.wait_ended(fine) is Status.COMPLETED
        assert web.wait_ended(failing) is Status.FAILED
        sent = otel.spans("renderstate.send")
        assert otel.value("renderstate.renders.started") == 2
        assert otel.value("renderstate.renders.queued") == 0
        assert otel.value("renderstate.renders.completed") == 0, "counted where it rendered"

    rendered = eventually(lambda: render_spans(exported, worker, 2), "the two render spans")
    trace_id = hex_id(request.get_span_context().trace_id, 32)
    by_attempt = {s["attributes"]["renderstate.attempt_id"]: s for s in rendered}
    assert [s.parent.span_id for s in sent if s.parent] == [request.get_span_context().span_id] * 2
    for job, send in zip(jobs, sent, strict=True):
        assert send.attributes is not None
        assert send.attributes["renderstate.attempt_id"] == job.attempt_id
        span = by_attempt[job.attempt_id]
        assert span["context"]["trace_id"] == trace_id
        assert span["parent_id"] == hex_id(send.context.span_id, 16)
        assert span["kind"] == "SpanKind.CONSUMER"
    completed, failed = by_attempt[jobs[0].attempt_id], by_attempt[jobs[1].attempt_id]
    assert completed["attributes"]["renderstate.outcome"] == "completed"
    assert completed["status"]["status_code"] == "UNSET"
    assert failed["attributes"]["renderstate.outcome"] == "failed"
    assert failed["status"] == {"status_code": "ERROR", "description": "DiskFullError"}
    raised = [e["attributes"] for e in failed["events"] if e["name"] == "exception"]
    assert [e["exception.type"] for e in raised] == ["runner.celery_otel_app.DiskFullError"]

    points = eventually(
        lambda: (
            (p := worker_metrics(exported, worker))
            and total(p, "renderstate.render.duration") == 2
            and p
        ),
        "the worker's metrics after both renders",
    )
    assert total(points, "renderstate.renders.completed") == 1
    assert total(points, "renderstate.renders.failed", reason="DiskFullError") == 1
    assert total(points, "renderstate.renders.in_progress") == 0
    assert total(points, "renderstate.render.queue_wait") == 2
    assert total(points, "renderstate.renders.started") == 0, "counted where submitted"


def test_a_takeover_after_a_sigkill_continues_the_trace_in_the_rescuing_worker(
    tmp_path: Path, settings: Settings, workers: Workers
) -> None:
    """A worker SIGKILLed mid-render exports nothing of that render; the worker that takes
    the attempt over (its message redelivered) counts a takeover and a completion, and its
    renderstate.render span is a child of the web process's renderstate.send. (The workers
    do not sweep here: a render their sweep sends again is counted as requeued; the next
    test has it.)"""
    settings = replace(
        settings, frames=60, frame_delay=0.05, lease=1.5, visibility_timeout=2.0, sweep=False
    )
    workers.settings = settings
    exported = tmp_path / "exported"
    doomed = start(workers, "doomed", exported)
    with recording() as otel, web_for(settings) as web:
        project = web.project()
        job = web.runner.submit(project)
        web.wait_for(lambda: web.frames_done(job) > 5, 20, "the render to be under way")
        doomed.kill()
        rescuer = start(workers, "rescuer", exported)
        assert web.wait_ended(project) is Status.COMPLETED
        [send] = otel.spans("renderstate.send")
    assert [s for s in spans_of(exported, doomed) if s["name"] == "renderstate.render"] == []
    [rendered] = eventually(lambda: render_spans(exported, rescuer, 1), "the rescuer's span")
    assert rendered["parent_id"] == hex_id(send.context.span_id, 16)
    assert rendered["context"]["trace_id"] == hex_id(send.context.trace_id, 32)
    assert rendered["attributes"]["renderstate.outcome"] == "completed"
    points = eventually(
        lambda: (
            (p := worker_metrics(exported, rescuer))
            and total(p, "renderstate.renders.completed") == 1
            and p
        ),
        "the rescuer's metrics",
    )
    assert total(points, "renderstate.renders.taken_over") == 1
    assert total(points, "renderstate.render.queue_wait") == 0, "a takeover waited in no queue"


def test_a_render_the_rescuers_sweep_sends_again_stays_in_the_request_s_trace(
    tmp_path: Path, settings: Settings, workers: Workers
) -> None:
    """A worker SIGKILLed mid-render, its message held by Redis for an hour: the rescuer's
    sweep sends the render again, and the message carries the request's trace context that
    the start stored with the attempt (the context the dead worker received died with it),
    so the rescuer's renderstate.render span is the web process's renderstate.send's child,
    and it counts one requeue and one completion."""
    settings = replace(
        settings, frames=60, frame_delay=0.05, lease=1.5, visibility_timeout=3600.0, sweep=True
    )
    workers.settings = settings
    exported = tmp_path / "exported"
    doomed = start(workers, "doomed", exported)
    with recording() as otel, web_for(settings) as web:
        project = web.project()
        job = web.runner.submit(project)
        web.wait_for(lambda: web.frames_done(job) > 5, 20, "the render to be under way")
        doomed.kill()
        rescuer = start(workers, "rescuer", exported)
        assert web.wait_ended(project) is Status.COMPLETED
        [send] = otel.spans("renderstate.send")
    [rendered] = eventually(lambda: render_spans(exported, rescuer, 1), "the rescuer's span")
    assert rendered["parent_id"] == hex_id(send.context.span_id, 16)
    assert rendered["context"]["trace_id"] == hex_id(send.context.trace_id, 32)
    assert rendered["attributes"]["renderstate.outcome"] == "completed"
    points = eventually(
        lambda: (
            (p := worker_metrics(exported, rescuer))
            and total(p, "renderstate.renders.completed") == 1
            and p
        ),
        "the rescuer's metrics",
    )
    assert total(points, "renderstate.renders.requeued") == 1
