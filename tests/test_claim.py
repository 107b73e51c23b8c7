"""claim_render / fail_on_error: a claim is never orphaned, without any runner."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

import pytest

from renderstate import (
    Change,
    ProjectLifecycle,
    RenderConflictError,
    Status,
    aclaim_render,
    afail_on_error,
    claim_render,
    fail_on_error,
)
from renderstate.adapters.memory import AsyncMemoryAdapter, MemoryAdapter
from renderstate.testing import MemoryProject, RecordingObserver


class BrokerDownError(ConnectionError):
    pass


class TaskQueue:
    """A fake task system that runs jobs by id, and can be told its broker is down."""

    def __init__(self) -> None:
        self.jobs: dict[int, Callable[[], None]] = {}
        self.down = False

    def enqueue(self, job: Callable[[], None]) -> int:
        if self.down:
            raise BrokerDownError("the broker refused the connection")
        job_id = len(self.jobs) + 1
        self.jobs[job_id] = job
        return job_id

    def run(self, job_id: int) -> None:
        self.jobs.pop(job_id)()


def lifecycle_of(
    project: MemoryProject, observer: RecordingObserver | None = None
) -> ProjectLifecycle[MemoryProject]:
    return ProjectLifecycle(project, MemoryAdapter(), observers=[observer] if observer else [])


def test_a_job_the_task_queue_refuses_fails_the_project_and_propagates() -> None:
    """The app's fault: PROCESSING forever after the broker refused the job."""
    project = MemoryProject(status="COMPLETED", output_path="projects/1/final.mp4")
    observer = RecordingObserver()
    queue = TaskQueue()
    queue.down = True
    with pytest.raises(BrokerDownError), claim_render(lifecycle_of(project, observer)):
        queue.enqueue(lambda: None)
    assert project.status == "FAILED"
    assert project.output_path == "projects/1/final.mp4"  # the last good video stays
    assert [r.target for r in observer.records] == [Status.PROCESSING, Status.FAILED]
    assert observer.records[-1].error == "BrokerDownError: the broker refused the connection"
    # and it can be retried
    queue.down = False
    with claim_render(lifecycle_of(project)) as started:
        queue.enqueue(lambda: None)
    assert started.target is Status.PROCESSING
    assert project.status == "PROCESSING"


def test_a_claim_handed_to_a_worker_is_finished_by_the_worker() -> None:
    """Start + schedule in the view, render + complete in the job: both halves guarded."""
    project = MemoryProject()
    queue = TaskQueue()

    def render(fail: bool) -> None:
        lifecycle = lifecycle_of(project)
        with fail_on_error(lifecycle):
            if fail:
                raise RuntimeError("encoder crashed")
            lifecycle.complete("projects/1/final.mp4")

    with claim_render(lifecycle_of(project)):
        job_id = queue.enqueue(lambda: render(fail=False))
    assert project.status == "PROCESSING"  # handed off: the guard does nothing more
    queue.run(job_id)
    assert project.status == "COMPLETED"

    with claim_render(lifecycle_of(project)):
        job_id = queue.enqueue(lambda: render(fail=True))
    with pytest.raises(RuntimeError, match="encoder crashed"):
        queue.run(job_id)
    assert project.status == "FAILED"
    assert project.output_path == "projects/1/final.mp4"


def test_a_refused_start_leaves_the_running_render_alone() -> None:
    """409: nothing was claimed, so nothing is failed; the block never runs."""
    project = MemoryProject(status="PROCESSING")
    ran = []
    with pytest.raises(RenderConflictError), claim_render(lifecycle_of(project)):
        ran.append(True)
    assert ran == []
    assert project.status == "PROCESSING"


@pytest.mark.parametrize("raised", [KeyboardInterrupt(), SystemExit(3)])
def test_an_interrupt_after_the_start_fails_the_project_and_propagates(
    raised: BaseException,
) -> None:
    """Ctrl-C between the start and the hand-off does not orphan the claim."""
    project = MemoryProject()
    with pytest.raises(type(raised)), claim_render(lifecycle_of(project)):
        raise raised
    assert project.status == "FAILED"


def test_an_error_after_completing_changes_nothing() -> None:
    """The block completed the render, then raised: COMPLETED stays, the error propagates."""
    project = MemoryProject()
    lifecycle = lifecycle_of(project)
    with pytest.raises(ValueError, match="after"), claim_render(lifecycle):  # noqa: PT012 - the block is under test
        lifecycle.complete("projects/1/final.mp4")
        raise ValueError("after the end")
    assert project.status == "COMPLETED"


class FailingFailAdapter(MemoryAdapter):
    """Starts and completes, but the database is down when FAILED is to be saved."""

    def apply(self, project: object, change: Change) -> bool:
        if change.values.get("status") == "FAILED":
            raise ConnectionError("database is down")
        return super().apply(project, change)


def test_when_failing_is_impossible_the_original_error_wins_and_is_annotated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """fail() itself raising: logged, noted on the block's error, which propagates."""
    project = MemoryProject()
    lifecycle = ProjectLifecycle(project, FailingFailAdapter())
    with (
        caplog.at_level(logging.ERROR, logger="renderstate"),
        pytest.raises(BrokerDownError) as info,
        claim_render(lifecycle),
    ):
        raise BrokerDownError("refused")
    assert project.status == "PROCESSING"  # left for recovery
    assert "could not be marked FAILED" in caplog.text
    assert "database is down" in caplog.text
    if sys.version_info >= (3, 11):
        assert any("stays PROCESSING until recovery" in n for n in info.value.__notes__)


def test_the_async_guards_fail_the_project_on_errors_and_cancellation() -> None:
    """aclaim_render / afail_on_error: the same guard on an async adapter."""

    async def scenario() -> None:
        project = MemoryProject()
        lifecycle = ProjectLifecycle(project, AsyncMemoryAdapter())
        with pytest.raises(BrokerDownError):  # noqa: PT012 - the guarded block is under test
            async with aclaim_render(lifecycle) as started:
                assert started.target is Status.PROCESSING
                raise BrokerDownError("refused")
        assert project.status == "FAILED"

        async with aclaim_render(lifecycle):
            pass  # handed off
        assert project.status == "PROCESSING"

        async def worker() -> None:
            async with afail_on_error(lifecycle):
                await asyncio.sleep(60)

        task = asyncio.ensure_future(worker())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert project.status == "FAILED"

        project.status = "PROCESSING"
        with pytest.raises(RenderConflictError):
            async with aclaim_render(lifecycle):
                pytest.fail("the block must not run after a refused start")
        assert project.status == "PROCESSING"

    asyncio.run(scenario())
