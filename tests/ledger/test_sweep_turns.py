"""The fleet's sweep turn on every store and database: of many processes asking at once
exactly one takes it, nobody else gets it for its seconds (on the ledger's clock, the
database's by default), it is never renewed by asking again, and turns of other task
systems or kinds of project are apart. A store or database without turns sweeps every time."""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.orm import sessionmaker

from adapters.conftest import target_for
from renderstate.ledger import Attempt, AttemptState, Ledger, Renewal, RenewalOutcome, new_owner
from renderstate.ledger._turns import LOOK_AGAIN_EVERY
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore, attempt_table

from .contract import Clock, LedgerHarness, ledger_for


def _scope() -> str:
    """A kind of project no other test's turn names (the databases keep their rows)."""
    return f"clips-{uuid.uuid4().hex[:12]}"


def _held_then_free(ledgers: list[Ledger], clock: Clock) -> None:
    first, second = ledgers
    scope = _scope()
    assert first.take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    assert not second.take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    assert not first.take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    # Another task system's workers, or another kind of project, have turns of their own.
    assert second.take_sweep_turn(executor="tasks", scope=scope, seconds=5.0)
    assert second.take_sweep_turn(executor="celery", scope=_scope(), seconds=5.0)
    clock.now += 4.9
    assert not second.take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    clock.now += 0.2
    assert second.take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    assert not first.take_sweep_turn(executor="celery", scope=scope, seconds=5.0)


def test_a_turn_is_held_for_its_seconds_then_anyone_takes_it(sql_harness: LedgerHarness) -> None:
    """Taken, the turn is refused to everyone (its holder too: asking again renews
    nothing) until its seconds have passed; then the first to ask takes it."""
    clock = Clock()
    _held_then_free([ledger_for(sql_harness, clock), ledger_for(sql_harness, clock)], clock)


def test_the_memory_store_holds_a_turn_alike() -> None:
    """The memory store's turns behave as the databases' do."""
    clock = Clock()
    store = MemoryAttemptStore(clock=clock)
    _held_then_free([Ledger(store, clock=clock), Ledger(store, clock=clock)], clock)


def test_of_many_processes_asking_at_once_exactly_one_takes_the_turn(
    sql_harness: LedgerHarness,
) -> None:
    """Eight stores ask for a new turn at once, on the database's clock (the first ask of
    each inserts the turn's row, ignoring the others' inserts): exactly one gets it."""
    scope = _scope()
    barrier = threading.Barrier(8)
    won: list[bool] = []
    errors: list[BaseException] = []

    def ask() -> None:
        ledger = Ledger(sql_harness.store(), lease=10.0)
        barrier.wait()
        try:
            won.append(ledger.take_sweep_turn(executor="celery", scope=scope, seconds=60.0))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            sql_harness.release()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(won) == [False] * 7 + [True]


def _delete_turns(store: object) -> None:
    """Delete every turn's row, as a flushed or recreated database has none."""
    from renderstate.ledger.django import DjangoAttemptStore  # noqa: PLC0415
    from renderstate.ledger.peewee import PeeweeAttemptStore  # noqa: PLC0415

    if isinstance(store, SQLAlchemyAttemptStore):
        with store._session_in_transaction() as session:
            session.execute(store.turns.delete())
    elif isinstance(store, PeeweeAttemptStore):
        store.turns.delete().execute()
    else:
        assert isinstance(store, DjangoAttemptStore)
        from renderstate.ledger.django.models import SweepTurn  # noqa: PLC0415

        SweepTurn.objects.using(store.alias()).all().delete()


def test_a_turn_whose_row_was_deleted_is_taken_again(sql_harness: LedgerHarness) -> None:
    """The turns' rows are deleted (a flushed or recreated database) after every process
    inserted its turn's: asking on, once the turn would have run out, one of them takes
    it again within a few asks. Each store had remembered its row as inserted for good,
    so no process of the fleet ever swept again until it restarted."""
    clock = Clock()
    ledgers = [ledger_for(sql_harness, clock), ledger_for(sql_harness, clock)]
    scope = _scope()
    assert ledgers[0].take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    assert not ledgers[1].take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    _delete_turns(ledgers[0].store)
    won = []
    for _ in range(LOOK_AGAIN_EVERY + 1):
        clock.now += 6.0
        won.append(
            [
                ledger.take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
                for ledger in ledgers
            ]
        )
    assert [w for w in won if any(w)], won
    assert all(sum(w) <= 1 for w in won), won  # still one holder at a time
    clock.now += 6.0
    # Taken again, it is held as before: its holder asks again at once and is refused.
    assert ledgers[0].take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    assert not ledgers[1].take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    assert not ledgers[0].take_sweep_turn(executor="celery", scope=scope, seconds=5.0)


