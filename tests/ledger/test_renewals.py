"""Ledger.renew, on every store and database: many leases and their progress in one
transaction, each renewal fenced as a heartbeat is, its outcome told per renewal, and a
row another transaction holds locked skipped instead of waited for."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
import pymysql
import pytest
from sqlalchemy import event

from adapters.conftest import BACKEND_PARAMS, target_for
from adapters.databases import MARIADB, PG, Target
from renderstate import Status
from renderstate.ledger import (
    Attempt,
    AttemptState,
    Ledger,
    Renewal,
    RenewalOutcome,
    Renewed,
)
from renderstate.ledger.memory import MemoryAttemptStore

from .contract import Clock, LedgerHarness, ledger_for
from .test_cancel_requests import any_harness

__all__ = ["any_harness"]

RENEWED = RenewalOutcome.RENEWED
LOST = RenewalOutcome.LOST
CANCEL = RenewalOutcome.CANCEL_REQUESTED
SKIPPED = RenewalOutcome.SKIPPED


def _harness(store: str, backend: str, db_targets: dict[str, Target | Exception]) -> LedgerHarness:
    from .test_django import DjangoLedgerHarness  # noqa: PLC0415 - the modules import conftest
    from .test_peewee import PeeweeLedgerHarness  # noqa: PLC0415
    from .test_sqlalchemy import SQLAlchemyLedgerHarness  # noqa: PLC0415

    classes: dict[str, type[LedgerHarness]] = {
        "sqlalchemy": SQLAlchemyLedgerHarness,
        "django": DjangoLedgerHarness,
        "peewee": PeeweeLedgerHarness,
    }
    made = classes[store](target_for(db_targets, backend), variant=False)
    made.prepare()
    return made


@pytest.fixture(params=[b for b in BACKEND_PARAMS if b.id != "sqlite"])
def row_locking(request: pytest.FixtureRequest) -> Any:
    """Each SQL store on each database with row locks (PostgreSQL, MariaDB), prepared."""
    return request.param


@pytest.fixture(params=["sqlalchemy", "django", "peewee"])
def locking_harness(
    request: pytest.FixtureRequest, row_locking: str, db_targets: dict[str, Target | Exception]
) -> LedgerHarness:
    """Each SQL store on PostgreSQL and MariaDB (SQLite locks the whole database)."""
    return _harness(request.param, row_locking, db_targets)


@pytest.fixture(params=BACKEND_PARAMS)
def sqlalchemy_harness(
    request: pytest.FixtureRequest, db_targets: dict[str, Target | Exception]
) -> LedgerHarness:
    """The SQLAlchemy store on each database, prepared."""
    return _harness("sqlalchemy", request.param, db_targets)


def _begun(harness: LedgerHarness, ledger: Ledger) -> tuple[object, Attempt, Attempt]:
    """A new project's started attempt, and the same attempt as a worker began it."""
    key = harness.insert()
    _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
    return key, attempt, ledger.begin(attempt, worker="render-host:42")


def _outcomes(results: list[Renewed]) -> list[RenewalOutcome]:
    return [result.outcome for result in results]


