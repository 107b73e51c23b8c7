"""Deadlock victims: recognised from the real drivers' errors, retried only on their own.

InnoDB deadlocked a ``begin`` and a lease renewal of one attempt (each a single statement:
see ``renderstate.ledger._deadlocks``); the Django ledger's "submit inside a transaction" test
on MariaDB failed that way on every run until store statements were retried.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, create_engine, insert, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from adapters.conftest import target_for
from adapters.databases import Target
from renderstate._attempts import Attempt, AttemptState
from renderstate.ledger._deadlocks import DEADLOCK_TRIES, is_deadlock, retries_deadlocks
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore, attempt_table

SERVERS = [
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
    pytest.param("mariadb", marks=pytest.mark.mariadb, id="mariadb"),
]


@pytest.fixture
def engine(
    request: pytest.FixtureRequest, db_targets: dict[str, Target | Exception]
) -> Iterator[Engine]:
    made = create_engine(target_for(db_targets, request.param).sqlalchemy_url())
    yield made
    made.dispose()


@pytest.fixture
def probe(engine: Engine) -> Iterator[Table]:
    """A table of two rows (ids 1 and 2) of this test's own."""
    table = Table(
        f"deadlock_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("n", Integer),
    )
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": 1, "n": 0}, {"id": 2, "n": 0}])
    yield table
    table.drop(engine)


def deadlock(engine: Engine, table: Table) -> BaseException:
    """Two transactions lock rows 1 and 2 in opposite orders: return the victim's error."""
    errors: list[BaseException] = []
    with engine.connect() as first, engine.connect() as second:
        first.execute(update(table).where(table.c.id == 1).values(n=1))
        second.execute(update(table).where(table.c.id == 2).values(n=1))

        def cross() -> None:
            try:
                first.execute(update(table).where(table.c.id == 2).values(n=2))
            except Exception as error:
                errors.append(error)
                first.rollback()

        waiter = threading.Thread(target=cross)
        waiter.start()
        time.sleep(0.3)
        try:
            second.execute(update(table).where(table.c.id == 1).values(n=2))
        except Exception as error:
            errors.append(error)
        second.rollback()
        waiter.join(30)
        first.rollback()
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("engine", SERVERS, indirect=True)
def test_a_real_deadlock_is_recognised_wrapped_or_not(engine: Engine, probe: Table) -> None:
    error = deadlock(engine, probe)
    assert is_deadlock(error)
    assert is_deadlock(error.orig)  # type: ignore[attr-defined]  # the driver's own error


@pytest.mark.parametrize("engine", SERVERS, indirect=True)
def test_other_database_errors_are_not_deadlocks(engine: Engine, probe: Table) -> None:
    """A duplicate key and a lock wait that timed out are not retried."""
    with pytest.raises(IntegrityError) as duplicate, engine.begin() as connection:
        connection.execute(insert(probe).values(id=1, n=0))
    assert not is_deadlock(duplicate.value)
    timeout = (
        "SET lock_timeout = '200ms'"
        if engine.dialect.name == "postgresql"
        else "SET SESSION innodb_lock_wait_timeout = 1"
    )
    with engine.connect() as holder, engine.connect() as waiter:
        holder.execute(update(probe).where(probe.c.id == 1).values(n=5))
        waiter.execute(text(timeout))
        with pytest.raises(OperationalError) as waited:
            waiter.execute(update(probe).where(probe.c.id == 1).values(n=6))
        waiter.rollback()
        holder.rollback()
    assert not is_deadlock(waited.value)
    assert not is_deadlock(ValueError(1213))
    assert not is_deadlock(RuntimeError("deadlock"))


class Flaky:
    """A store method failing ``failures`` times with ``error``, then returning True."""

    def __init__(self, error: BaseException, failures: int, *, outer: bool = False) -> None:
        self.error = error
        self.failures = failures
        self.outer = outer
        self.calls = 0

    def _in_outer_transaction(self) -> bool:
        return self.outer

    @retries_deadlocks
    def update(self) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return True


@pytest.mark.parametrize("engine", SERVERS, indirect=True)
def test_a_victim_runs_again_a_bounded_number_of_times(engine: Engine, probe: Table) -> None:
    victim = deadlock(engine, probe)
    again = Flaky(victim, failures=DEADLOCK_TRIES - 1)
    assert again.update() is True
    assert again.calls == DEADLOCK_TRIES
    always = Flaky(victim, failures=DEADLOCK_TRIES)
    with pytest.raises(type(victim)):
        always.update()
    assert always.calls == DEADLOCK_TRIES
    inside = Flaky(victim, failures=1, outer=True)
    with pytest.raises(type(victim)):
        inside.update()
    assert inside.calls == 1
    other = Flaky(RuntimeError("disk full"), failures=1)
    with pytest.raises(RuntimeError):
        other.update()
    assert other.calls == 1


