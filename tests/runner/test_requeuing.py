"""RenderRunner.sweep and RenderRunner.hand_back in one process, over the command line's
SQLite store: what a task-queue worker does for a dead worker's render and on its own warm
shutdown, without a broker (the Celery tests run them with real workers)."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from renderstate import RenderHandedBackError, RenderRunner, Status
from renderstate.cli._store import Project, Store
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger._identity import machine_id, start_time
from renderstate.runner import JobSpec
from renderstate.testing import FakeRenderer
from renderstate.typing import Job

ROUTE = "celery:renders"


class QueueExecutor:
    """Sends nothing anywhere: keeps the specs, as a task queue would hold them."""

    route = ROUTE

    def __init__(self) -> None:
        self.sent: list[JobSpec] = []

    def schedule(self, job: Job, /) -> None:
        self.sent.append(job.spec)  # type: ignore[attr-defined]
        job.hand_off()  # type: ignore[attr-defined]

    def shutdown(self, wait: bool = True) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    yield made
    made.close()


class Clock:
    """The ledgers' clock, moved on by the test."""

    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _runner(store: Store, tmp_path: Path, **kwargs: object) -> RenderRunner[Project]:
    clock = kwargs.pop("clock", None)
    return RenderRunner(
        store.adapter,
        kwargs.pop("renderer", FakeRenderer(frames=2)),  # type: ignore[arg-type]
        media_root=tmp_path / "media",
        ledger=Ledger(store.ledger.store, lease=30.0, clock=clock),  # type: ignore[arg-type]
        loader=store.loader,
        **kwargs,  # type: ignore[arg-type]
    )


def _gone_worker() -> str:
    """The worker name of a process of this machine that has exited."""
    child = subprocess.Popen(["sleep", "60"])
    name = f"{socket.gethostname()}:{child.pid}@{start_time(child.pid)}/{machine_id()}"
    child.kill()
    child.wait()
    return name


def test_a_sweep_sends_a_dead_worker_s_render_to_its_queue_and_fails_a_thread_s(
    store: Store, tmp_path: Path
) -> None:
    """A render handed to a queue whose worker died is queued again and given to send with
    its queue; one its own process's executor ran (no queue), whose process died, is
    failed with its project, and the runner's observers hear of it."""
    executor = QueueExecutor()
    clock = Clock()
    web = _runner(store, tmp_path, executor=executor, clock=clock)
    sent_project = store.create("sent", {"width": 8, "height": 8})
    job = web.submit(sent_project)
    assert job.attempt is not None
    ledger = web.ledger
    assert ledger is not None
    ledger.begin(job.attempt, worker=_gone_worker())  # a worker began it, then died
    threaded = store.create("threaded", {"width": 8, "height": 8})
    _, attempt = ledger.start(web.lifecycle(threaded))
    ledger.begin(attempt, worker=_gone_worker())
    told: list[object] = []
    worker = _runner(store, tmp_path, observers=[told.append], clock=clock)
    clock.now += 20  # both missed a renewal (their owners are gone); neither lease ran out
    sent: list[tuple[JobSpec, str]] = []
    swept = worker.sweep("celery", lambda spec, route: sent.append((spec, route)))
    assert {s.attempt.id for s in swept} == {job.attempt.id, attempt.id}
    ((spec, route),) = sent
    assert route == ROUTE
    assert (spec.attempt_id, spec.project_key, spec.output_path) == (
        job.attempt.id,
        str(sent_project.id),
        job.output_path,
    )
    again = ledger.get(job.attempt.id)
    assert again is not None
    assert again.state is AttemptState.QUEUED
    assert store.get(sent_project.id).status == Status.PROCESSING.value
    assert store.get(threaded.id).status == Status.FAILED.value
    assert len(told) == 1


def test_hand_back_stops_a_delivered_render_and_queues_its_attempt_again(
    store: Store, tmp_path: Path
) -> None:
    """A render running for a task queue stops at its next frame on hand_back(): its job
    ends with RenderHandedBackError and PROCESSING, its attempt is queued again under a
    fresh owner, its temporary files are gone and the previous video is as it was."""
    executor = QueueExecutor()
    web = _runner(store, tmp_path, executor=executor)
    project = store.create("clip", {"width": 8, "height": 8})
    final = web.file_path(project)
    final.parent.mkdir(parents=True)
    final.write_bytes(b"previous video")
    submitted = web.submit(project)
    worker = _runner(store, tmp_path, renderer=FakeRenderer(frames=10_000, frame_delay=0.01))
    jobs: list[object] = []
    thread = threading.Thread(target=lambda: jobs.append(worker.execute(executor.sent[0])))
    thread.start()
    ledger = web.ledger
    assert ledger is not None
    assert submitted.attempt is not None
    attempt_id = submitted.attempt.id

    for _ in range(1000):
        current = worker.job(project)
        if current is not None and current.progress.fraction > 0:
            break
        threading.Event().wait(0.01)
    begun = ledger.get(attempt_id)
    assert begun is not None
    assert begun.state is AttemptState.RENDERING
    assert worker.hand_back("the worker is stopping") == 1
    thread.join(timeout=30)
    (job,) = jobs
    assert isinstance(job.error, RenderHandedBackError)  # type: ignore[attr-defined]
    assert job.status is Status.PROCESSING  # type: ignore[attr-defined]
    back = ledger.get(attempt_id)
    assert back is not None
    assert back.state is AttemptState.QUEUED
    assert back.owner not in {None, begun.owner}
    assert store.get(project.id).status == Status.PROCESSING.value
    assert final.read_bytes() == b"previous video"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    assert worker.hand_back() == 0, "nothing left to hand back"
    worker.shutdown()
    web.shutdown()
