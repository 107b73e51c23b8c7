"""Executors: parallel renders of different projects, and a bounded queue beyond max_workers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from renderstate import RenderRunner, Status
from renderstate.runner import Phase, ThreadExecutor
from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject
from renderstate.typing import ProgressSink


def test_renders_of_different_projects_run_in_parallel(tmp_path: Path) -> None:
    """Two renders meet inside the renderer at once, on two different threads."""
    meeting = threading.Barrier(2, timeout=60)  # a deadlock guard, not a timing assertion
    threads: set[str] = set()

    def renderer(project: object, target: Path, progress: ProgressSink) -> None:
        threads.add(threading.current_thread().name)
        meeting.wait()
        FakeRenderer(frames=3)(project, target, progress)

    projects = [MemoryProject(), MemoryProject()]
    with RenderRunner(MemoryAdapter(), renderer, media_root=tmp_path, max_workers=2) as runner:
        jobs = [runner.submit(p) for p in projects]
        assert [job.wait() for job in jobs] == [Status.COMPLETED, Status.COMPLETED]
    assert len(threads) == 2
    assert threading.current_thread().name not in threads


def test_renders_beyond_max_workers_wait_in_the_queue(tmp_path: Path) -> None:
    """With max_workers=2, a third render is queued until a worker frees, and all complete."""
    lock = threading.Lock()
    active = 0
    peak = 0
    release = threading.Event()
    two_running = threading.Barrier(3, timeout=60)

    def renderer(project: object, target: Path, progress: ProgressSink) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            first_two = peak <= 2 and not release.is_set()
        if first_two:
            two_running.wait()
            release.wait()
        target.write_bytes(b"video")
        with lock:
            active -= 1

    projects = [MemoryProject() for _ in range(3)]
    with RenderRunner(MemoryAdapter(), renderer, media_root=tmp_path, max_workers=2) as runner:
        jobs = [runner.submit(p) for p in projects]
        two_running.wait()  # both workers are inside the renderer
        assert jobs[2].progress.phase is Phase.QUEUED
        assert projects[2].status == "PROCESSING"  # accepted: submit already returned
        assert not jobs[2].done()
        release.set()
        assert {job.wait() for job in jobs} == {Status.COMPLETED}
    assert peak == 2


def test_thread_executor_needs_at_least_one_worker() -> None:
    """max_workers=0 is refused with a clear ValueError."""
    with pytest.raises(ValueError, match="at least 1"):
        ThreadExecutor(0)


def test_the_inline_executor_renders_before_submit_returns(tmp_path: Path) -> None:
    """With InlineExecutor the job has ended when submit() returns."""
    executor = InlineExecutor()
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(frames=2), media_root=tmp_path, executor=executor
    )
    job = runner.submit(MemoryProject())
    assert job.done()
    assert executor.scheduled == 1
    runner.shutdown()
    assert executor.closed
