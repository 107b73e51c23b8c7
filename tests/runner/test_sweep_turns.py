"""The fleet's sweep turn with real processes on SQLite, PostgreSQL and MariaDB: of K worker
processes sweeping at once, over several intervals, one sweeps per interval in all (the
sweep's query is counted in each process), and a dead worker's render is still sent again
exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from adapters.conftest import target_for
from renderstate import ProjectLifecycle, RenderRunner
from renderstate.cli._store import Project, Store
from renderstate.ledger import Ledger, this_worker
from renderstate.runner import JobSpec
from renderstate.runner._requeuing import Sweeper
from renderstate.testing import FakeRenderer

from .cli_stores import db_targets, store, url

__all__ = ["db_targets", "store", "url"]

CHILD = Path(__file__).with_name("sweep_child.py")
LEASE = 2.0
INTERVAL = LEASE / 2
PROCESSES = 4
SECONDS = 8.0

pytestmark = pytest.mark.slow


def test_k_processes_run_one_sweep_query_per_interval_and_requeue_once(
    url: str, store: Store
) -> None:
    """Four processes sweep for eight intervals: the sweep's query runs at most once per
    interval in all (without the turn each would run it every half to whole interval, about
    five times as often), at least twice, and the one attempt whose worker died (on another
    machine, its lease expired) is sent again by exactly one of them."""
    ledger = Ledger(store.ledger.store, lease=LEASE)
    project = store.create("orphan", {"width": 8, "height": 8})
    _, attempt = ledger.start(ProjectLifecycle(project, store.adapter))
    assert ledger.hand_off(attempt, executor="celery")
    ledger.begin(attempt, worker="elsewhere.example:4242")
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), url, str(LEASE), str(SECONDS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    reports = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    queries = sorted(t for report in reports for t in report["queries"])
    assert len(queries) >= 2
    # Each query follows a turn won, after the first process began and before that query;
    # a turn excludes every other for an interval on the database's clock (this machine's):
    # that window holds at most one more turn than it has intervals.
    window = queries[-1] - min(report["began"] for report in reports)
    assert len(queries) <= window / INTERVAL + 1, (len(queries), window)
    assert sum(len(r["queries"]) > 0 for r in reports) >= 1
    # The database may hold other tests' attempts, which the sweeps take over too.
    sent = [a for report in reports for a in report["sent"]]
    assert sent.count(attempt.id) == 1


def test_a_worker_with_renders_takes_the_turn_in_its_heartbeat_transaction(
    tmp_path: Path, store: Store
) -> None:
    """A process rendering asks for the turn through its heartbeat: the turn's UPDATE is
    sent in the transaction that renews the render's lease (no transaction of its own),
    won the first time and refused the second, the lease renewed both times."""
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        FakeRenderer(frames=100_000, frame_delay=0.01),
        media_root=tmp_path / "media",
        ledger=Ledger(store.ledger.store, lease=30.0),
        loader=store.loader,
    )
    job = runner.submit(store.create("long", {"width": 8, "height": 8}))
    for _ in range(3000):
        if job.progress.fraction > 0:
            break
        time.sleep(0.01)
    ledger, heartbeat = runner.ledger, runner._state.heartbeat
    assert ledger is not None
    assert heartbeat is not None
    # Asked alone once without an error: the turns' table is there.
    assert ledger.take_sweep_turn(executor="celery", scope=f"proof-{uuid.uuid4()}", seconds=1.0)
    scope = f"clips-{uuid.uuid4()}"
    statements: dict[int, list[str]] = {}
    # Each transaction is kept alive until the end: a freed one's id() can be reused by
    # the next, which merged two transactions' statements into one (seen under load).
    transactions: list[Any] = []

    def seen(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        transaction = connection.get_transaction()
        transactions.append(transaction)
        statements.setdefault(id(transaction), []).append(" ".join(statement.split()))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert heartbeat.take_sweep_turn("celery", scope, 30.0) is True
        assert heartbeat.take_sweep_turn("celery", scope, 30.0) is False
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
        runner.cancel(job.project)
        runner.shutdown()
    # The claim: its UPDATE (on MySQL/MariaDB, its SELECT ... FOR UPDATE SKIP LOCKED first,
    # and no UPDATE when that finds the turn held).
    claims = [
        texts
        for texts in statements.values()
        if any(
            t.startswith("UPDATE renderstate_sweep_turn")
            or ("FROM renderstate_sweep_turn" in t and t.endswith("FOR UPDATE SKIP LOCKED"))
            for t in texts
        )
    ]
    assert len(claims) == 2
    for texts in claims:
        assert any(t.startswith("UPDATE renderstate_attempt SET lease_expires_at") for t in texts)


@pytest.mark.postgres
def test_a_turn_the_heartbeat_takes_late_is_the_sweeper_s(
    tmp_path: Path, db_targets: dict[str, Any]
) -> None:
    """The heartbeat's transaction waits on the turns' table (locked by another connection)
    for longer than the sweeper waits for its answer: the sweeper is told of the turn its
    heartbeat takes once the row is free, rather than asking alone behind it and being
    refused the turn its own process then holds (nobody would sweep for that interval)."""
    store = Store(target_for(db_targets, "postgres").sqlalchemy_url())
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        FakeRenderer(frames=100_000, frame_delay=0.01),
        media_root=tmp_path / "media",
        ledger=Ledger(store.ledger.store, lease=3.0),
        loader=store.loader,
    )
    job = runner.submit(store.create("long", {"width": 8, "height": 8}))
    ledger = runner.ledger
    assert ledger is not None
    # Asked alone once without an error: the heartbeat asks from now on.
    assert ledger.take_sweep_turn(executor="celery", scope=f"proof-{uuid.uuid4()}", seconds=1.0)
    scope = f"clips-{uuid.uuid4()}"
    name = f"celery {scope}"
    sweeper = Sweeper(lambda: runner, "celery", lambda spec, executor: None)
    answers: list[bool] = []
    try:
        for _ in range(3000):
            if job.progress.fraction > 0:
                break
            time.sleep(0.01)
        with store.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO renderstate_sweep_turn (name, expires_at) VALUES (:n, 0)"),
                {"n": name},
            )
        # A table lock (a migration's, say): a claim skips a locked row, not a locked table.
        blocker = store.engine.connect()
        transaction = blocker.begin()
        blocker.execute(text("LOCK TABLE renderstate_sweep_turn IN ACCESS EXCLUSIVE MODE"))
        asking = threading.Thread(
            target=lambda: answers.append(sweeper._take_turn(runner, scope, 8.0))
        )
        asking.start()
        # Past the sweeper's wait for its heartbeat (a quarter of the 8 s, or two ticks and
        # a second), the heartbeat's claim still waiting on the row.
        asking.join(4.0)
        transaction.rollback()
        blocker.close()
        asking.join(30.0)
    finally:
        runner.cancel(job.project)
        runner.shutdown()
    with store.engine.connect() as connection:
        holder = connection.execute(
            text("SELECT holder FROM renderstate_sweep_turn WHERE name = :n"), {"n": name}
        ).scalar_one()
    store.close()
    assert holder == this_worker()[:255]  # this process took the turn...
    assert answers == [True]  # ...and its sweeper was told so


def test_a_worker_that_cannot_send_leaves_the_next_turn_to_another(tmp_path: Path) -> None:
    """A worker process whose sends fail (its broker connection is down) holds the turn and
    takes a dead worker's render back without sending it: the next sweep is another
    worker's, which sends it. Its holder asked again just after its turn ended and kept
    it, taking the render back and failing every lease, for as long as it lived."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    stores = [Store(url), Store(url)]
    ledger = Ledger(stores[0].ledger.store, lease=1.0)
    project = stores[0].create("orphan", {"width": 8, "height": 8})
    _, attempt = ledger.start(ProjectLifecycle(project, stores[0].adapter))
    assert ledger.hand_off(attempt, executor="celery")
    ledger.begin(attempt, worker="elsewhere.example:4242")
    sweeps: list[tuple[float, str]] = []
    failed: list[float] = []
    sent: list[int | None] = []

    def counting(who: str) -> Any:
        def counted(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
            words = " ".join(statement.split())
            if words.startswith("SELECT") and "lease_expires_at <" in words:
                sweeps.append((time.monotonic(), who))

        return counted

    def down(spec: JobSpec, route: str) -> None:
        failed.append(time.monotonic())
        raise ConnectionError("the broker is unreachable")

    def up(spec: JobSpec, route: str) -> None:
        sent.append(spec.attempt_id)

    sweepers = []
    for who, send, made in (("down", down, stores[0]), ("up", up, stores[1])):
        event.listen(made.engine, "before_cursor_execute", counting(who))
        runner: RenderRunner[Project] = RenderRunner(
            made.adapter,
            FakeRenderer(frames=2),
            media_root=tmp_path / "media",
            ledger=Ledger(made.ledger.store, lease=1.0),
            loader=made.loader,
        )
        sweepers.append(Sweeper(lambda runner=runner: runner, "celery", send))
    try:
        sweepers[0].start()
        for _ in range(1000):
            if failed:
                break
            time.sleep(0.01)
        assert failed
        sweepers[1].start()  # the fleet's other worker, while the first holds the turn
        for _ in range(1000):
            if sent:
                break
            time.sleep(0.01)
    finally:
        for sweeper in sweepers:
            sweeper.stop()
    after = [who for at, who in sweeps if at > failed[0]]
    assert after[:1] == ["up"], after
    assert sent == [attempt.id]
    for made in stores:
        made.close()


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_a_turn_s_row_held_locked_stalls_no_renewal(
    tmp_path: Path, db_targets: dict[str, Any], backend: str
) -> None:
    """Another transaction holds the turn's row locked, as a holder frozen (or cut off)
    between its claim and its commit does: a heartbeat that claims the turn in its renewal
    transaction is refused at once, its renewals committed, and so is a claim alone. They
    waited on the row, the heartbeat's renewals with them (on PostgreSQL for as long as
    the lock was held), for every process of the fleet."""
    store = Store(target_for(db_targets, backend).sqlalchemy_url())
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        FakeRenderer(frames=100_000, frame_delay=0.01),
        media_root=tmp_path / "media",
        ledger=Ledger(store.ledger.store, lease=3.0),
        loader=store.loader,
    )
    job = runner.submit(store.create("long", {"width": 8, "height": 8}))
    ledger, heartbeat = runner.ledger, runner._state.heartbeat
    assert ledger is not None
    assert heartbeat is not None
    # Asked alone once without an error: the heartbeat asks from now on.
    assert ledger.take_sweep_turn(executor="celery", scope=f"proof-{uuid.uuid4()}", seconds=1.0)
    scope = f"clips-{uuid.uuid4()}"
    name = f"celery {scope}"
    blocker = store.engine.connect()
    try:
        for _ in range(3000):
            if job.progress.fraction > 0:
                break
            time.sleep(0.01)
        with store.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO renderstate_sweep_turn (name, expires_at) VALUES (:n, 0)"),
                {"n": name},
            )
        transaction = blocker.begin()
        blocker.execute(
            text("SELECT * FROM renderstate_sweep_turn WHERE name = :n FOR UPDATE"), {"n": name}
        )
        assert job.attempt is not None
        before = ledger.get(job.attempt.id)
        assert before is not None
        assert heartbeat.take_sweep_turn("celery", scope, 4.0) is False
        after = ledger.get(job.attempt.id)
        assert after is not None
        assert after.lease_expires_at > before.lease_expires_at  # renewed in that transaction
        assert ledger.take_sweep_turn(executor="celery", scope=scope, seconds=4.0) is False
        transaction.rollback()
        assert ledger.take_sweep_turn(executor="celery", scope=scope, seconds=4.0) is True
    finally:
        blocker.close()
        runner.cancel(job.project)
        runner.shutdown()
        store.close()
