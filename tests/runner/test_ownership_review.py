"""One owner per attempt, attacked: an interrupt in the middle of a begin, and a shutdown
racing a delivery. Each job that took (or may have taken) an attempt ends it, lets go of its
token and its heartbeat, and never leaves its project PROCESSING behind a render that is not
running; on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from renderstate import RenderRunner, Status
from renderstate.cli._store import Project, Store
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger._owners import _live
from renderstate.testing import FakeRenderer, InlineExecutor

from .cli_stores import db_targets, store, url
from .ownership import Flaky, Held, Worker, in_thread
from .test_ownership import LEASE, Scene, workers

__all__ = ["db_targets", "store", "url", "workers"]

pytestmark = pytest.mark.slow


class AfterBegin(Flaky):
    """A real store that runs ``at_read_back`` once, when the begin's read-back starts (its
    ``UPDATE`` to rendering has committed): the moment a signal or a shutdown lands."""

    def __init__(self, store: Any, at_read_back: Any) -> None:
        super().__init__(store)
        self._at_read_back = at_read_back
        self._armed = False

    def update(self, attempt_id: int, values: Mapping[str, object], **fences: Any) -> bool:
        applied = super().update(attempt_id, values, **fences)
        if applied and values.get("state") is AttemptState.RENDERING:
            self._armed = True
        return applied

    def get(self, attempt_id: int) -> Any:
        if self._armed:
            self._armed = False
            self._at_read_back()
        return super().get(attempt_id)


def test_an_interrupt_during_begin_ends_the_job_and_fails_its_attempt(
    tmp_path: Path, store: Store, workers: list[Worker]
) -> None:
    """Ctrl-C (a real SIGINT) lands while a job's begin reads back the attempt it has just
    taken, in a runner whose executor renders in the caller's thread. The interrupt
    propagated out of the begin past everything: the job never ended (wait() and
    stop_jobs() blocked for ever), its owner token stayed in the process's live set, and
    the attempt stayed rendering under a token nobody renews. Like an interrupt during the
    render, it now fails the attempt it holds (give_up), ends the job, lets go of its
    token, and only then propagates."""
    worker = Worker(store.url)
    workers.append(worker)
    interrupting = AfterBegin(worker.attempts, lambda: os.kill(os.getpid(), signal.SIGINT))
    runner = RenderRunner(
        worker.adapter,
        FakeRenderer(),
        media_root=tmp_path,
        executor=InlineExecutor(),
        ledger=Ledger(interrupting, lease=30.0),
        loader=worker.loader,
    )
    project = store.create("interrupted", {})
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.submit(worker.loader(project.id) or project)
        job = runner.job(store.get(project.id))
        assert job is not None
        assert job.done(), "the interrupted job has ended"
        assert job.wait(5) is Status.FAILED
        assert runner.stop_jobs(timeout=5) == 0
        assert store.get(project.id).status == "FAILED"
        attempt = store.ledger.get(job.attempt_id or 0)
        assert attempt is not None
        assert attempt.state is AttemptState.FAILED
        assert job.owner not in _live, "the job let go of its token"
    finally:
        runner.shutdown()


def test_a_delivery_that_shutdown_refuses_after_its_begin_lets_the_attempt_go(
    tmp_path: Path, store: Store, workers: list[Worker]
) -> None:
    """shutdown(wait=False) lands between a delivery's begin and its registration: the
    delivery is refused (RuntimeError), but it had begun the attempt and kept it alive in
    the heartbeat, which went on renewing it for as long as the process lived: the
    project stayed PROCESSING, rendered by nobody, and recovery never could touch it. The
    refused delivery now ends its attempt and lets go of its heartbeat and token."""
    scene = Scene(store, tmp_path / "media")
    worker = Worker(store.url)
    workers.append(worker)
    reached, go_on = threading.Event(), threading.Event()

    def shut_down_here() -> None:
        reached.set()
        assert go_on.wait(30)

    held = Held(b"never rendered")
    store_here = AfterBegin(worker.attempts, shut_down_here)
    runner = worker.runner(held, scene.media, lease=LEASE, store=store_here)
    try:
        thread, out = in_thread(lambda: runner.execute(scene.spec))
        assert reached.wait(30)
        runner.shutdown(wait=False)
        go_on.set()
        thread.join(30)
        assert isinstance(out[0], RuntimeError), out
        assert not held.started.is_set()
        time.sleep(3 * LEASE)
        attempt = scene.attempt()
        assert not attempt.active or (attempt.lease_expires_at or 0) < time.time(), (
            "nobody renews an attempt that nobody renders"
        )
        assert attempt.owner not in _live
        assert scene.status() == "FAILED"
        assert attempt.state is AttemptState.FAILED
    finally:
        held.release.set()
        go_on.set()
        runner.shutdown()
        scene.close()


__all__ += ["Project"]
