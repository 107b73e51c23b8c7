"""AppTaskExecutor and run_attempt(): the app's own task (its thread task manager, called
with its own arguments) renders the job the runner started, with the runner's guarantees."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from renderstate import RenderRunner, Status
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.runner.executors import AppTaskExecutor
from renderstate.testing import FakeRenderer, MemoryAdapter, MemoryProject
from renderstate.typing import ProgressSink


class TaskManager:
    """An app's own task manager: tasks by id, run on its own thread pool."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="app-tasks")
        self.calls: list[tuple[str, str]] = []

    def submit_task(self, fn: object, task_id: str) -> str:
        assert callable(fn)
        self.calls.append(("submitted", task_id))
        self.pool.submit(fn)
        return task_id


def test_the_app_s_own_task_renders_the_started_job_in_its_thread(tmp_path: Path) -> None:
    """The view submits, the app's manager runs the app's function with the project's id,
    and its one call, run_attempt(id), renders the job there: COMPLETED, the file in place."""
    threads: list[str] = []

    def renderer(project: object, target: Path, progress: ProgressSink) -> None:
        threads.append(threading.current_thread().name)
        FakeRenderer(frames=3)(project, target, progress)

    manager = TaskManager()
    runner = RenderRunner(
        MemoryAdapter(), renderer, media_root=tmp_path, executor=AppTaskExecutor()
    )
    called: list[tuple[int, str]] = []

    def render_task_function(project_id: int, task_id: str) -> None:  # the app's own task
        called.append((project_id, task_id))
        runner.run_attempt(project_id)

    project = MemoryProject(id=7)
    try:
        job = runner.submit(project)
        assert project.status == "PROCESSING"
        assert not job.done(), "nothing renders before the app's task runs"
        manager.submit_task(lambda: render_task_function(7, "render_7"), task_id="render_7")
        assert job.wait(timeout=30) is Status.COMPLETED
    finally:
        manager.pool.shutdown()
        runner.shutdown()
    assert called == [(7, "render_7")]
    assert len(threads) == 1
    assert threads[0].startswith("app-tasks"), threads
    assert project.output_path == "projects/7/final.mp4"
    final = tmp_path / "projects" / "7" / "final.mp4"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def test_a_started_job_keeps_its_lease_until_the_app_s_task_takes_it(tmp_path: Path) -> None:
    """While it waits in the app's queue (longer than a lease), the runner keeps the
    attempt alive: recovery leaves it, and the task renders it once it runs."""
    ledger = Ledger(MemoryAttemptStore(), lease=0.5)
    project = MemoryProject(id=3)
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=2),
        media_root=tmp_path,
        executor=AppTaskExecutor(),
        ledger=ledger,
        loader=ledger.store.loader([project]),
    )
    try:
        job = runner.submit(project)
        time.sleep(1.5)  # three leases in the app's queue
        assert runner.recover_interrupted() == []
        assert project.status == "PROCESSING"
        assert runner.run_attempt("3") is job  # the key as text finds it too
        assert job.status is Status.COMPLETED
        (attempt,) = ledger.history(ledger.scope(project), 3)
        assert attempt.state is AttemptState.COMPLETED
    finally:
        runner.shutdown()


def test_a_send_that_raises_fails_the_project_and_leaves_nothing_waiting(tmp_path: Path) -> None:
    """AppTaskExecutor(send=...) hands the job over inside submit(): if the app's queue
    refuses it, the project is FAILED with that reason and the error reaches the caller."""

    def refuse(job: object) -> None:
        msg = "the app's queue is full"
        raise RuntimeError(msg)

    project = MemoryProject(id=5)
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=AppTaskExecutor(refuse)
    )
    try:
        with pytest.raises(RuntimeError, match="queue is full"):
            runner.submit(project)
        assert project.status == "FAILED"
        assert "queue is full" in (runner.error(project) or "")
        assert runner.run_attempt(5) is None, "nothing waits for a task that was never sent"
    finally:
        runner.shutdown()


