"""RenderRunner with an attempt ledger: records, fencing of the file and the save, leases,
progress from any runner, set-based recovery."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from renderstate import RenderConflictError, RenderRunner, Status
from renderstate.cli._store import Project, Store
from renderstate.exceptions import AttemptSupersededError
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore
from renderstate.runner import Phase
from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject
from renderstate.typing import ProgressSink
from renderstate.web import status_body


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Gate:
    """A renderer that reports a frame, then waits until released."""

    def __init__(self, frames: int = 4) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.frames = frames

    def __call__(self, project: object, target: Path, progress: ProgressSink) -> None:
        target.write_bytes(b"NEW VIDEO")
        progress("rendering", 1, self.frames)
        self.started.set()
        assert self.release.wait(30)
        for frame in range(2, self.frames + 1):
            progress("rendering", frame, self.frames)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    yield made
    made.close()


def sql_ledger(store: Store, **options: Any) -> Ledger:
    attempts = SQLAlchemyAttemptStore(store.sessions)
    attempts.create_table(store.engine)
    return Ledger(attempts, **options)


def test_submit_records_the_attempt_and_completes_it(tmp_path: Path) -> None:
    """A render through the runner leaves one completed attempt with its actor and timings."""
    ledger = Ledger(MemoryAttemptStore())
    project = MemoryProject()
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=3),
        media_root=tmp_path,
        executor=InlineExecutor(),
        ledger=ledger,
    )
    job = runner.submit(project, actor="ann")
    assert job.wait() is Status.COMPLETED
    assert job.attempt_id is not None
    attempt = ledger.get(job.attempt_id)
    assert attempt is not None
    assert attempt.state is AttemptState.COMPLETED
    assert attempt.actor == "ann"
    assert attempt.output_path == f"projects/{project.id}/final.mp4"
    assert attempt.worker is not None
    assert attempt.started_at is not None
    assert attempt.finished_at is not None
    progress = runner.progress(project)
    assert progress is not None
    assert progress.phase is Phase.DONE
    runner.shutdown()


def test_a_failed_render_records_why(tmp_path: Path) -> None:
    """The attempt of a failed render says why it failed."""
    ledger = Ledger(MemoryAttemptStore())
    project = MemoryProject()
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=5, fail_at_frame=2),
        media_root=tmp_path,
        executor=InlineExecutor(),
        ledger=ledger,
    )
    job = runner.submit(project)
    assert job.wait() is Status.FAILED
    assert job.attempt_id is not None
    attempt = ledger.get(job.attempt_id)
    assert attempt is not None
    assert attempt.state is AttemptState.FAILED
    assert attempt.error == "RuntimeError: FakeRenderer failed at frame 2"
    runner.shutdown()


def test_a_recovered_attempt_neither_replaces_the_video_nor_saves(
    tmp_path: Path, store: Store
) -> None:
    """While a render hangs, another process recovers its attempt (lease expired) and starts
    a new one: the hung render, released, replaces no video and saves nothing."""
    clock = Clock()
    ledger = sql_ledger(store, lease=10.0, clock=clock)
    project = store.create("p", {})
    gate = Gate()
    runner = RenderRunner(store.adapter, gate, media_root=tmp_path, ledger=ledger)
    final = runner.file_path(project)
    final.parent.mkdir(parents=True)
    final.write_bytes(b"OLD VIDEO")
    job = runner.submit(project)
    assert gate.started.wait(10)
    runner._heartbeat.stop()  # type: ignore[union-attr]  # this process "hangs"
    clock.now += 60
    other = sql_ledger(store, lease=10.0, clock=clock)
    recovered = other.recover(store.adapter, other.store.loader(Project))  # type: ignore[attr-defined]
    assert [r.attempt.id for r in recovered] == [job.attempt_id]
    newer = RenderRunner(store.adapter, FakeRenderer(frames=2), media_root=tmp_path, ledger=other)
    newer_job = newer.submit(store.get(project.id))
    assert newer_job.wait(30) is Status.COMPLETED
    after_newer = digest(final)
    gate.release.set()
    job.wait(30)
    assert isinstance(job.error, AttemptSupersededError)
    assert digest(final) == after_newer, "the late attempt replaced the newer video"
    assert store.get(project.id).status == "COMPLETED"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    runner.shutdown()
    newer.shutdown()


def test_a_lost_lease_stops_the_render_at_its_next_frame(tmp_path: Path, store: Store) -> None:
    """When the heartbeat finds its attempt taken away, the render stops at the next frame."""
    ledger = sql_ledger(store, lease=0.6, progress_interval=0.05)
    project = store.create("p", {})
    gate = Gate(frames=1000)
    runner = RenderRunner(store.adapter, gate, media_root=tmp_path, ledger=ledger)
    job = runner.submit(project)
    assert gate.started.wait(10)
    assert job.attempt is not None
    # Another process takes the attempt over (as a start after recovery would).
    ledger.store.update(
        job.attempt.id,
        {"state": AttemptState.SUPERSEDED, "finished_at": time.time()},
        states={AttemptState.RENDERING},
    )
    deadline = time.monotonic() + 10
    while not job._lost and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job._lost
    gate.release.set()
    job.wait(30)
    assert "lease was lost" in str(job.error)
    assert not runner.file_path(project).exists()
    runner.shutdown()


def test_progress_of_another_runners_render(tmp_path: Path, store: Store) -> None:
    """A second runner (another web worker) reads the rendering runner's progress."""
    ledger = sql_ledger(store, progress_interval=0.05)
    project = store.create("p", {})
    gate = Gate(frames=4)
    renderer_side = RenderRunner(store.adapter, gate, media_root=tmp_path, ledger=ledger)
    web_side = RenderRunner(store.adapter, gate, media_root=tmp_path, ledger=sql_ledger(store))
    job = renderer_side.submit(project)
    assert gate.started.wait(10)
    with pytest.raises(RenderConflictError):
        web_side.submit(store.get(project.id))
    deadline = time.monotonic() + 10
    seen = web_side.progress(store.get(project.id))
    while (seen is None or seen.frames_done < 1) and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = web_side.progress(store.get(project.id))
    assert seen is not None
    assert seen.phase is Phase.RENDERING
    assert (seen.frames_done, seen.frames_total, seen.fraction) == (1, 4, 0.25)
    gate.release.set()
    assert job.wait(30) is Status.COMPLETED
    final = web_side.progress(store.get(project.id))
    assert final is not None
    assert final.phase is Phase.DONE
    renderer_side.shutdown()
    web_side.shutdown()


