"""One owner per attempt: a duplicate delivery, a takeover and a begin that failed change
nothing that belongs to the attempt's owner, in threads of one process and in separate
processes, on SQLite, PostgreSQL and MariaDB. The owner's render completes and its video is
published; only the owner token decides who may renew, end or clean up an attempt."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from renderstate import ProjectLifecycle, RenderRunner, Status
from renderstate.adapters.sqlalchemy import SQLAlchemyAdapter
from renderstate.cli._store import ATTEMPTS, Project, Store
from renderstate.exceptions import AttemptOwnedError
from renderstate.files import publishing
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore
from renderstate.testing import FakeRenderer

from .cli_stores import db_targets, store, url
from .ownership import Flaky, Held, Sending, Worker, in_thread

__all__ = ["db_targets", "store", "url"]

CHILD = Path(__file__).with_name("ownership.py")
LEASE = 1.0

pytestmark = pytest.mark.slow


@pytest.fixture
def workers(url: str, store: Store) -> Iterator[list[Worker]]:
    """Workers' own connection pools, closed at the end (``store`` made the tables)."""
    made: list[Worker] = []
    yield made
    for worker in made:
        worker.close()


class Scene:
    """A project submitted through a runner that sends its job away, and its spec."""

    def __init__(self, store: Store, media: Path) -> None:
        self.store = store
        self.media = media
        self.executor = Sending()
        self.sender: RenderRunner[Project] = RenderRunner(
            store.adapter,
            FakeRenderer(),
            media_root=media,
            ledger=store.ledger,
            loader=store.loader,
            executor=self.executor,
        )
        self.project = store.create("owned", {})
        self.sender.submit(self.project)
        self.spec = self.executor.specs[0]
        self.final = media / "projects" / self.project.id / "final.mp4"

    def status(self) -> str:
        return self.store.get(self.project.id).status

    def attempt(self) -> Any:
        found = self.store.ledger.get(self.spec.attempt_id or 0)
        assert found is not None
        return found

    def child(self, lock_timeout: float = 0.0) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                str(CHILD),
                self.store.url,
                str(self.media),
                json.dumps(self.spec.to_dict()),
                str(lock_timeout),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def close(self) -> None:
        self.sender.shutdown()