def test_mixed_renewals_each_get_their_own_outcome(any_harness: LedgerHarness) -> None:
    """One call renews the live ones with their progress, refuses a cancelled one (its
    reason told, nothing written), a taken-over owner and an ended attempt (lost), and
    skips an attempt not in the ledger; only the renewed rows change."""
    harness = any_harness
    clock = Clock()
    ledger = ledger_for(harness, clock)
    _, _, live = _begun(harness, ledger)
    cancelled_key, _, cancelled = _begun(harness, ledger)
    _, queued, taken = _begun(harness, ledger)  # `queued` holds the start's token
    ended_key, _, ended = _begun(harness, ledger)
    _, _, bare = _begun(harness, ledger)
    assert ledger.cancel(harness.lifecycle(harness.load(cancelled_key)), "the user left")
    ledger.complete(harness.lifecycle(harness.load(ended_key)), ended, "projects/e/final.mp4")
    clock.now += 4
    progress = {"phase": "rendering", "done": 12, "total": 48, "fraction": 0.25}
    results = ledger.renew(
        [
            Renewal(live, {**progress, "eta_seconds": 9.0}, unless_cancelled=True),
            Renewal(cancelled, {"phase": "rendering", "done": 5}, unless_cancelled=True),
            Renewal(queued, {"done": 7}),
            Renewal(taken, {"phase": "encoding", "done": 3, "eta_seconds": None}),
            Renewal(ended, {"done": 99}),
            Renewal(bare.id),
            Renewal(2**40),
        ]
    )
    assert _outcomes(results) == [RENEWED, CANCEL, LOST, RENEWED, LOST, RENEWED, SKIPPED]
    assert results[0].stored is None
    refused = results[1].stored
    assert refused is not None
    assert refused.cancel_reason == "the user left"
    assert results[2].stored is not None
    assert results[2].stored.owner == taken.owner, "who holds it now"
    assert results[4].stored is not None
    assert results[4].stored.state is AttemptState.COMPLETED
    reader = ledger_for(harness)
    now = reader.get(live.id)
    assert now is not None
    assert (now.phase, now.done, now.total, now.fraction) == ("rendering", 12, 48, 0.25)
    assert (now.eta_seconds, now.lease_expires_at) == (9.0, clock.now + 10.0)
    now = reader.get(taken.id)
    assert now is not None
    assert (now.phase, now.done, now.total, now.eta_seconds) == ("encoding", 3, 0, None)
    assert now.lease_expires_at == clock.now + 10.0
    now = reader.get(bare.id)
    assert now is not None
    assert (now.phase, now.lease_expires_at) == ("queued", clock.now + 10.0)
    untouched = reader.get(cancelled.id)
    assert untouched is not None
    assert (untouched.phase, untouched.done) == ("queued", 0), "nothing written"
    assert untouched.lease_expires_at == cancelled.lease_expires_at
    finished = reader.get(ended.id)
    assert finished is not None
    assert (finished.done, finished.lease_expires_at) == (ended.done, ended.lease_expires_at)
    assert harness.row(ended_key)["status"] == harness.literal(Status.COMPLETED)
    again = ledger.renew([Renewal(cancelled, {"done": 6})])
    assert _outcomes(again) == [RENEWED], "without the condition the owner keeps its lease"


def test_two_owners_of_one_attempt_in_one_call(any_harness: LedgerHarness) -> None:
    """Two jobs of one attempt in one process (a duplicate delivery) renew in the same
    call: only the owner's progress is written, the other is told it lost."""
    harness = any_harness
    clock = Clock()
    ledger = ledger_for(harness, clock)
    _, attempt, first = _begun(harness, ledger)
    clock.now += 11  # the first owner stalled past its lease: a second one takes over
    second = ledger.begin(attempt, worker="render-host:43")
    results = ledger.renew([Renewal(first, {"done": 1}), Renewal(second, {"done": 2})])
    assert _outcomes(results) == [LOST, RENEWED]
    now = ledger.get(attempt.id)
    assert now is not None
    assert (now.owner, now.done) == (second.owner, 2)


@pytest.mark.parametrize("how", ["renew", "heartbeat"])
def test_numpy_counts_are_stored_as_the_numbers_they_are(
    any_harness: LedgerHarness, how: str
) -> None:
    """A renderer's numpy counts (frame indexes from numpy) are stored as numbers, by a
    renewal and by a heartbeat: the SQLAlchemy store on SQLite wrote an ``int64`` as an
    8-byte blob, which every reader of the progress then got back as ``bytes``."""
    harness = any_harness
    clock = Clock()
    ledger = ledger_for(harness, clock)
    _, _, attempt = _begun(harness, ledger)
    clock.now += 3
    progress = {
        "done": np.int64(12),
        "total": np.int32(48),
        "fraction": np.float32(0.25),
        "eta_seconds": np.float64(3.5),
    }
    if how == "renew":
        assert _outcomes(ledger.renew([Renewal(attempt, progress)])) == [RENEWED]
    else:
        assert ledger.heartbeat(attempt, progress)
    now = ledger.get(attempt.id)
    assert now is not None
    stored = (now.done, now.total, now.fraction, now.eta_seconds)
    assert stored == (12, 48, 0.25, 3.5)
    assert [type(value) for value in stored] == [int, int, float, float]


