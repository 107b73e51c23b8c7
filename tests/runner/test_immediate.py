"""Immediate mode: renders in the submitting thread, for an app's test suite.

Switched on by ``RenderRunner(immediate=True)``, ``RENDERSTATE_IMMEDIATE=1``, Celery's
``task_always_eager`` or ``renderstate.testing.immediate_renders()``: no executor, no
broker, no heartbeat thread; and ``stop_all_jobs``/``RenderJobsMixin`` leave no job
running after a test.
"""

from __future__ import annotations

import gc
import threading
import unittest
import weakref
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from renderstate import RenderRunner, Status
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.runner import RenderJob
from renderstate.runner.celery import CeleryExecutor
from renderstate.testing import (
    FakeRenderer,
    MemoryAdapter,
    MemoryProject,
    RenderJobsMixin,
    immediate_renders,
    stop_all_jobs,
)
from renderstate.typing import Job


class Counting:
    """An executor that would run jobs on a thread of its own, counting them."""

    def __init__(self) -> None:
        self.scheduled = 0
        self.threads: list[threading.Thread] = []

    def schedule(self, job: Job, /) -> None:
        self.scheduled += 1
        thread = threading.Thread(target=job.run, daemon=True)
        self.threads.append(thread)
        thread.start()

    def shutdown(self, wait: bool = True) -> None:
        for thread in self.threads:
            thread.join(10)


def runner(tmp_path: Path, executor: Any, **options: Any) -> RenderRunner[MemoryProject]:
    return RenderRunner(
        MemoryAdapter(), FakeRenderer(frames=3), media_root=tmp_path, executor=executor, **options
    )


def rendered_here(job: RenderJob[Any], executor: Counting, scheduled: int = 0) -> bool:
    """Whether ``job`` had ended when submit returned, the executor still at ``scheduled``."""
    return job.done() and job.status is Status.COMPLETED and executor.scheduled == scheduled


@pytest.mark.parametrize("text", ["1", "true", "YES", " on "])
def test_the_environment_variable_renders_in_the_submitting_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("RENDERSTATE_IMMEDIATE", text)
    executor = Counting()
    with runner(tmp_path, executor) as r:
        project = MemoryProject()
        job = r.submit(project)
        assert rendered_here(job, executor)
        assert project.status == "COMPLETED"
        assert (tmp_path / job.output_path).read_bytes().startswith(b"FAKE VIDEO")


@pytest.mark.parametrize("text", ["0", "false", "", "off"])
def test_a_no_in_the_environment_leaves_renders_to_the_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("RENDERSTATE_IMMEDIATE", text)
    executor = Counting()
    with runner(tmp_path, executor) as r:
        job = r.submit(MemoryProject())
        assert executor.scheduled == 1
        assert job.wait(10) is Status.COMPLETED


def test_a_bad_environment_value_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENDERSTATE_IMMEDIATE", "maybe")
    executor = Counting()
    with runner(tmp_path, executor) as r:
        project = MemoryProject()
        with pytest.raises(ValueError, match=r"RENDERSTATE_IMMEDIATE='maybe'.*set it to 1"):
            r.submit(project)
        assert project.status == "DRAFT"
        assert executor.scheduled == 0
        assert not any(tmp_path.iterdir())


def test_the_runner_s_own_setting_beats_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENDERSTATE_IMMEDIATE", "1")
    executor = Counting()
    with runner(tmp_path, executor, immediate=False) as r:
        job = r.submit(MemoryProject())
        assert executor.scheduled == 1
        job.wait(10)
    monkeypatch.setenv("RENDERSTATE_IMMEDIATE", "0")
    executor = Counting()
    with runner(tmp_path, executor, immediate=True) as r:
        assert rendered_here(r.submit(MemoryProject()), executor)


def test_immediate_renders_beats_the_runner_and_the_innermost_block_decides(
    tmp_path: Path,
) -> None:
    executor = Counting()
    with runner(tmp_path, executor, immediate=False) as r:
        with immediate_renders():
            assert rendered_here(r.submit(MemoryProject()), executor)
            with immediate_renders(enabled=False):
                r.submit(MemoryProject()).wait(10)
                assert executor.scheduled == 1
            assert rendered_here(r.submit(MemoryProject()), executor, scheduled=1)
        r.submit(MemoryProject()).wait(10)
        assert executor.scheduled == 2