def test_recover_with_a_ledger_needs_a_loader_and_no_projects(tmp_path: Path) -> None:
    """With a ledger, recovery finds its candidates: passing projects, or no loader, is
    refused with the fix."""
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, ledger=Ledger(MemoryAttemptStore())
    )
    with pytest.raises(TypeError, match=r"loader=store.loader\(Project\)"):
        runner.recover_interrupted()
    with pytest.raises(TypeError, match="without projects"):
        runner.recover_interrupted([MemoryProject()])
    plain = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path)
    with pytest.raises(TypeError, match="needs a ledger"):
        plain.recover_interrupted([], requeue=True)


def test_recover_requeues_when_asked(tmp_path: Path) -> None:
    """recover_interrupted(requeue=True) fails the dead attempt and renders it again."""
    clock = Clock()
    attempts = MemoryAttemptStore()
    project = MemoryProject()
    dead = Ledger(attempts, clock=clock)
    dead.start(
        RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path).lifecycle(project)
    )
    clock.now += 3600
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=2),
        media_root=tmp_path,
        executor=InlineExecutor(),
        ledger=Ledger(attempts, clock=clock),
        loader=attempts.loader([project]),
    )
    records = runner.recover_interrupted(requeue=True)
    assert [r.target for r in records] == [Status.FAILED]
    assert project.status == "COMPLETED"
    history = runner._ledger.history("MemoryProject", str(project.id))  # type: ignore[union-attr]
    assert [a.state for a in history] == [AttemptState.COMPLETED, AttemptState.INTERRUPTED]
    runner.shutdown()