def test_a_job_whose_task_never_runs_is_stopped_and_a_late_task_renders_nothing(
    tmp_path: Path,
) -> None:
    """A test that mocks the app's task leaves the job waiting: stop_jobs() ends it FAILED,
    and a task that runs after that renders nothing and publishes nothing."""
    project = MemoryProject(id=9)
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=AppTaskExecutor()
    )
    try:
        job = runner.submit(project)
        assert runner.stop_jobs(timeout=10) == 1
        assert job.status is Status.FAILED
        assert runner.run_attempt(9) is None
        assert not (tmp_path / "projects" / "9" / "final.mp4").exists()
    finally:
        runner.shutdown()


def test_run_attempt_without_a_waiting_job_or_a_ledger_says_what_is_missing(
    tmp_path: Path,
) -> None:
    """A task with nothing of this process waiting, on a runner without a ledger, cannot
    find the attempt: a TypeError naming the ledger and the loader."""
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=AppTaskExecutor()
    )
    try:
        with pytest.raises(TypeError, match=r"ledger=Ledger\(store\) and loader="):
            runner.run_attempt(404)
        with pytest.raises(TypeError, match="needs the project's key"):
            runner.run_attempt(None)
    finally:
        runner.shutdown()


def test_run_attempt_through_the_ledger_renders_an_attempt_another_runner_started(
    tmp_path: Path,
) -> None:
    """A task in another process finds nothing waiting there: run_attempt(key) reads the
    project's newest attempt in the ledger, begins it under a new owner and renders it;
    a second delivery of the same task renders nothing; a project never started has
    no attempt."""
    store = MemoryAttemptStore()
    project = MemoryProject(id=11)
    other = MemoryProject(id=12)
    adapter = MemoryAdapter()
    web = RenderRunner(
        adapter,
        FakeRenderer(),
        media_root=tmp_path,
        executor=AppTaskExecutor(),
        ledger=Ledger(store),
        loader=store.loader([project, other]),
    )
    worker = RenderRunner(
        adapter,
        FakeRenderer(frames=2),
        media_root=tmp_path,
        ledger=Ledger(store),
        loader=store.loader([project, other]),
    )
    try:
        started = web.submit(project)
        # The web process's waiting job is not the worker's: the worker reads the ledger.
        from renderstate.runner import _awaiting  # noqa: PLC0415 - the test's one peek

        assert _awaiting.forget(started)
        started.hand_off()
        job = worker.run_attempt(11)
        assert job is not None
        assert job.status is Status.COMPLETED
        assert job.attempt_id == started.attempt_id
        assert job.owner != started.owner
        assert project.status == "COMPLETED"
        assert worker.run_attempt(11) is None, "a second delivery: the attempt has ended"
        assert worker.run_attempt(12) is None, "never started: no attempt"
    finally:
        web.shutdown()
        worker.shutdown()


def test_a_task_of_a_job_rendered_in_immediate_mode_renders_nothing_and_reads_nothing(
    tmp_path: Path,
) -> None:
    """In an app's tests (immediate mode) submit() renders the job; the app's own task,
    which the view then hands its task manager, finds it ended in this process and does not
    ask the ledger (a thread reading the test database beside the test's transaction)."""
    from renderstate.testing import immediate_renders  # noqa: PLC0415

    class NoReads(MemoryAttemptStore):
        reads = 0

        def history(self, *args: object, **kwargs: object) -> list[object]:  # type: ignore[override]
            NoReads.reads += 1
            return super().history(*args, **kwargs)  # type: ignore[arg-type]

    store = NoReads()
    project = MemoryProject(id=21)
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=2),
        media_root=tmp_path,
        executor=AppTaskExecutor(),
        ledger=Ledger(store),
        loader=store.loader([project]),
    )
    try:
        with immediate_renders():
            job = runner.submit(project)
        assert job.status is Status.COMPLETED
        reads = NoReads.reads
        assert runner.run_attempt(21) is None
        assert NoReads.reads == reads
    finally:
        runner.shutdown()
