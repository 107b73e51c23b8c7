"""``renderstate.testing.stop_all_jobs`` and an app that builds a runner per request and drops
it: a job still queued in the executor when its runner was garbage-collected is cancelled
before it runs, its attempt ended as a cancel ends it, on a SQLite file, PostgreSQL and
MariaDB (the command line's store), with real threads."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

from renderstate import RenderCancelledError, RenderRunner, Status
from renderstate.cli._store import Project, Store
from renderstate.ledger import AttemptState, Ledger
from renderstate.runner.executors import ThreadExecutor
from renderstate.testing import FakeRenderer, stop_all_jobs
from renderstate.typing import ProgressSink

from .cli_stores import db_targets, store, url

__all__ = ["db_targets", "store", "url"]


HEARTBEATS: list[Any] = []


class Watched:
    """A slow renderer that says when it began each project's render."""

    def __init__(self) -> None:
        self.began: dict[str, threading.Event] = {}
        self._slow = FakeRenderer(frames=100_000, frame_delay=0.01)

    def __call__(self, project: Project, target: Path, progress: ProgressSink) -> None:
        self.began.setdefault(project.id, threading.Event()).set()
        self._slow(project, target, progress)


def _request(store: Store, shared: ThreadExecutor, renderer: Watched, media: Path, key: str) -> Any:
    """One request of an app that builds its runner per request and drops it on return."""
    runner = RenderRunner(
        store.adapter,
        renderer,
        media_root=media,
        executor=shared,
        ledger=Ledger(store.ledger.store, lease=30.0),
        loader=store.loader,
    )
    job = runner.submit(store.get(key))
    # Kept for the test's cleanup alone (the state does not hold the runner): a dropped
    # runner's heartbeat thread outlives it.
    HEARTBEATS.append(runner._state.heartbeat)
    return job, weakref.ref(runner)


@pytest.mark.usefixtures("no_earlier_jobs")
def test_a_queued_job_of_a_collected_runner_is_stopped_before_it_runs(
    tmp_path: Path, store: Store
) -> None:
    """Two requests, each with its own runner, share the app's one render thread: the
    first render runs, the second waits in the queue; both runners are dropped and
    collected. stop_all_jobs cancels both: the queued one ends FAILED as cancelled without
    its renderer ever being called, its project FAILED and its attempt FAILED in the
    database, and nothing renders after the test."""
    shared = ThreadExecutor(max_workers=1)
    renderer = Watched()
    media = tmp_path / "media"
    running, queued = store.create("running", {}), store.create("queued", {})
    first = second = None
    try:
        first, first_runner = _request(store, shared, renderer, media, running.id)
        renderer.began.setdefault(running.id, threading.Event())
        assert renderer.began[running.id].wait(60), "the first render began"
        second, second_runner = _request(store, shared, renderer, media, queued.id)
        gc.collect()
        assert first_runner() is None, "the first request's runner was collected"
        assert second_runner() is None, "the second request's runner was collected"
        assert not second.done()

        assert stop_all_jobs(timeout=60) == 2
        assert first.status is Status.FAILED
        assert second.done()
        assert second.status is Status.FAILED
        assert isinstance(second.error, RenderCancelledError)
        shared.shutdown(wait=True)  # what was still queued has run (or returned at once)
        assert queued.id not in renderer.began, "the queued render never ran"
        assert store.get(queued.id).status == Status.FAILED.value
        attempt = store.current_attempt(store.get(queued.id))
        assert attempt is not None
        assert attempt.state is AttemptState.FAILED
        assert attempt.error is not None
        assert "RenderCancelledError" in attempt.error
    finally:
        for job in (first, second):
            if job is not None:
                job.cancel()  # the test's own cleanup, when stop_all_jobs missed one
        shared.shutdown(wait=True)
        while HEARTBEATS:
            heartbeat = HEARTBEATS.pop()
            if heartbeat is not None:
                heartbeat.stop()