def test_ledger_options_are_checked() -> None:
    """A lease out of range, a progress interval not shorter than it, or a queue timeout
    shorter than it (or over a week) is refused; a short lease gets a progress interval of
    a third of it."""
    with pytest.raises(ValueError, match="lease must be"):
        Ledger(MemoryAttemptStore(), lease=0)
    with pytest.raises(ValueError, match="lease must be"):
        Ledger(MemoryAttemptStore(), lease=7200)
    with pytest.raises(ValueError, match="shorter than the lease"):
        Ledger(MemoryAttemptStore(), lease=2.0, progress_interval=2.0)
    with pytest.raises(ValueError, match="queue_timeout must be"):
        Ledger(MemoryAttemptStore(), lease=30, queue_timeout=10)
    with pytest.raises(ValueError, match="queue_timeout must be"):
        Ledger(MemoryAttemptStore(), queue_timeout=30 * 24 * 3600)
    assert Ledger(MemoryAttemptStore()).queue_timeout == 6 * 3600
    assert Ledger(MemoryAttemptStore(), lease=0.6).progress_interval == pytest.approx(0.2)
    assert Ledger(MemoryAttemptStore()).progress_interval == 1.0


def test_oversized_actor_or_path_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """An actor or output path longer than the ledger's columns is a ValueError naming the
    limit; the project stays DRAFT and no attempt is recorded."""
    ledger = Ledger(MemoryAttemptStore())
    project = MemoryProject()
    runner = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path, ledger=ledger)
    lifecycle = runner.lifecycle(project)
    with pytest.raises(ValueError, match="actor is 256 characters; the ledger stores at most 255"):
        runner.submit(project, actor="x" * 256)
    with pytest.raises(ValueError, match="output_path is 501 characters"):
        ledger.start(lifecycle, output_path="p/" + "x" * 499)
    assert project.status == "DRAFT"
    assert ledger.history("MemoryProject", str(project.id)) == []
    runner.shutdown()


def test_a_recovered_attempt_s_error_shows_while_its_hung_job_still_runs(
    tmp_path: Path, store: Store
) -> None:
    """Another process recovered the attempt of a render that hangs here: the row is
    FAILED, and this runner's status body names why at once, not only once the hung job
    notices (its next frame, which may never come); the error used to be null."""
    clock = Clock()
    ledger = sql_ledger(store, lease=10.0, clock=clock)
    project = store.create("p", {})
    gate = Gate()
    runner = RenderRunner(store.adapter, gate, media_root=tmp_path, ledger=ledger)
    job = runner.submit(project)
    assert gate.started.wait(10)
    runner._heartbeat.stop()  # type: ignore[union-attr]  # this process "hangs"
    clock.now += 60
    other = sql_ledger(store, lease=10.0, clock=clock)
    other.recover(store.adapter, other.store.loader(Project))  # type: ignore[attr-defined]
    failed = store.get(project.id)
    assert failed.status == "FAILED"
    assert not job.done()
    body = status_body(failed, runner)
    assert body["progress"] is None
    assert body["error"] is not None
    assert "lease expired" in body["error"]
    # One format, "<class>: <message>", whoever failed the attempt (a cancel reads
    # "RenderCancelledError: ..."; a recovery used to read "its lease expired: ...").
    reason = runner.error(failed)
    assert reason is not None
    assert reason.startswith("RenderInterruptedError: "), reason
    gate.release.set()
    job.wait(30)
    assert status_body(store.get(project.id), runner)["error"] is not None
    runner.shutdown()
