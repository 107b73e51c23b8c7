"""The request's trace context on every SQL store and database: recorded with the start,
read back with the attempt, and kept when a sweep takes the attempt back to queued, so the
render sent again carries it."""

from __future__ import annotations

import pytest

from renderstate.ledger import Attempt, AttemptState

from .contract import LEASE, Clock, LedgerHarness, ledger_for

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_start_records_the_trace_context_and_a_sweep_keeps_it(
    sql_harness: LedgerHarness,
) -> None:
    """Started with a traceparent, the attempt holds it when read back, and the attempt a
    sweep requeues (a fresh owner, its worker gone) still holds it."""
    clock = Clock()
    ledger = ledger_for(sql_harness, clock)
    key = sql_harness.insert()
    _, queued = ledger.start(sql_harness.lifecycle(sql_harness.load(key)), traceparent=TRACEPARENT)
    assert queued.traceparent == TRACEPARENT
    assert ledger.hand_off(queued, executor="celery")
    begun = ledger.begin(queued, worker="elsewhere.example:1")
    assert begun.traceparent == TRACEPARENT
    clock.now += LEASE + 1
    sent: list[Attempt] = []
    ledger.sweep(
        sql_harness.adapter(),
        sql_harness.loader(),
        executor="celery",
        send=lambda attempt: sent.append(attempt) if attempt.id == queued.id else None,
        **sql_harness.options,
    )
    [again] = sent
    assert again.state is AttemptState.QUEUED
    assert again.owner != begun.owner
    assert again.traceparent == TRACEPARENT


def test_a_trace_context_wider_than_its_column_is_refused(sql_harness: LedgerHarness) -> None:
    """A traceparent longer than 64 characters is refused before anything is written."""
    ledger = ledger_for(sql_harness)
    key = sql_harness.insert()
    before = sql_harness.attempts()
    with pytest.raises(ValueError, match="traceparent is 65 characters"):
        ledger.start(sql_harness.lifecycle(sql_harness.load(key)), traceparent="0" * 65)
    assert sql_harness.attempts() == before
