"""Cancel through the ledger with real `celery worker` processes: a render running on a
worker is cancelled from a web process that has no job of it (and from the one that sent
it), and one still waiting in the queue is failed at once, the worker that receives it later
rendering nothing."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from renderstate import RenderRunner, Status
from renderstate.cli._store import Project
from renderstate.ledger import AttemptState
from renderstate.runner.celery import CeleryExecutor
from runner.celery_app import Settings, build_app, store_for
from runner.celery_workers import Workers, new_settings, queued, redis_reachable, workers_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not redis_reachable(), reason="needs Redis at 127.0.0.1:6379"),
]


def _never_here(project: object, target: Path, progress: object) -> None:
    msg = "the web process never renders: its executor sends the job to a worker"
    raise AssertionError(msg)


def web_runner(settings: Settings) -> RenderRunner[Project]:
    """A web process's runner: its executor sends jobs to the workers."""
    store, ledger = store_for(settings)
    return RenderRunner(
        store.adapter,
        _never_here,
        media_root=settings.media,
        executor=CeleryExecutor(build_app(settings), queue=settings.queue),
        ledger=ledger,
        loader=store.loader,
    )


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout} s waiting for {what}"
            raise AssertionError(msg)
        time.sleep(0.05)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(new_settings(tmp_path), frames=100_000, frame_delay=0.01)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    with workers_for(settings, tmp_path / "logs") as started:
        yield started


@pytest.mark.parametrize("where", ["another web process", "the sending one"])
def test_a_render_on_a_worker_is_cancelled_from_a_web_process(
    settings: Settings, workers: Workers, where: str
) -> None:
    """The worker renders; a cancel from a web runner (one without the job, or the one
    that sent it and only follows it) answers True, and the worker's render ends FAILED
    as cancelled: the previous video byte-identical, nothing else beside it."""
    workers.start("prefork", pool="prefork", concurrency=1)
    sender = web_runner(settings)
    other = web_runner(settings) if where == "another web process" else sender
    store = store_for(settings)[0]
    try:
        project = store.create("clip", {"width": 64, "height": 36, "fps": 10})
        final = sender.file_path(project)
        final.parent.mkdir(parents=True)
        final.write_bytes(b"THE PREVIOUS VIDEO")
        job = sender.submit(project)
        ledger = sender.ledger
        assert ledger is not None

        def rendering() -> bool:
            attempt = ledger.get(job.attempt_id or 0)
            return attempt is not None and attempt.done > 3

        wait_for(rendering, 60, "the worker to render frames")
        assert other.cancel(store.get(project.id), "the editor changed the timeline") is True
        assert job.wait(60) is Status.FAILED
        assert store.get(project.id).status == Status.FAILED.value
        attempt = ledger.get(job.attempt_id or 0)
        assert attempt is not None
        assert attempt.state is AttemptState.FAILED
        assert attempt.error is not None
        assert "cancelled: the editor changed the timeline" in attempt.error
        assert final.read_bytes() == b"THE PREVIOUS VIDEO"
        wait_for(
            lambda: sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"],
            10,
            "the worker to remove its private directory",
        )
        assert other.cancel(store.get(project.id)) is False
    finally:
        sender.shutdown()
        other.shutdown()
        store.close()


def test_a_queued_render_is_failed_at_once_and_its_worker_renders_nothing(
    settings: Settings, workers: Workers
) -> None:
    """No worker is running: the spec waits in the broker. A cancel from another web
    process fails it at once (the project FAILED before any worker exists); the worker
    started afterwards receives it and renders nothing."""
    sender = web_runner(settings)
    other = web_runner(settings)
    store = store_for(settings)[0]
    try:
        project = store.create("clip", {"width": 64, "height": 36, "fps": 10})
        job = sender.submit(project)
        assert queued(settings) == 1
        assert other.cancel(store.get(project.id), "not needed any more") is True
        assert store.get(project.id).status == Status.FAILED.value
        assert job.wait(10) is Status.FAILED
        worker = workers.start("solo")
        wait_for(lambda: "succeeded" in worker.output(), 60, "the worker to take the task")
        assert "'not live'" in worker.output()
        (attempt,) = sender.ledger.history(Project.__tablename__, project.id)  # type: ignore[union-attr]
        assert attempt.state is AttemptState.FAILED
        assert attempt.started_at is None, "no worker ever began it"
        assert "cancelled: not needed any more" in (attempt.error or "")
        assert not sender.file_path(project).exists()
    finally:
        sender.shutdown()
        other.shutdown()
        store.close()
