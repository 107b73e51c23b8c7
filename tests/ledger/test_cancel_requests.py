"""Cancel requests through the ledger, on every store and database: a queued attempt is
failed at once with its project, a rendering one gets the request on its row (its
heartbeat told, its completion refused), and nothing live means nothing written."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters.conftest import BACKEND_PARAMS, target_for
from adapters.databases import Target
from renderstate import ProjectLifecycle, RenderCancelledError, RenderRunner, Status
from renderstate.exceptions import AttemptSupersededError
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.testing import FakeRenderer, MemoryAdapter, MemoryProject

from .contract import Clock, LedgerHarness, ledger_for
from .test_memory import MemoryLedgerHarness


@pytest.fixture(
    params=[
        pytest.param(("memory", None), id="memory"),
        *(
            pytest.param((store, b.values[0]), marks=b.marks, id=f"{store}-{b.id}")
            for store in ("sqlalchemy", "django", "peewee")
            for b in BACKEND_PARAMS
        ),
    ]
)
def any_harness(
    request: pytest.FixtureRequest, db_targets: dict[str, Target | Exception]
) -> LedgerHarness:
    """The memory store, and each SQL store on each database, prepared."""
    from .test_django import DjangoLedgerHarness  # noqa: PLC0415 - the modules import conftest
    from .test_peewee import PeeweeLedgerHarness  # noqa: PLC0415
    from .test_sqlalchemy import SQLAlchemyLedgerHarness  # noqa: PLC0415

    store, backend = request.param
    if store == "memory":
        return MemoryLedgerHarness()
    classes: dict[str, type[LedgerHarness]] = {
        "sqlalchemy": SQLAlchemyLedgerHarness,
        "django": DjangoLedgerHarness,
        "peewee": PeeweeLedgerHarness,
    }
    made = classes[store](target_for(db_targets, backend), variant=False)
    made.prepare()
    return made


def test_a_queued_attempt_is_failed_at_once_with_its_project(any_harness: LedgerHarness) -> None:
    """No worker began it (it waits in a task queue): cancel fails the attempt and the
    project in one transaction; a worker that receives it later renders nothing."""
    harness = any_harness
    ledger = ledger_for(harness)
    key = harness.insert()
    lifecycle = harness.lifecycle(harness.load(key))
    _, attempt = ledger.start(lifecycle)
    assert ledger.hand_off(attempt)
    assert ledger.cancel(harness.lifecycle(harness.load(key)), "the user gave up") is True
    assert harness.row(key)["status"] == harness.literal(Status.FAILED)
    ended = ledger.get(attempt.id)
    assert ended is not None
    assert ended.state is AttemptState.FAILED
    assert ended.cancel_requested
    assert ended.cancel_reason == "the user gave up"
    assert ended.error is not None
    assert "RenderCancelledError" in ended.error
    assert "cancelled: the user gave up" in ended.error
    with pytest.raises(AttemptSupersededError):
        ledger.begin(attempt)
    assert ledger.cancel(harness.lifecycle(harness.load(key))) is False, "nothing live now"


def test_a_rendering_attempt_is_asked_and_its_completion_refused(
    any_harness: LedgerHarness,
) -> None:
    """The request is recorded on the live attempt; the owner's heartbeat that asks
    (unless_cancelled) is refused, a plain renewal still keeps the lease; its completion
    is refused with RenderCancelledError, publishing nothing and writing nothing; its
    fail then ends it."""
    harness = any_harness
    clock = Clock()
    ledger = ledger_for(harness, clock)
    other = ledger_for(harness, clock)  # another process's ledger: nothing shared
    key = harness.insert()
    lifecycle = harness.lifecycle(harness.load(key))
    _, attempt = ledger.start(lifecycle, output_path="projects/a/final.mp4")
    begun = ledger.begin(attempt, worker="render-host:42")
    assert ledger.heartbeat(begun, unless_cancelled=True)
    assert other.cancel(harness.lifecycle(harness.load(key)), "stop") is True
    asked = other.get(begun.id)
    assert asked is not None
    assert asked.state is AttemptState.RENDERING
    assert (asked.cancel_requested, asked.cancel_reason) == (True, "stop")
    assert asked.cancel_requested_at == clock.now
    assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)
    assert not ledger.heartbeat(begun, unless_cancelled=True)
    clock.now += 4
    assert ledger.heartbeat(begun), "the owner keeps its lease while it stops"
    renewed = ledger.get(begun.id)
    assert renewed is not None
    assert renewed.lease_expires_at == clock.now + 10.0
    published: list[str] = []
    with pytest.raises(RenderCancelledError, match="cancelled: stop"):
        ledger.complete(
            lifecycle, begun, "projects/a/final.mp4", publish=lambda: published.append("x")
        )
    assert published == []
    assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)
    assert harness.row(key)["output"] == harness.no_output
    still = ledger.get(begun.id)
    assert still is not None
    assert still.state is AttemptState.RENDERING
    record = ledger.fail(lifecycle, begun, RenderCancelledError(project_key=key, reason="stop"))
    assert record.target is Status.FAILED
    assert harness.row(key)["status"] == harness.literal(Status.FAILED)
    assert other.cancel(harness.lifecycle(harness.load(key)), "again") is False


def test_nothing_live_is_no_cancel_and_writes_nothing(any_harness: LedgerHarness) -> None:
    """A project that never rendered, or whose render completed, has nothing to cancel:
    False, and its row and attempts are as they were."""
    harness = any_harness
    ledger = ledger_for(harness)
    key = harness.insert()
    before = harness.attempts()
    assert ledger.cancel(harness.lifecycle(harness.load(key))) is False
    assert harness.attempts() == before
    assert harness.row(key)["status"] == harness.literal(Status.DRAFT)
    lifecycle = harness.lifecycle(harness.load(key))
    _, attempt = ledger.start(lifecycle)
    ledger.complete(lifecycle, ledger.begin(attempt), "projects/a/final.mp4")
    assert ledger.cancel(harness.lifecycle(harness.load(key)), "late") is False
    done = ledger.get(attempt.id)
    assert done is not None
    assert done.state is AttemptState.COMPLETED
    assert not done.cancel_requested
    assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)


def test_a_cancel_reason_that_is_not_text_is_refused(any_harness: LedgerHarness) -> None:
    """A reason that is not a string is a TypeError naming it; nothing is written."""
    harness = any_harness
    ledger: Ledger = ledger_for(harness)
    key = harness.insert()
    lifecycle = harness.lifecycle(harness.load(key))
    _, attempt = ledger.start(lifecycle)
    with pytest.raises(TypeError, match="cancel reason must be a string"):
        ledger.cancel(lifecycle, 42)  # type: ignore[arg-type]
    still = ledger.get(attempt.id)
    assert still is not None
    assert still.state is AttemptState.QUEUED
    assert not still.cancel_requested


class EarlierStore:
    """A store written before cancel requests: its update() takes no ``uncancelled``."""

    def __init__(self) -> None:
        self.inner = MemoryAttemptStore()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update(
        self,
        attempt_id: int,
        values: Mapping[str, object],
        *,
        states: Collection[AttemptState],
        lease_before: float | None = None,
        worker: str | None = None,
        owner: str | None = None,
    ) -> bool:
        return self.inner.update(
            attempt_id, values, states=states, lease_before=lease_before, worker=worker, owner=owner
        )


def test_a_store_written_before_cancel_requests_keeps_working(tmp_path: Path) -> None:
    """Its heartbeats, completions and a whole render work as before; a cancel through
    the ledger is a TypeError naming the keyword, and the runner answers False (nothing it
    can ask), as it did."""
    ledger = Ledger(EarlierStore())  # type: ignore[arg-type]
    project = MemoryProject(id=1)  # type: ignore[arg-type]
    lifecycle = ProjectLifecycle(project, MemoryAdapter())
    _, attempt = ledger.start(lifecycle)
    begun = ledger.begin(attempt)
    assert ledger.heartbeat(begun, unless_cancelled=True)
    with pytest.raises(TypeError, match="takes no 'uncancelled'"):
        ledger.cancel(lifecycle)
    ledger.complete(lifecycle, begun, "projects/1/final.mp4")
    assert project.status == "COMPLETED"
    with RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, ledger=ledger
    ) as runner:
        assert runner.submit(project).wait(30) is Status.COMPLETED
        other = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path, ledger=ledger)
        assert other.cancel(project) is False
        other.shutdown()
