"""The runner's heartbeat (``renderstate.runner._heartbeat``) over real stores: one ledger
transaction per tick whatever the number of renders, each beat told its own outcome, and a
row locked by another transaction delaying nothing but its own renewal."""

from __future__ import annotations

import contextlib
import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.orm import sessionmaker

from adapters.conftest import target_for
from renderstate.ledger import Attempt, Ledger, Renewal, Renewed
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore
from renderstate.runner import Phase
from renderstate.runner._heartbeat import Heartbeat
from renderstate.runner.progress import Progress

from .contract import LedgerHarness
from .test_cancel_requests import any_harness
from .test_renewals import _begun, _row_locked, locking_harness, row_locking, sqlalchemy_harness
from .test_sqlalchemy import TABLE, SQLAlchemyLedgerHarness

__all__ = ["any_harness", "locking_harness", "row_locking", "sqlalchemy_harness"]


class CountingLedger(Ledger):
    """A ledger that keeps each ``renew`` call's renewals and outcomes (nothing changed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[list[Renewal], list[Renewed]]] = []

    def renew(self, renewals: Sequence[Renewal]) -> list[Renewed]:
        results = super().renew(renewals)
        self.calls.append((list(renewals), results))
        return results


def _frames() -> Callable[[], Progress]:
    """A render's progress that moves on at every read."""
    counter = itertools.count(1)

    def read() -> Progress:
        done = next(counter)
        return Progress(
            phase=Phase.RENDERING,
            fraction=min(done / 10_000, 1.0),
            frames_done=done,
            frames_total=10_000,
            elapsed=0.0,
            eta=None,
            step="rendering",
            step_done=done,
            step_total=10_000,
        )

    return read


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (a bound that fails a hung test, not a timing)."""
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def test_twenty_renders_commit_once_per_tick(sqlalchemy_harness: LedgerHarness) -> None:
    """Twenty renders held by one heartbeat thread: each tick is one committed transaction
    (the engine's commits counted) that writes every render's progress; the per-render
    heartbeat committed twenty."""
    harness = sqlalchemy_harness
    ledger = CountingLedger(harness.store(), lease=30.0, progress_interval=0.1)
    begun = [_begun(harness, ledger)[2] for _ in range(20)]
    commits: list[object] = []

    def committed(connection: object) -> None:
        commits.append(connection)

    engine = harness.engine  # type: ignore[attr-defined]
    lost: list[int] = []
    heartbeat = Heartbeat(ledger, contextlib.nullcontext)
    event.listen(engine, "commit", committed)
    try:
        for attempt in begun:
            assert attempt.owner is not None
            heartbeat.add(attempt.owner, attempt, _frames(), lambda a=attempt: lost.append(a.id))
        _wait_for(lambda: len(ledger.calls) >= 3, "three ticks")
    finally:
        heartbeat.stop()
        event.remove(engine, "commit", committed)
    assert lost == []
    assert len(commits) == len(ledger.calls), "one transaction per tick"
    for renewals, _ in ledger.calls:
        assert {r.attempt.id for r in renewals} == {a.id for a in begun}  # type: ignore[union-attr]
    for attempt in begun:
        now = ledger.get(attempt.id)
        assert now is not None
        assert now.done > 0, "its progress was written"


def _idle_heartbeat(ledger: Ledger) -> Heartbeat:
    """A heartbeat whose own thread would not tick for a long while: the test ticks it."""
    return Heartbeat(ledger, contextlib.nullcontext)


def _all_due(heartbeat: Heartbeat) -> list[Any]:
    beats = list(heartbeat._beats.values())
    for beat in beats:  # as if their last write were long ago: every one is due
        beat.renewed_at = beat.progress_at = float("-inf")
    return beats


def test_each_beat_of_one_tick_gets_its_own_outcome(any_harness: LedgerHarness) -> None:
    """One tick holds a live render, one someone asked to cancel and one taken over: the
    live one's progress is written, the cancelled one is told once (with the reason) and
    keeps its lease, the taken-over one is told it lost; only it leaves the heartbeat."""
    harness = any_harness
    ledger = CountingLedger(harness.store(), lease=3000.0, progress_interval=1000.0)
    _, _, live = _begun(harness, ledger)
    cancelled_key, _, cancelled = _begun(harness, ledger)
    _, queued, _ = _begun(harness, ledger)  # held under the start's token: taken over
    assert ledger.cancel(harness.lifecycle(harness.load(cancelled_key)), "the user left")
    told: list[tuple[str, object]] = []
    heartbeat = _idle_heartbeat(ledger)
    try:
        for attempt, name in ((live, "live"), (cancelled, "cancelled"), (queued, "taken")):
            assert attempt.owner is not None
            heartbeat.add(
                attempt.owner,
                attempt,
                _frames(),
                on_lost=lambda name=name: told.append(("lost", name)),
                on_cancel=lambda reason, name=name: told.append((name, reason)),
            )
        before = ledger.get(cancelled.id)
        heartbeat.tick(_all_due(heartbeat))
        assert told == [("cancelled", "the user left"), ("lost", "taken")]
        first = ledger.calls[0][1]
        assert [r.outcome.value for r in first] == ["renewed", "cancel requested", "lost"]
        assert len(ledger.calls) == 2, "the cancelled one renewed again, without the condition"
        assert [r.attempt.id for r in ledger.calls[1][0]] == [cancelled.id]  # type: ignore[union-attr]
        assert [r.outcome.value for r in ledger.calls[1][1]] == ["renewed"]
        assert set(heartbeat._beats) == {live.owner, cancelled.owner}
        heartbeat.tick(_all_due(heartbeat))
        assert len(told) == 2, "each told once"
    finally:
        heartbeat.stop()
    now = ledger.get(live.id)
    assert now is not None
    assert now.done > 0
    kept = ledger.get(cancelled.id)
    assert kept is not None
    assert before is not None
    assert kept.lease_expires_at is not None
    assert before.lease_expires_at is not None
    assert kept.lease_expires_at > before.lease_expires_at, "it keeps its lease while it stops"


def test_a_locked_row_delays_only_its_own_renewal(locking_harness: LedgerHarness) -> None:
    """While another transaction holds one render's row locked, the tick renews the two
    others at once and leaves that one due, nothing written and not lost; the next tick
    after the lock is gone renews it."""
    harness = locking_harness
    ledger = CountingLedger(harness.store(), lease=3000.0, progress_interval=1000.0)
    first, held, last = (_begun(harness, ledger)[2] for _ in range(3))
    lost: list[int] = []
    heartbeat = _idle_heartbeat(ledger)
    try:
        for attempt in (first, held, last):
            assert attempt.owner is not None
            heartbeat.add(attempt.owner, attempt, _frames(), lambda a=attempt: lost.append(a.id))
        with _row_locked(harness, held.id):

            def tick() -> None:
                try:
                    heartbeat.tick(_all_due(heartbeat))
                finally:
                    harness.release()

            worker = threading.Thread(target=tick)
            worker.start()
            worker.join(timeout=120)  # a bound for a renewal that waits, not a timing
            blocked = worker.is_alive()
        worker.join()
        assert not blocked, "the tick waited for the locked row"
        done = {a.id: _done(ledger, a) for a in (first, held, last)}
        assert done == {first.id: 1, held.id: 0, last.id: 1}
        heartbeat.tick(_all_due(heartbeat))
        assert _done(ledger, held) > 0, "renewed at the next tick"
    finally:
        heartbeat.stop()
    assert lost == []


def _done(ledger: Ledger, attempt: Attempt) -> int:
    now = ledger.get(attempt.id)
    assert now is not None
    return now.done


def test_a_locked_sqlite_database_logs_one_traceback_per_streak(
    db_targets: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """While another connection holds SQLite's write lock (``BEGIN EXCLUSIVE``) every
    renewal fails with "database is locked": the first failure is logged with its
    traceback, the next ones as one line with the count, and the first renewal after the
    lock is released logs once that renewals recovered."""
    harness = SQLAlchemyLedgerHarness(target_for(db_targets, "sqlite"), variant=False)
    harness.prepare()
    ledger = Ledger(harness.store(), lease=3000.0, progress_interval=1000.0)
    _, _, attempt = _begun(harness, ledger)
    # The heartbeat's own engine waits only briefly for the lock, as a busy app's would.
    engine = create_engine(harness.target.sqlalchemy_url(), connect_args={"timeout": 0.05})
    quick = Ledger(
        SQLAlchemyAttemptStore(sessionmaker(engine), table=TABLE),
        lease=3000.0,
        progress_interval=1000.0,
    )
    heartbeat = _idle_heartbeat(quick)
    lost: list[int] = []
    blocker = sqlite3.connect(harness.target.name, isolation_level=None)
    caplog.set_level(logging.INFO, logger="renderstate.runner")
    try:
        assert attempt.owner is not None
        heartbeat.add(attempt.owner, attempt, _frames(), lambda: lost.append(attempt.id))
        blocker.execute("BEGIN EXCLUSIVE")
        for _ in range(4):
            heartbeat.tick(_all_due(heartbeat))
        blocker.execute("ROLLBACK")
        heartbeat.tick(_all_due(heartbeat))
        heartbeat.tick(_all_due(heartbeat))
    finally:
        heartbeat.stop()
        blocker.close()
        engine.dispose()
    records = [r for r in caplog.records if r.name == "renderstate.runner"]
    assert [(r.levelno, r.exc_info is not None) for r in records] == [
        (logging.WARNING, True),
        (logging.WARNING, False),
        (logging.WARNING, False),
        (logging.WARNING, False),
        (logging.INFO, False),
    ]
    assert "database is locked" in records[1].getMessage()
    assert all("\n" not in r.getMessage() for r in records[1:]), "one line each"
    assert "4 failures in a row" in records[3].getMessage()
    assert "after 4 failed" in records[4].getMessage()
    assert lost == []