@pytest.mark.parametrize("engine", ["mariadb"], indirect=True)
@pytest.mark.mariadb
def test_a_victim_inside_the_callers_transaction_is_not_run_again(
    engine: Engine, probe: Table, caplog: pytest.LogCaptureFixture
) -> None:
    """InnoDB rolled the caller's whole transaction back: the store raises at once."""
    table = attempt_table(MetaData(), name=f"attempts_{uuid.uuid4().hex[:8]}")
    table.create(engine)
    try:
        store = SQLAlchemyAttemptStore(Session(engine), table=table)
        mine, theirs = (
            store.insert(Attempt(id=0, scope="s", project_key=k, state=AttemptState.QUEUED))
            for k in ("1", "2")
        )
        heavy = engine.connect()
        # The other transaction has written more rows: InnoDB picks the caller's as victim.
        heavy.execute(insert(probe), [{"id": i, "n": 0} for i in range(10, 400)])
        heavy.execute(update(table).where(table.c.id == theirs.id).values(phase="held"))
        caller = Session(engine)
        store = SQLAlchemyAttemptStore(caller, table=table)
        caller.begin()
        # A statement run again would wait for the other transaction: not for long.
        caller.execute(text("SET SESSION innodb_lock_wait_timeout = 2"))
        assert store.update(mine.id, {"phase": "mine"}, states={AttemptState.QUEUED})
        blocked = threading.Thread(
            target=lambda: heavy.execute(
                update(table).where(table.c.id == mine.id).values(phase="theirs")
            )
        )
        blocked.start()
        time.sleep(0.3)
        caplog.set_level(logging.INFO, logger="renderstate.ledger")
        with pytest.raises(DBAPIError) as raised:
            store.update(theirs.id, {"phase": "mine"}, states={AttemptState.QUEUED})
        assert is_deadlock(raised.value)
        assert "running it again" not in caplog.text
        caller.rollback()
        blocked.join(30)
        heavy.commit()
        heavy.close()
        caller.close()
    finally:
        table.drop(engine)


@pytest.mark.mariadb
def test_a_django_victim_inside_a_manual_transaction_is_not_run_again(
    db_targets: dict[str, Target | Exception], caplog: pytest.LogCaptureFixture
) -> None:
    """``transaction.set_autocommit(False)`` opens the caller's transaction without an
    ``atomic()`` block. InnoDB rolled all of it back when the store's statement was the
    victim; running the statement again committed it on its own, the caller's earlier
    writes lost. The store raises at once, as inside ``atomic()``."""
    from django.db import connections, transaction  # noqa: PLC0415

    from adapters.contract import elsewhere  # noqa: PLC0415
    from adapters.test_django import use_database  # noqa: PLC0415
    from renderstate.ledger.django import DjangoAttemptStore  # noqa: PLC0415

    target = target_for(db_targets, "mariadb")
    engine = create_engine(target.sqlalchemy_url())
    try:
        alias = use_database(target)
        store = DjangoAttemptStore(using=alias)
        mine, theirs = (
            elsewhere(
                lambda k=k: store.insert(
                    Attempt(id=0, scope="s", project_key=k, state=AttemptState.QUEUED)
                )
            )
            for k in (uuid.uuid4().hex, uuid.uuid4().hex)
        )
        probe = Table(
            f"deadlock_{uuid.uuid4().hex[:8]}", MetaData(), Column("id", Integer, primary_key=True)
        )
        probe.create(engine)
        heavy = engine.connect()
        heavy.execute(insert(probe), [{"id": i} for i in range(10, 400)])
        heavy.execute(
            text("UPDATE renderstate_attempt SET phase='held' WHERE id=:i"), {"i": theirs.id}
        )

        def caller() -> None:
            connection = connections[alias]
            transaction.set_autocommit(False, using=alias)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SET SESSION innodb_lock_wait_timeout = 2")
                assert store.update(mine.id, {"phase": "mine"}, states={AttemptState.QUEUED})
                blocked = threading.Thread(
                    target=lambda: heavy.execute(
                        text("UPDATE renderstate_attempt SET phase='theirs' WHERE id=:i"),
                        {"i": mine.id},
                    )
                )
                blocked.start()
                time.sleep(0.3)
                with pytest.raises(Exception) as raised:  # noqa: PT011 - the driver's error
                    store.update(theirs.id, {"phase": "mine"}, states={AttemptState.QUEUED})
                assert is_deadlock(raised.value)
                transaction.rollback(using=alias)
                blocked.join(30)
            finally:
                transaction.set_autocommit(True, using=alias)
                connection.close()

        caplog.set_level(logging.INFO, logger="renderstate.ledger")
        try:
            elsewhere(caller)
        finally:
            heavy.rollback()
            heavy.close()
            probe.drop(engine)
        assert "running it again" not in caplog.text
    finally:
        engine.dispose()
