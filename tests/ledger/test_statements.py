"""What the ledger sends the database: a start is the guarded UPDATE and one INSERT.

Run on every SQL store and database (the memory store sends nothing).
"""

from __future__ import annotations

import time

import pytest

from renderstate import Status
from renderstate.ledger import Ledger, Renewal

from .contract import LedgerHarness, ledger_for

DATA = {"SELECT", "INSERT", "UPDATE", "DELETE"}


def data_statements(statements: list[str]) -> list[str]:
    """The first word of each data statement (not BEGIN, SAVEPOINT, PRAGMA ...)."""
    words = [s.lstrip().split(None, 1)[0].upper() for s in statements]
    return [w for w in words if w in DATA]


def folds(harness: LedgerHarness) -> bool:
    """Whether the ledger's writes ride in the project's UPDATE: the SQLAlchemy store with
    the SQLAlchemy adapter, on PostgreSQL (the start and the end) or MariaDB (the end)."""
    return harness.orm == "sqlalchemy" and harness.target.backend in {"postgres", "mariadb"}


def test_start_is_the_guarded_update_and_one_insert(sql_harness: LedgerHarness) -> None:
    """A start whose project has no live attempt sends two statements: the project's guarded
    UPDATE and one INSERT, which also answers whether another attempt is live (no SELECT);
    one, the INSERT around the UPDATE, with the SQLAlchemy store and adapter on PostgreSQL."""
    harness = sql_harness
    ledger = ledger_for(harness)
    ledger.start(harness.lifecycle(harness.load(harness.insert())))  # the schema check, once
    lifecycle = harness.lifecycle(harness.load(harness.insert(Status.COMPLETED)))
    with harness.capture() as statements:
        ledger.start(lifecycle)
    if folds(harness) and harness.target.backend == "postgres":
        assert [s.lstrip().split(None, 1)[0] for s in statements] == ["WITH"], statements
        assert "INSERT INTO" in statements[0]
    else:
        assert data_statements(statements) == ["UPDATE", "INSERT"], statements


def test_completion_is_the_fenced_and_the_guarded_update(sql_harness: LedgerHarness) -> None:
    """A completion sends the attempt's fenced UPDATE and the project's guarded UPDATE; one
    statement writing both rows with the SQLAlchemy store and adapter on PostgreSQL (a
    data-modifying WITH) and MariaDB (a multi-table UPDATE)."""
    harness = sql_harness
    ledger = ledger_for(harness)
    lifecycle = harness.lifecycle(harness.load(harness.insert()))
    _, attempt = ledger.start(lifecycle)
    attempt = ledger.begin(attempt)
    with harness.capture() as statements:
        ledger.complete(lifecycle, attempt, "projects/1/final.mp4")
    if not folds(harness):
        assert data_statements(statements) == ["UPDATE", "UPDATE"], statements
    elif harness.target.backend == "postgres":
        assert [s.lstrip().split(None, 1)[0] for s in statements] == ["WITH"], statements
    else:
        assert data_statements(statements) == ["UPDATE"], statements


def test_start_on_the_database_clock_returns_the_times_written(
    sql_harness: LedgerHarness,
) -> None:
    """Without a clock, start returns the attempt with the times the database wrote: its
    own time, plus the lease for the expiry."""
    harness = sql_harness
    ledger = Ledger(harness.store(), lease=10.0)
    _, attempt = ledger.start(harness.lifecycle(harness.load(harness.insert())))
    assert attempt == ledger.get(attempt.id)
    assert attempt.lease_expires_at == pytest.approx(attempt.created_at + 10.0, abs=1e-3)
    assert attempt.created_at == pytest.approx(time.time(), abs=60)


def test_the_label_rides_in_the_heartbeat_s_one_update(sql_harness: LedgerHarness) -> None:
    """A heartbeat writing the progress with its label sends one UPDATE, as without it; a
    tick's batch renewal of two attempts with their labels one UPDATE and its read."""
    harness = sql_harness
    ledger = ledger_for(harness)
    _, first = ledger.start(harness.lifecycle(harness.load(harness.insert())))
    _, second = ledger.start(harness.lifecycle(harness.load(harness.insert())))
    first, second = ledger.begin(first), ledger.begin(second)
    with harness.capture() as plain:
        assert ledger.heartbeat(first, {"phase": "encode", "done": 1, "total": 4})
    with harness.capture() as labelled:
        assert ledger.heartbeat(first, {"done": 2, "label": "Encoding video"})
    assert data_statements(labelled) == data_statements(plain) == ["UPDATE"], labelled
    assert "label" in labelled[0]
    renewals = [
        Renewal(first, {"done": 3, "label": "Encoding video"}),
        Renewal(second, {"done": 1, "label": "Writing audio"}),
    ]
    with harness.capture() as batch:
        ledger.renew(renewals)
    assert data_statements(batch).count("UPDATE") == 1, batch
    assert [a.label for a in map(ledger.get, (first.id, second.id)) if a is not None] == [
        "Encoding video",
        "Writing audio",
    ]
