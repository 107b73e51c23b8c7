"""Cooperative cancel, and shutting down or ending a test without a job outliving it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from renderstate import Change, RenderCancelledError, RenderInterruptedError, RenderRunner, Status
from renderstate.runner import Phase, ThreadExecutor
from renderstate.testing import (
    FakeRenderer,
    InlineExecutor,
    MemoryAdapter,
    MemoryProject,
    stopping_jobs,
)
from renderstate.typing import ProgressSink


class Gate:
    """A renderer that writes part of a video, reports, and waits until released."""

    def __init__(self, *, report_after: bool = True) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.report_after = report_after
        self.calls = 0

    def __call__(self, project: object, target: Path, progress: ProgressSink) -> None:
        self.calls += 1
        target.write_bytes(b"HALF A NEW VIDEO")
        progress("fetch assets", 1, 2)
        self.started.set()
        assert self.release.wait(30)
        if self.report_after:
            progress("tts", 1, 1)  # the next phase: a cancel stops the render here
        target.write_bytes(b"A WHOLE NEW VIDEO")


def previous_video(media: Path, key: object) -> Path:
    final = media / "projects" / str(key) / "final.mp4"
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(b"THE PREVIOUS VIDEO")
    return final


@pytest.mark.parametrize("report_after", [True, False])
def test_cancel_stops_a_running_render_and_keeps_the_previous_video(
    tmp_path: Path, report_after: bool
) -> None:
    """Cancelled mid-render: at its next progress report (between phases), or when a
    renderer that reports nothing returns. FAILED as cancelled, no partial file, the
    previous video byte-identical, the message saying so because it was checked."""
    gate = Gate(report_after=report_after)
    project = MemoryProject(id=1, status="COMPLETED", output_path="projects/1/final.mp4")  # type: ignore[arg-type]
    final = previous_video(tmp_path, 1)
    with RenderRunner(MemoryAdapter(), gate, media_root=tmp_path) as runner:
        job = runner.submit(project)
        assert gate.started.wait(30)
        assert runner.cancel(project, "the user pressed cancel") is True
        assert job.cancel() is True  # asked again while it stops: still True
        gate.release.set()
        assert job.wait(30) is Status.FAILED
    assert isinstance(job.error, RenderCancelledError)
    assert isinstance(job.error, RenderInterruptedError)
    assert "cancelled: the user pressed cancel" in str(job.error)
    assert "untouched (checked)" in str(job.error)
    assert project.status == "FAILED"
    assert project.output_path == "projects/1/final.mp4"
    assert final.read_bytes() == b"THE PREVIOUS VIDEO"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    assert job.progress.phase is Phase.FAILED


def test_cancel_of_a_queued_job_ends_it_at_once(tmp_path: Path) -> None:
    """A job waiting for a worker is failed as cancelled immediately and never renders."""
    gate = Gate()
    first, second = MemoryProject(), MemoryProject()
    calls: list[object] = []

    def renderer(project: object, target: Path, progress: ProgressSink) -> None:
        calls.append(project)
        gate(project, target, progress)

    with RenderRunner(
        MemoryAdapter(), renderer, media_root=tmp_path, executor=ThreadExecutor(1)
    ) as runner:
        running = runner.submit(first)
        assert gate.started.wait(30)
        queued = runner.submit(second)
        assert queued.progress.phase is Phase.QUEUED
        assert runner.cancel(second) is True
        assert queued.done()  # at once, not when a worker frees
        assert queued.status is Status.FAILED
        assert isinstance(queued.error, RenderCancelledError)
        gate.release.set()
        assert running.wait(30) is Status.COMPLETED
    assert calls == [first]
    assert second.status == "FAILED"


def test_cancel_of_a_finished_or_unknown_job_is_a_no_op(tmp_path: Path) -> None:
    """Nothing to cancel answers False and changes nothing."""
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(frames=2), media_root=tmp_path, executor=InlineExecutor()
    )
    project = MemoryProject()
    assert runner.cancel(project) is False  # never rendered here
    job = runner.submit(project)
    assert job.status is Status.COMPLETED
    assert runner.cancel(project) is False
    assert job.cancel() is False
    assert project.status == "COMPLETED"
    assert job.error is None


def test_shutdown_can_cancel_running_renders(tmp_path: Path) -> None:
    """shutdown(cancel_pending=True, cancel_running=True) returns with nothing running:
    the running render is cancelled at its next report, the queued one never starts."""
    gate = Gate()
    first, second = MemoryProject(), MemoryProject()
    runner = RenderRunner(MemoryAdapter(), gate, media_root=tmp_path, executor=ThreadExecutor(1))
    running = runner.submit(first)
    assert gate.started.wait(30)
    queued = runner.submit(second)
    threading.Timer(0.2, gate.release.set).start()
    runner.shutdown(wait=True, cancel_pending=True, cancel_running=True)
    assert running.done()
    assert queued.done()
    assert isinstance(running.error, RenderCancelledError)
    assert type(queued.error) is RenderInterruptedError
    assert (first.status, second.status) == ("FAILED", "FAILED")
    assert gate.calls == 1


def test_stopping_jobs_ends_every_job_and_keeps_the_runner_open(tmp_path: Path) -> None:
    """The test helper: after the block no job runs, and the shared runner still works."""
    gate = Gate()
    runner = RenderRunner(MemoryAdapter(), gate, media_root=tmp_path, executor=ThreadExecutor(1))
    projects = [MemoryProject(), MemoryProject()]
    threading.Timer(0.2, gate.release.set).start()
    with stopping_jobs(runner):
        jobs = [runner.submit(p) for p in projects]
        assert gate.started.wait(30)
    assert all(job.done() for job in jobs)
    assert [p.status for p in projects] == ["FAILED", "FAILED"]
    again = runner.submit(projects[0])  # the runner stays open for the next test
    assert again.wait(30) is Status.COMPLETED
    runner.shutdown()


class FailingSaves(MemoryAdapter):
    """Saves of COMPLETED fail, as they do once a test database has been dropped."""

    def apply(self, project: MemoryProject, change: Change) -> bool:  # type: ignore[override]
        if change.values.get(change.status_field) == "COMPLETED":
            msg = "no such table: project"
            raise RuntimeError(msg)
        return super().apply(project, change)


def test_shutdown_stops_retrying_saves(tmp_path: Path) -> None:
    """A save retried for up to a minute gives up once the runner is shut down with
    cancel_pending: no job touches the database after the test is over."""
    attempts = threading.Event()
    adapter = FailingSaves()
    runner = RenderRunner(
        adapter, FakeRenderer(frames=1), media_root=tmp_path, persist_timeout=60.0
    )
    tried: list[float] = []

    def sleep(seconds: float) -> None:
        tried.append(seconds)
        attempts.set()
        threading.Event().wait(seconds)

    runner._sleep = sleep
    project = MemoryProject()
    job = runner.submit(project)
    assert attempts.wait(30)  # it is retrying
    runner.shutdown(wait=True, cancel_pending=True)
    assert job.done()
    assert project.status == "PROCESSING"  # left for recovery, not saved later
    assert isinstance(job.error, RuntimeError)
    assert len(tried) < 10