def test_a_worker_holding_hundreds_of_renders_renews_them_all(any_harness: LedgerHarness) -> None:
    """A web process whose thread executor holds 1200 queued exports renews every one at
    each tick. One statement for them all was refused (Peewee nests each fence in
    parentheses: SQLite's parser overflowed from about 70 renewals, Python's recursion
    limit from about 600 on every database; SQLite refuses an expression deeper than 1000),
    so no lease was renewed and recovery failed renders that were alive."""
    harness = any_harness
    clock = Clock()
    ledger = ledger_for(harness, clock)
    attempts = [_begun(harness, ledger)[2] for _ in range(12)]
    clock.now += 3
    progress = {"phase": "rendering", "done": 5, "total": 10, "fraction": 0.5}
    renewals = [Renewal(attempts[i % 12], progress) for i in range(1200)]
    assert _outcomes(ledger.renew(renewals)) == [RENEWED] * 1200
    for attempt in attempts:
        now = ledger.get(attempt.id)
        assert now is not None
        assert (now.done, now.lease_expires_at) == (5, clock.now + 10.0)


def test_bad_progress_is_refused_before_anything_is_written(any_harness: LedgerHarness) -> None:
    """A progress value no store holds, in any renewal, refuses the whole call naming that
    renewal; no lease is renewed."""
    harness = any_harness
    clock = Clock()
    ledger = ledger_for(harness, clock)
    _, _, good = _begun(harness, ledger)
    _, _, bad = _begun(harness, ledger)
    clock.now += 3
    with pytest.raises(ValueError, match=r"renewal 1 \(attempt \d+\).*fraction"):
        ledger.renew([Renewal(good, {"done": 1}), Renewal(bad, {"fraction": 2.0})])
    with pytest.raises(ValueError, match="renewal 0 has unknown progress fields"):
        ledger.renew([Renewal(good, {"frames": 1})])
    with pytest.raises(TypeError, match="renewal 0 is a Attempt; give Renewal"):
        ledger.renew([good])  # type: ignore[list-item]
    now = ledger.get(good.id)
    assert now is not None
    assert (now.done, now.lease_expires_at) == (0, good.lease_expires_at)
    assert ledger.renew([]) == []


def test_a_store_without_renew_gets_one_update_per_renewal() -> None:
    """A store written for an earlier version (no ``renew``) still renews each lease, by
    its fenced update, with the same outcomes."""

    class Earlier:
        def __init__(self) -> None:
            self.inner = MemoryAttemptStore()

        def __getattr__(self, name: str) -> Any:
            if name == "renew":
                raise AttributeError(name)
            return getattr(self.inner, name)

    from renderstate import ProjectLifecycle  # noqa: PLC0415
    from renderstate.testing import MemoryAdapter, MemoryProject  # noqa: PLC0415

    ledger = Ledger(Earlier())  # type: ignore[arg-type]
    adapter = MemoryAdapter()
    _, first = ledger.start(ProjectLifecycle(MemoryProject(title="a"), adapter))
    begun = ledger.begin(first)
    asked = ProjectLifecycle(MemoryProject(title="b"), adapter)
    _, second = ledger.start(asked)
    second = ledger.begin(second)
    assert ledger.cancel(asked, "stop")
    results = ledger.renew(
        [
            Renewal(begun, {"done": 4}),
            Renewal(first),
            Renewal(second, unless_cancelled=True),
            Renewal(77),
        ]
    )
    assert _outcomes(results) == [RENEWED, LOST, CANCEL, SKIPPED]
    now = ledger.get(begun.id)
    assert now is not None
    assert now.done == 4