def test_with_a_ledger_no_heartbeat_thread_runs_and_the_attempt_completes(
    tmp_path: Path,
) -> None:
    store = MemoryAttemptStore()
    ledger = Ledger(store, lease=30.0)
    project = MemoryProject()
    executor = Counting()
    before = {t.name for t in threading.enumerate()}
    with runner(
        tmp_path, executor, ledger=ledger, loader=store.loader([project]), immediate=True
    ) as r:
        job = r.submit(project, actor="test")
        assert rendered_here(job, executor)
        names = {t.name for t in threading.enumerate()} - before
        assert "renderstate-heartbeat" not in names, names
    (attempt,) = ledger.history("MemoryProject", project.id)
    assert attempt.state is AttemptState.COMPLETED
    assert attempt.actor == "test"


def test_without_immediate_the_same_runner_starts_its_heartbeat(tmp_path: Path) -> None:
    """The control of the test above: a ledger runner renews its attempt on a thread."""
    store = MemoryAttemptStore()
    project = MemoryProject()
    slow = FakeRenderer(frames=20, frame_delay=0.05)
    with RenderRunner(
        MemoryAdapter(),
        slow,
        media_root=tmp_path,
        ledger=Ledger(store, lease=30.0),
        loader=store.loader([project]),
    ) as r:
        job = r.submit(project)
        assert "renderstate-heartbeat" in {t.name for t in threading.enumerate()}
        job.wait(30)


UNREACHABLE = "redis://127.0.0.1:9/0"
"""A broker nobody listens on (the discard port): sending to it fails at once."""


def celery_app(eager: bool) -> Celery:
    app = Celery("immediate-tests", broker=UNREACHABLE, set_as_current=False)
    app.conf.task_always_eager = eager
    app.conf.broker_connection_retry = False
    app.conf.broker_connection_max_retries = 0
    app.conf.broker_transport_options = {"max_retries": 0}
    return app


def test_celery_s_task_always_eager_renders_here_and_sends_nothing(tmp_path: Path) -> None:
    store = MemoryAttemptStore()
    project = MemoryProject()
    executor = CeleryExecutor(celery_app(eager=True))
    assert executor.runs_in_caller
    before = {t.name for t in threading.enumerate()}
    with RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=2),
        media_root=tmp_path,
        executor=executor,
        ledger=Ledger(store, lease=30.0),
        loader=store.loader([project]),
    ) as r:
        job = r.submit(project)
        assert job.done()
        assert job.status is Status.COMPLETED
        assert project.status == "COMPLETED"
        assert "renderstate-heartbeat" not in {t.name for t in threading.enumerate()} - before
    # Like an eager apply_async, the render has a task id, recorded on its attempt.
    assert job.task_id
    assert job.attempt is not None
    stored = store.get(job.attempt.id)
    assert stored is not None
    assert stored.task_id == job.task_id


def test_other_immediate_renders_have_no_task_id(tmp_path: Path) -> None:
    """Immediate mode with a Celery executor that is not eager sends nothing: no id."""
    store = MemoryAttemptStore()
    project = MemoryProject()
    with RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=2),
        media_root=tmp_path,
        executor=CeleryExecutor(celery_app(eager=False)),
        ledger=Ledger(store, lease=30.0),
        loader=store.loader([project]),
        immediate=True,
    ) as r:
        job = r.submit(project)
        assert job.status is Status.COMPLETED
    assert job.task_id is None
    assert job.attempt is not None
    stored = store.get(job.attempt.id)
    assert stored is not None
    assert stored.task_id is None


