"""What one delivery of the render task does, in this process, on a memory ledger with a
clock the test moves: render a queued attempt, refuse a duplicate of a live one (changing
nothing), take over a dead worker's attempt (and remove its partial file), do nothing for an
ended one."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from renderstate import AttemptOwnedError, RenderRunner, Status
from renderstate.files import create_temporary
from renderstate.ledger import ACTIVE_STATES, AttemptState, Ledger, new_owner, this_worker
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.runner import JobSpec, RenderJob
from renderstate.runner.celery import CeleryExecutor, Delivery, deliver
from renderstate.testing import FakeRenderer, MemoryAdapter, MemoryProject
from renderstate.typing import Job

LEASE = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Sent:
    """An executor that keeps the jobs as a broker would, and hands them off."""

    def __init__(self) -> None:
        self.jobs: list[RenderJob[Any]] = []

    def schedule(self, job: Job, /) -> None:
        assert isinstance(job, RenderJob)
        self.jobs.append(job)
        job.hand_off()

    def shutdown(self, wait: bool = True) -> None:
        pass


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock()
        self.attempts = MemoryAttemptStore()
        self.ledger = Ledger(self.attempts, lease=LEASE, clock=self.clock)
        self.project = MemoryProject(title="clip")
        loader = self.attempts.loader([self.project])
        self.sent = Sent()
        self.web = RenderRunner(
            MemoryAdapter(),
            FakeRenderer(frames=1),
            media_root=tmp_path,
            executor=self.sent,
            ledger=self.ledger,
            loader=loader,
        )
        self.worker = RenderRunner(
            MemoryAdapter(),
            FakeRenderer(frames=3),
            media_root=tmp_path,
            ledger=self.ledger,
            loader=loader,
        )

    def submit(self) -> JobSpec:
        job = self.web.submit(self.project)
        return JobSpec.from_dict(job.spec.to_dict())

    def owned_by(self, spec: JobSpec, worker: str) -> str:
        """Make ``worker`` the attempt's owner, under a fresh owner token; return the token."""
        assert spec.attempt_id is not None
        owner = new_owner()
        values = {
            "state": AttemptState.RENDERING,
            "worker": worker,
            "owner": owner,
            "lease_expires_at": self.clock.now + LEASE,
        }
        assert self.attempts.update(spec.attempt_id, values, states=ACTIVE_STATES)
        return owner


def test_a_queued_attempt_is_rendered_and_a_second_delivery_does_nothing(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    spec = s.submit()
    outcome, job = deliver(s.worker, spec)
    assert outcome is Delivery.RENDERED
    assert job is not None
    assert job.status is Status.COMPLETED
    assert s.project.status == "COMPLETED"
    again, nothing = deliver(s.worker, spec)
    assert (again, nothing) == (Delivery.NOT_LIVE, None)
    (attempt,) = s.ledger.history("MemoryProject", s.project.id)
    assert attempt.state is AttemptState.COMPLETED
    assert attempt.worker == this_worker()


def test_a_duplicate_of_a_live_render_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    spec = s.submit()
    s.owned_by(spec, "elsewhere:1")
    assert spec.attempt_id is not None
    s.clock.now += 3
    assert s.ledger.heartbeat(spec.attempt_id, {"phase": "rendering", "fraction": 0.8})
    before = s.ledger.get(spec.attempt_id)
    s.clock.now += 4
    outcome, job = deliver(s.worker, spec)
    assert outcome is Delivery.OWNED
    assert job is not None
    assert isinstance(job.error, AttemptOwnedError)
    assert job.error.worker == "elsewhere:1"
    assert job.error.retry_after == pytest.approx(LEASE - 4)
    assert s.project.status == "PROCESSING"
    assert s.ledger.get(spec.attempt_id) == before, "the owner's record, progress 0.8, kept"


def test_a_dead_worker_s_attempt_is_taken_over_and_its_partial_file_removed(
    tmp_path: Path,
) -> None:
    s = Setup(tmp_path)
    spec = s.submit()
    owner = s.owned_by(spec, f"{socket.gethostname()}:999999")
    final = s.worker.media_root / spec.output_path
    final.parent.mkdir(parents=True)
    final.write_bytes(b"previous video")
    partial = create_temporary(final, token=owner[:16])  # named by its owner, as the runner does
    partial.write_bytes(b"half a video")
    s.clock.now += LEASE / 2
    owned, _ = deliver(s.worker, spec)
    assert owned is Delivery.OWNED, "alive as far as anyone can tell: not taken yet"
    assert partial.exists()
    s.clock.now += LEASE / 2 + 0.1  # no renewal for a whole lease: its worker died
    outcome, job = deliver(s.worker, spec)
    assert outcome is Delivery.RENDERED
    assert job is not None
    assert job.status is Status.COMPLETED
    assert not partial.exists()
    assert final.read_bytes().startswith(b"FAKE VIDEO")
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    attempt = s.ledger.get(spec.attempt_id or 0)
    assert attempt is not None
    assert (attempt.state, attempt.worker) == (AttemptState.COMPLETED, this_worker())


def test_an_expired_lease_is_taken_over_at_once(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    spec = s.submit()
    s.owned_by(spec, "another-host:7")
    s.clock.now += LEASE + 1
    outcome, job = deliver(s.worker, spec)
    assert outcome is Delivery.RENDERED
    assert job is not None
    assert job.status is Status.COMPLETED


def test_what_cannot_be_delivered_is_refused_with_a_typed_error(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    plain = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path)
    spec = s.submit()
    with pytest.raises(TypeError, match="needs a ledger"):
        deliver(plain, spec)
    with pytest.raises(ValueError, match="names no attempt"):
        deliver(s.worker, JobSpec(project_key="1", output_path="a.mp4"))
    executor = CeleryExecutor(Celery("x", broker="memory://"))
    with pytest.raises(TypeError, match="RenderJobs of a RenderRunner"):
        executor.schedule(object())  # type: ignore[arg-type]
    assert s.project.status == "PROCESSING"