def test_one_call_is_one_transaction(sqlalchemy_harness: LedgerHarness) -> None:
    """Twenty renewals with progress commit once (the SQLAlchemy store; its engine's
    commits counted), where twenty heartbeats commit twenty times."""
    harness = sqlalchemy_harness
    ledger = ledger_for(harness)
    begun = [_begun(harness, ledger)[2] for _ in range(20)]
    commits: list[object] = []
    engine = harness.engine  # type: ignore[attr-defined]

    def listener(connection: object) -> None:
        commits.append(connection)

    event.listen(engine, "commit", listener)
    try:
        results = ledger.renew([Renewal(a, {"done": i}) for i, a in enumerate(begun)])
        assert _outcomes(results) == [RENEWED] * 20
        assert len(commits) == 1
        commits.clear()
        for i, attempt in enumerate(begun):
            assert ledger.heartbeat(attempt, {"done": i + 1})
        assert len(commits) == 20
    finally:
        event.remove(engine, "commit", listener)


@contextmanager
def _row_locked(harness: LedgerHarness, attempt_id: int) -> Iterator[None]:
    """Another connection holds the attempt's row locked (as a completion under way does)
    until the block ends."""
    target = harness.target
    if target.backend == "postgres":
        connection: Any = psycopg.connect(
            host=PG["host"], port=PG["port"], dbname=target.name, user=target.user
        )
    else:
        connection = pymysql.connect(
            host=MARIADB["host"],
            port=MARIADB["port"],
            user=MARIADB["user"],
            password=MARIADB["password"],
            database=target.name,
            autocommit=False,
        )
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT id FROM renderstate_attempt WHERE id = %s FOR UPDATE", (attempt_id,))
        assert cursor.fetchall()
        yield
    finally:
        connection.rollback()
        connection.close()


def test_a_locked_row_is_skipped_not_waited_for(locking_harness: LedgerHarness) -> None:
    """While another transaction holds one attempt's row locked, renewing it with two
    others renews the others at once and skips it (nothing written); once the lock is
    gone it is renewed. PostgreSQL and MariaDB: SQLite locks the whole database."""
    harness = locking_harness
    clock = Clock()
    ledger = ledger_for(harness, clock)
    first, held, last = (_begun(harness, ledger)[2] for _ in range(3))
    clock.now += 3
    renewals = [Renewal(a, {"done": 5}, unless_cancelled=True) for a in (first, held, last)]
    results: list[list[Renewed]] = []
    with _row_locked(harness, held.id):

        def renew() -> None:
            try:
                results.append(ledger.renew(renewals))
            finally:
                harness.release()  # this thread's connections

        worker = threading.Thread(target=renew)
        worker.start()
        # A generous bound, not a timing: a renewal that waited for the lock would
        # wait until the holder gives it up, which happens only after this join.
        worker.join(timeout=120)
        blocked = worker.is_alive()
    worker.join()
    assert not blocked, "the renewal waited for the locked row"
    assert _outcomes(results[0]) == [RENEWED, SKIPPED, RENEWED]
    skipped = ledger.get(held.id)
    assert skipped is not None
    assert (skipped.done, skipped.lease_expires_at) == (0, held.lease_expires_at)
    for attempt in (first, last):
        renewed = ledger.get(attempt.id)
        assert renewed is not None
        assert (renewed.done, renewed.lease_expires_at) == (5, clock.now + 10.0)
    assert _outcomes(ledger.renew(renewals)) == [RENEWED, RENEWED, RENEWED]
    now = ledger.get(held.id)
    assert now is not None
    assert (now.done, now.lease_expires_at) == (5, clock.now + 10.0)


def test_the_database_clock_sets_the_leases(sql_harness: LedgerHarness) -> None:
    """Without a clock, the leases renewed are the database's time plus the lease."""
    harness = sql_harness
    ledger = Ledger(harness.store(), lease=10.0)
    first, second = (_begun(harness, ledger)[2] for _ in range(2))
    before = {a.id: a.lease_expires_at for a in (first, second)}
    assert _outcomes(ledger.renew([Renewal(first), Renewal(second, {"done": 1})])) == [
        RENEWED,
        RENEWED,
    ]
    for attempt in (first, second):
        now = ledger.get(attempt.id)
        assert now is not None
        assert now.lease_expires_at is not None
        assert now.lease_expires_at >= before[attempt.id]  # type: ignore[operator]
        assert now.lease_expires_at > ledger.now() + 5.0, "about now plus the lease"