def report(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def owner_completes(scene: Scene, held: Held, out: list[Any], thread: threading.Thread) -> None:
    """Release the owner's render: it completes and its video is the published one."""
    held.release.set()
    thread.join(60)
    job = out[0]
    assert not isinstance(job, BaseException), job
    assert job.wait(30) is Status.COMPLETED, job.error
    assert scene.status() == "COMPLETED"
    assert scene.final.read_bytes() == held.content
    assert scene.attempt().state is AttemptState.COMPLETED
    assert sorted(p.name for p in scene.final.parent.iterdir()) == ["final.mp4"]


def test_a_duplicate_delivery_in_the_same_process_leaves_the_owner_alone(
    tmp_path: Path, store: Store, workers: list[Worker]
) -> None:
    """A task delivered twice to one worker process (a threads pool): the second
    execute() is refused, and the first one's registration, heartbeat and files are
    untouched: its lease stays renewed for three leases, recovery spares it, it completes
    and its video is published."""
    scene = Scene(store, tmp_path / "media")
    worker = Worker(store.url)
    workers.append(worker)
    held = Held(b"the owner's video")
    runner = worker.runner(held, scene.media, lease=LEASE, max_workers=1)
    try:
        thread, out = in_thread(lambda: runner.execute(scene.spec))
        assert held.started.wait(30)
        duplicate = runner.execute(scene.spec)
        assert isinstance(duplicate.error, AttemptOwnedError), duplicate.error
        assert runner.job(store.get(scene.project.id)) is not duplicate
        assert held.targets[0].exists(), "the owner's file was left alone"
        time.sleep(3 * LEASE)
        attempt = scene.attempt()
        assert attempt.state is AttemptState.RENDERING
        assert attempt.lease_expires_at is not None
        assert attempt.lease_expires_at > time.time(), "its heartbeat still renews it"
        assert scene.sender.recover_interrupted() == []
        owner_completes(scene, held, out, thread)
    finally:
        held.release.set()
        runner.shutdown()
        scene.close()


def test_a_duplicate_delivery_in_another_process_leaves_the_owner_alone(
    tmp_path: Path, store: Store, workers: list[Worker]
) -> None:
    """The same duplicate, delivered to a worker in another process."""
    scene = Scene(store, tmp_path / "media")
    worker = Worker(store.url)
    workers.append(worker)
    held = Held(b"the owner's video")
    runner = worker.runner(held, scene.media, lease=LEASE)
    try:
        thread, out = in_thread(lambda: runner.execute(scene.spec))
        assert held.started.wait(30)
        assert report(scene.child())["error"] == "AttemptOwnedError"
        assert held.targets[0].exists()
        assert scene.status() == "PROCESSING"
        owner_completes(scene, held, out, thread)
    finally:
        held.release.set()
        runner.shutdown()
        scene.close()


def test_a_takeover_in_the_same_process_fences_the_stalled_runner(
    tmp_path: Path, store: Store, workers: list[Worker]
) -> None:
    """Two runners in one process share its host:pid. Runner 1's database goes away for
    longer than a lease; runner 2 takes the attempt over and leaves runner 1's files
    alone (runner 1 is alive, here). When runner 1's database comes back, its heartbeats
    are refused and it stops, saving nothing; runner 2's render completes and its video
    is published."""
    scene = Scene(store, tmp_path / "media")
    first_worker, second_worker = Worker(store.url), Worker(store.url)
    workers += [first_worker, second_worker]
    flaky = Flaky(first_worker.attempts)
    stalled = Held(b"runner 1's video")
    first = first_worker.runner(stalled, scene.media, lease=LEASE, store=flaky)
    taking = Held(b"runner 2's video")
    second = second_worker.runner(taking, scene.media, lease=LEASE)
    try:
        first_thread, first_out = in_thread(lambda: first.execute(scene.spec))
        assert stalled.started.wait(30)
        flaky.down.set()
        time.sleep(1.5 * LEASE)
        thread, out = in_thread(lambda: second.execute(scene.spec))
        assert taking.started.wait(30)
        assert stalled.targets[0].exists(), "runner 1 is alive: its file is its own"
        flaky.down.clear()
        stalled.release.set()
        first_thread.join(60)
        stopped = first_out[0]
        stopped.wait(30)
        assert stopped.error is not None, "runner 1's own end was refused"
        assert not stalled.targets[0].exists(), "runner 1 removed its own file"
        assert scene.status() == "PROCESSING", "runner 1 saved nothing"
        owner_completes(scene, taking, out, thread)
    finally:
        stalled.release.set()
        taking.release.set()
        flaky.down.clear()
        first.shutdown()
        second.shutdown()
        scene.close()


def test_a_takeover_by_another_process_fences_the_stalled_runner(
    tmp_path: Path, store: Store, workers: list[Worker]
) -> None:
    """Runner 1 stalls past its lease; a worker in another process takes the attempt over
    and completes it; runner 1, back, saves nothing and its file is gone."""
    scene = Scene(store, tmp_path / "media")
    first_worker = Worker(store.url)
    workers.append(first_worker)
    flaky = Flaky(first_worker.attempts)
    stalled = Held(b"runner 1's video")
    first = first_worker.runner(stalled, scene.media, lease=LEASE, store=flaky)
    try:
        first_thread, first_out = in_thread(lambda: first.execute(scene.spec))
        assert stalled.started.wait(30)
        flaky.down.set()
        time.sleep(1.5 * LEASE)
        taken = report(scene.child())
        assert (taken["status"], taken["error"]) == ("COMPLETED", None)
        published = scene.final.read_bytes()
        flaky.down.clear()
        stalled.release.set()
        first_thread.join(60)
        stopped = first_out[0]
        stopped.wait(30)
        assert stopped.error is not None, "runner 1's own end was refused"
        assert scene.status() == "COMPLETED"
        assert scene.final.read_bytes() == published != stalled.content
        assert scene.attempt().state is AttemptState.COMPLETED
        assert sorted(p.name for p in scene.final.parent.iterdir()) == ["final.mp4"]
    finally:
        stalled.release.set()
        flaky.down.clear()
        first.shutdown()
        scene.close()


class FailedBegin(logging.Handler):
    """Set once the runner logs that a job failed (a begin that raised, here)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "failed" in record.getMessage():
            self.seen.set()


@pytest.mark.parametrize("where", ["thread", "process"])
def test_a_begin_that_failed_changes_nothing_of_the_owner(
    tmp_path: Path, store: Store, where: str
) -> None:
    """A redelivery whose begin hits a store error cannot know whether it took the
    attempt: it fails only an attempt still queued or held under its own token.

    Real locks: the owner's begin runs inside a transaction of its own that stays open,
    so the attempt's row (the whole database, on SQLite) is locked when the redelivery's
    begin tries it, and the redelivery's statement gives up after its lock timeout. Once
    the redelivery has failed, the owner's transaction commits: the attempt is the
    owner's, rendering. The redelivery's attempt to save FAILED must then change nothing
    (it used to fail the owner's attempt and the project, going by the attempt it had
    read); the owner completes and its video is published."""
    scene = Scene(store, tmp_path / "media")
    owner_engine = create_engine(store.url)
    session = Session(owner_engine, expire_on_commit=False)
    owner_ledger = Ledger(SQLAlchemyAttemptStore(session, table=ATTEMPTS), lease=30.0)
    watch = FailedBegin()
    logging.getLogger("renderstate.runner").addHandler(watch)
    try:
        session.begin()
        queued = owner_ledger.get(scene.spec.attempt_id or 0)
        assert queued is not None
        owned = owner_ledger.begin(queued)  # its UPDATE holds the row, uncommitted
        if where == "thread":
            redelivered = Worker(store.url, lock_timeout=1.0)
            late = redelivered.runner(FakeRenderer(), scene.media, lease=30.0, persist_timeout=8.0)
            thread, out = in_thread(lambda: late.execute(scene.spec))
            assert watch.seen.wait(60), "the redelivery's begin never failed"
            session.commit()
            thread.join(60)
            job = out[0]
            late.shutdown()
            redelivered.close()
            assert not isinstance(job, BaseException), job
            outcome = {
                "status": job.status.value if job.status else None,
                "error": type(job.error).__name__ if job.error else None,
            }
        else:
            child = scene.child(lock_timeout=1.0)
            assert child.stderr is not None
            for line in child.stderr:  # the child logs its failed begin
                if "failed" in line:
                    break
            session.commit()
            outcome = report(child)
        assert outcome["error"] not in (None, "AttemptOwnedError"), outcome
        assert outcome["status"] == "PROCESSING", outcome
        assert scene.status() == "PROCESSING"
        attempt = scene.attempt()
        assert (attempt.state, attempt.owner) == (AttemptState.RENDERING, owned.owner)
        project = session.get(Project, scene.project.id)
        assert project is not None
        lifecycle = ProjectLifecycle(project, SQLAlchemyAdapter(sessionmaker(owner_engine)))
        path = f"projects/{scene.project.id}/final.mp4"
        records = []

        def commit() -> None:  # the owner's fenced completion, after its video's rename
            records.append(owner_ledger.complete(lifecycle, owned, path))
            session.commit()  # the session's own transaction (it read the project)

        with publishing(scene.final, commit=commit, tag=owned.id) as target:
            target.write_bytes(b"the owner's video")
        assert records[0].target is Status.COMPLETED
        assert scene.status() == "COMPLETED"
        assert scene.attempt().state is AttemptState.COMPLETED
        assert scene.final.read_bytes() == b"the owner's video"
        assert sorted(p.name for p in scene.final.parent.iterdir()) == ["final.mp4"]
    finally:
        logging.getLogger("renderstate.runner").removeHandler(watch)
        if session.in_transaction():
            session.rollback()
        session.close()
        owner_engine.dispose()
        scene.close()