def test_without_the_turns_table_every_process_sweeps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database whose migrations never created the turns' table: every ask answers
    True (each process sweeps, as before turns), logged once."""
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    table = attempt_table(MetaData())
    table.create(engine)  # the attempts' table alone
    ledger = Ledger(SQLAlchemyAttemptStore(sessionmaker(engine), table=table), lease=10.0)
    with caplog.at_level(logging.WARNING, logger="renderstate.ledger"):
        assert ledger.take_sweep_turn(executor="celery", scope="clips", seconds=5.0)
        assert ledger.take_sweep_turn(executor="celery", scope="clips", seconds=5.0)
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "sweep turn" in caplog.records[0].message
    engine.dispose()


def test_a_bad_interval_is_refused() -> None:
    """Zero, negative or non-number seconds are refused before anything is written."""
    ledger = Ledger(MemoryAttemptStore())
    for seconds in (0, -1.0, float("nan"), "5", True):
        with pytest.raises(ValueError, match="seconds"):
            ledger.take_sweep_turn(executor="celery", scope="clips", seconds=seconds)  # type: ignore[arg-type]


def test_a_renewal_takes_the_turn_in_its_own_transaction(sql_harness: LedgerHarness) -> None:
    """renew_and_take_sweep_turn renews the lease and claims the turn at once: won the
    first time, refused while it is held, the lease renewed each time; before the turn was
    once asked for alone on the store, the two go one after the other, alike."""
    clock = Clock()
    ledger = ledger_for(sql_harness, clock)
    key = sql_harness.insert()
    _, queued = ledger.start(sql_harness.lifecycle(sql_harness.load(key)))
    begun = ledger.begin(queued)
    scope = _scope()
    renewed, won = ledger.renew_and_take_sweep_turn(
        [Renewal(begun)], executor="celery", scope=scope, seconds=5.0
    )
    assert ([r.outcome for r in renewed], won) == ([RenewalOutcome.RENEWED], True)
    for _ in range(2):  # folded into the renewal's transaction from now on
        clock.now += 1.0
        renewed, won = ledger.renew_and_take_sweep_turn(
            [Renewal(begun)], executor="celery", scope=scope, seconds=5.0
        )
        assert ([r.outcome for r in renewed], won) == ([RenewalOutcome.RENEWED], False)
        stored = ledger.get(begun.id)
        assert stored is not None
        assert stored.lease_expires_at == clock.now + ledger.lease
    clock.now += 3.5
    renewed, won = ledger.renew_and_take_sweep_turn(
        [Renewal(begun)], executor="celery", scope=scope, seconds=5.0
    )
    assert ([r.outcome for r in renewed], won) == ([RenewalOutcome.RENEWED], True)


def test_a_turn_that_fails_in_a_renewal_is_claimed_alone_after(tmp_path: Path) -> None:
    """The turns' table vanishes after a claim worked: the renewal that carried the next
    claim fails (and is sent again by the next tick), and the renewals after it go without
    the claim, which is asked alone and answers True (every process sweeps), logged."""
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    table = attempt_table(MetaData())
    store = SQLAlchemyAttemptStore(sessionmaker(engine), table=table)
    store.create_table()
    clock = Clock()
    ledger = Ledger(store, lease=10.0, clock=clock)
    assert ledger.take_sweep_turn(executor="celery", scope="clips", seconds=5.0)
    with engine.begin() as connection:
        store.turns.drop(connection)
    rendering = store.insert(
        Attempt(
            id=0,
            scope="clips",
            project_key="1",
            state=AttemptState.RENDERING,
            lease_expires_at=clock.now + 10.0,
            created_at=clock.now,
            owner=new_owner(),
        )
    )
    renewal = Renewal(rendering)
    with pytest.raises(Exception, match="renderstate_sweep_turn"):
        ledger.renew_and_take_sweep_turn([renewal], executor="celery", scope="c", seconds=5.0)
    renewed, won = ledger.renew_and_take_sweep_turn(
        [renewal], executor="celery", scope="c", seconds=5.0
    )
    assert ([r.outcome for r in renewed], won) == ([RenewalOutcome.RENEWED], True)
    engine.dispose()


@pytest.mark.parametrize("store", ["sqlalchemy", "django", "peewee"])
@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_a_turn_s_row_held_locked_is_refused_at_once(
    db_targets: dict[str, Any], store: str, backend: str
) -> None:
    """Another transaction holds the turn's row locked (a holder frozen or cut off between
    its claim and its commit): a claim is refused at once, not made to wait for the lock,
    and taken once the row is free. Every claim of the fleet waited behind such a lock."""
    from .test_django import DjangoLedgerHarness  # noqa: PLC0415 - the modules import this one
    from .test_peewee import PeeweeLedgerHarness  # noqa: PLC0415
    from .test_sqlalchemy import SQLAlchemyLedgerHarness  # noqa: PLC0415

    classes: dict[str, type[LedgerHarness]] = {
        "sqlalchemy": SQLAlchemyLedgerHarness,
        "django": DjangoLedgerHarness,
        "peewee": PeeweeLedgerHarness,
    }
    target = target_for(db_targets, backend)
    harness = classes[store](target, variant=False)
    harness.prepare()
    clock = Clock()
    ledger = ledger_for(harness, clock)
    scope = _scope()
    assert ledger.take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    clock.now += 6.0
    engine = create_engine(target.sqlalchemy_url())
    answers: list[bool] = []
    try:
        with engine.connect() as blocker, blocker.begin():
            blocker.execute(
                text("SELECT * FROM renderstate_sweep_turn WHERE name = :n FOR UPDATE"),
                {"n": f"celery {scope}"},
            )

            def ask() -> None:
                try:
                    answers.append(
                        ledger.take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
                    )
                finally:
                    harness.release()

            asking = threading.Thread(target=ask, daemon=True)
            asking.start()
            asking.join(10.0)  # a claim that waits for the lock is still waiting
            assert answers == [False]
        assert ledger.take_sweep_turn(executor="celery", scope=scope, seconds=5.0)
    finally:
        engine.dispose()
        harness.release()