def test_without_eager_the_same_submit_goes_to_the_broker(tmp_path: Path) -> None:
    """The control: not eager, the spec is sent, and the unreachable broker fails it."""
    store = MemoryAttemptStore()
    project = MemoryProject()
    executor = CeleryExecutor(celery_app(eager=False))
    assert not executor.runs_in_caller
    with (
        RenderRunner(
            MemoryAdapter(),
            FakeRenderer(frames=2),
            media_root=tmp_path,
            executor=executor,
            ledger=Ledger(store, lease=30.0),
            loader=store.loader([project]),
        ) as r,
        pytest.raises(Exception, match=r"(?i)connect|refused|Error"),
    ):
        r.submit(project)
    assert project.status == "FAILED"


@pytest.mark.usefixtures("no_earlier_jobs")
def test_stop_all_jobs_stops_the_jobs_of_runners_it_never_saw(tmp_path: Path) -> None:
    slow = FakeRenderer(frames=10_000, frame_delay=0.01)
    first = RenderRunner(MemoryAdapter(), slow, media_root=tmp_path / "a")
    second = RenderRunner(MemoryAdapter(), slow, media_root=tmp_path / "b")
    try:
        jobs = [first.submit(MemoryProject()), second.submit(MemoryProject())]
        assert stop_all_jobs(timeout=30) == 2
        assert all(job.done() and job.status is Status.FAILED for job in jobs)
        again = first.submit(MemoryProject())  # the runner is still open
        assert again.cancel()
        assert again.wait(30) is Status.FAILED
    finally:
        first.shutdown(cancel_running=True)
        second.shutdown(cancel_running=True)


@pytest.mark.usefixtures("no_earlier_jobs")
def test_stop_all_jobs_stops_a_running_job_whose_runner_was_collected(tmp_path: Path) -> None:
    """An app that dropped its runner (built per request, say) while a render runs: the
    runner is garbage-collected, and stop_all_jobs still cancels that job and waits for
    it, so its thread has ended when the test's database goes."""
    executor = Counting()
    slow = FakeRenderer(frames=10_000, frame_delay=0.01)
    app_runner = RenderRunner(MemoryAdapter(), slow, media_root=tmp_path, executor=executor)
    job = app_runner.submit(MemoryProject())
    while job.progress.frames_done == 0:  # rendering (a bound: the job's own frames)
        assert not job.done()
        threading.Event().wait(0.01)
    collected = weakref.ref(app_runner)
    del app_runner
    gc.collect()
    assert collected() is None, "the runner was collected"
    try:
        assert stop_all_jobs(timeout=30) == 1
        assert job.done()
        assert job.status is Status.FAILED
        executor.threads[0].join(30)
        assert not executor.threads[0].is_alive(), "its thread has ended"
    finally:
        job.cancel()
        executor.shutdown()


def test_render_jobs_mixin_stops_the_jobs_and_renders_immediately(tmp_path: Path) -> None:
    """An app's unittest suite: one test leaves a slow job behind, the mixin ends it."""
    slow = FakeRenderer(frames=10_000, frame_delay=0.01)
    app_runner = RenderRunner(MemoryAdapter(), slow, media_root=tmp_path)
    executor = Counting()
    quick = runner(tmp_path / "q", executor)
    left: list[RenderJob[Any]] = []
    inline: list[RenderJob[Any]] = []

    class Exports(RenderJobsMixin, unittest.TestCase):
        def test_leaves_a_job_running(self) -> None:
            left.append(app_runner.submit(MemoryProject()))
            assert not left[0].done()

    class ImmediateExports(RenderJobsMixin, unittest.TestCase):
        render_immediately = True

        def test_renders_before_submit_returns(self) -> None:
            inline.append(quick.submit(MemoryProject()))
            assert rendered_here(inline[0], executor)

    try:
        suite = unittest.TestSuite(
            [
                Exports("test_leaves_a_job_running"),
                ImmediateExports("test_renders_before_submit_returns"),
            ]
        )
        result = unittest.TextTestRunner(stream=_Null(), verbosity=0).run(suite)
        assert result.wasSuccessful(), result.failures + result.errors
        assert left[0].done(), "the job outlived its test"
        assert left[0].status is Status.FAILED
        assert inline[0].status is Status.COMPLETED
        quick.submit(MemoryProject()).wait(10)
        assert executor.scheduled == 1, "immediate mode ended with the test"
    finally:
        app_runner.shutdown(cancel_running=True)
        quick.shutdown()


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
