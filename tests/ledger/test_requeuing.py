"""Requeuing in the ledger, on every SQL store and database: a sweep takes an attempt whose
owner is gone back to queued (exactly one of many sweepers acting), sends it again through
its own task queue, fails the ones nobody can requeue, and leaves live attempts and other
task systems' alone; an owner hands its own attempt back, fenced by its token."""

from __future__ import annotations

import socket
import subprocess
import threading
from typing import Any

import pytest

from renderstate import Status
from renderstate.exceptions import AttemptSupersededError
from renderstate.ledger import Attempt, AttemptState, Ledger
from renderstate.ledger._identity import machine_id, start_time

from .contract import LEASE, QUEUE_TIMEOUT, Clock, LedgerHarness, ledger_for

pytestmark = pytest.mark.usefixtures("sql_harness")

CELERY = "celery:renders"
KEYS: dict[int, Any] = {}
"""Each attempt of the test's projects, and its project's key as the harness inserted it:
the databases keep other tests' rows, which these tests leave alone."""


@pytest.fixture
def harness(sql_harness: LedgerHarness) -> LedgerHarness:
    KEYS.clear()
    return sql_harness


def _begun(harness: LedgerHarness, ledger: Ledger, executor: str | None, **begin: Any) -> Attempt:
    key = harness.insert()
    _, queued = ledger.start(harness.lifecycle(harness.load(key)))
    KEYS[queued.id] = key
    if executor is not None:
        assert ledger.hand_off(queued, executor=executor)
    return ledger.begin(queued, **begin)


def _sweep(harness: LedgerHarness, ledger: Ledger, sent: list[Attempt], **kwargs: Any) -> Any:
    """Sweep, sending to ``sent``; what it did to this test's attempts."""

    def send(attempt: Attempt) -> None:
        if attempt.id in KEYS:
            sent.append(attempt)

    swept = ledger.sweep(
        harness.adapter(),
        harness.loader(),
        executor="celery",
        send=kwargs.pop("send", send),
        **harness.options,
        **kwargs,
    )
    return [s for s in swept if s.attempt.id in KEYS]


def _status(harness: LedgerHarness, attempt: Attempt) -> Any:
    return harness.row(KEYS[attempt.id])["status"]


def _lifecycle(harness: LedgerHarness, attempt: Attempt) -> Any:
    return harness.lifecycle(harness.load(KEYS[attempt.id]))


def test_a_sweep_requeues_an_expired_attempt_and_sends_it_again(harness: LedgerHarness) -> None:
    """Its lease expired: taken back to queued under a fresh owner, progress at 0, sent
    once, then handed off (the queue's timeout); the project stays PROCESSING, the dead
    owner is fenced, a live attempt is untouched, and a second sweep does nothing."""
    clock = Clock()
    ledger = ledger_for(harness, clock)
    dead = _begun(harness, ledger, CELERY, worker="elsewhere:1")
    assert ledger.heartbeat(dead, {"phase": "rendering", "done": 5, "total": 10, "fraction": 0.5})
    clock.now += LEASE / 2
    live = _begun(harness, ledger, CELERY, worker="elsewhere:2")
    clock.now += LEASE / 2 + 1  # dead's lease ran out; live's runs for another 4 s
    sent: list[Attempt] = []
    swept = _sweep(harness, ledger, sent)
    assert [s.attempt.id for s in swept] == [dead.id]
    assert [a.id for a in sent] == [dead.id]
    (again,) = sent
    assert again.state is AttemptState.QUEUED
    assert again.owner not in {None, dead.owner}
    assert (again.worker, again.started_at, again.phase, again.done, again.fraction) == (
        None,
        None,
        "queued",
        0,
        0.0,
    )
    assert again.executor == CELERY
    stored = ledger.get(dead.id)
    assert stored is not None
    assert stored.lease_expires_at == clock.now + QUEUE_TIMEOUT, "handed off once sent"
    assert swept[0].record is None
    assert _status(harness, dead) == harness.literal(Status.PROCESSING)
    assert not ledger.heartbeat(dead), "the dead owner is fenced"
    with pytest.raises(AttemptSupersededError):
        ledger.complete(_lifecycle(harness, dead), dead, "x.mp4")
    assert ledger.get(live.id) == live
    assert _sweep(harness, ledger, sent) == []
    assert len(sent) == 1
    rebegun = ledger.begin(again, worker="elsewhere:3")
    assert rebegun.state is AttemptState.RENDERING
    assert rebegun.lease_expires_at == clock.now + LEASE


def test_a_sweep_fails_what_no_task_queue_holds_and_leaves_other_queues_alone(
    harness: LedgerHarness,
) -> None:
    """An expired attempt its own process ran (no executor recorded: the thread executor)
    fails with its project, the reason recorded; one of another task system is left to
    that system's workers; one whose owner was asked to cancel fails, not requeued."""
    clock = Clock()
    ledger = ledger_for(harness, clock)
    threaded = _begun(harness, ledger, None, worker="elsewhere:1")
    other = _begun(harness, ledger, "django-tasks", worker="elsewhere:2")
    cancelled = _begun(harness, ledger, CELERY, worker="elsewhere:3")
    assert ledger.cancel(_lifecycle(harness, cancelled), "stop")
    clock.now += LEASE + 1
    sent: list[Attempt] = []
    swept = {s.attempt.id: s for s in _sweep(harness, ledger, sent)}
    assert sent == []
    assert set(swept) == {threaded.id, cancelled.id}
    for attempt in (threaded, cancelled):
        record = swept[attempt.id].record
        assert record is not None
        assert record.target is Status.FAILED
        ended = ledger.get(attempt.id)
        assert ended is not None
        assert ended.state is AttemptState.INTERRUPTED
        assert ended.error
        assert _status(harness, attempt) == harness.literal(Status.FAILED)
    assert "lease expired" in (ledger.get(threaded.id) or threaded).error  # type: ignore[operator]
    assert ledger.get(other.id) == other
    assert _status(harness, other) == harness.literal(Status.PROCESSING)


def test_of_many_sweepers_exactly_one_requeues_each_attempt(harness: LedgerHarness) -> None:
    """Eight sweeps at once, each with its own ledger over the same store: each expired
    attempt is taken back and sent exactly once."""
    clock = Clock()
    ledger = ledger_for(harness, clock)
    dead = [_begun(harness, ledger, CELERY, worker=f"elsewhere:{n}") for n in range(1, 5)]
    clock.now += LEASE + 1
    sent: list[Attempt] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def send(attempt: Attempt) -> None:
        with lock:
            if attempt.id in KEYS:
                sent.append(attempt)

    def sweeper() -> None:
        mine = ledger_for(harness, clock)
        barrier.wait()
        try:
            mine.sweep(harness.adapter(), harness.loader(), executor="celery", send=send)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            harness.release()  # thread-bound connections (Peewee, Django) end with it

    threads = [threading.Thread(target=sweeper) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(a.id for a in sent) == sorted(a.id for a in dead)


def test_a_failed_send_is_sent_again_by_the_next_sweep_a_lease_later(
    harness: LedgerHarness,
) -> None:
    """The broker refused the send: the attempt stays queued with one lease, and the sweep
    after that lease sends it again."""
    clock = Clock()
    ledger = ledger_for(harness, clock)
    dead = _begun(harness, ledger, CELERY, worker="elsewhere:1")
    clock.now += LEASE + 1

    def refuse(attempt: Attempt) -> None:
        msg = "broker down"
        raise ConnectionError(msg)

    assert len(_sweep(harness, ledger, [], send=refuse)) == 1
    waiting = ledger.get(dead.id)
    assert waiting is not None
    assert waiting.state is AttemptState.QUEUED
    assert waiting.lease_expires_at == clock.now + LEASE
    sent: list[Attempt] = []
    assert _sweep(harness, ledger, sent) == [], "not before that lease ran out"
    clock.now += LEASE + 1
    assert [s.attempt.id for s in _sweep(harness, ledger, sent)] == [dead.id]
    assert [a.id for a in sent] == [dead.id]


def test_a_dead_owner_of_this_machine_is_requeued_before_its_lease_runs_out(
    harness: LedgerHarness,
) -> None:
    """Its process is gone (its pid and start time say so): once it missed a renewal, the
    sweep requeues it at once, without waiting out the lease; its files here are removed.
    A live owner that missed a renewal is left alone."""
    clock = Clock()
    ledger = ledger_for(harness, clock)
    child = subprocess.Popen(["sleep", "60"])
    name = f"{socket.gethostname()}:{child.pid}@{start_time(child.pid)}/{machine_id()}"
    child.kill()
    child.wait()
    dead = _begun(harness, ledger, CELERY, worker=name)
    slow = _begun(harness, ledger, CELERY, worker="elsewhere:1")
    clock.now += LEASE * 0.6  # both missed a renewal; neither lease ran out
    sent: list[Attempt] = []
    cleaned: list[Attempt] = []
    swept = _sweep(harness, ledger, sent, cleanup=lambda a: a.id in KEYS and cleaned.append(a))
    assert [s.attempt.id for s in swept] == [dead.id]
    assert [a.id for a in sent] == [dead.id]
    assert [a.id for a in cleaned] == [dead.id]
    assert ledger.get(slow.id) == slow


def test_hand_off_records_the_executor_even_after_a_worker_began_it(
    harness: LedgerHarness,
) -> None:
    """A fast worker began the attempt before the sender's hand_off: the executor is
    recorded all the same, and the lease is the worker's."""
    clock = Clock()
    ledger = ledger_for(harness, clock)
    _, queued = ledger.start(harness.lifecycle(harness.load(harness.insert())))
    begun = ledger.begin(queued, worker="elsewhere:1")
    assert not ledger.hand_off(queued, executor=CELERY)
    seen = ledger.get(queued.id)
    assert seen is not None
    assert seen.executor == CELERY
    assert seen.lease_expires_at == begun.lease_expires_at
    with pytest.raises(ValueError, match="executor"):
        ledger.hand_off(queued, executor="x" * 256)


@pytest.mark.parametrize("name", ["executor", "task_id"])
def test_an_empty_executor_or_task_id_is_refused_and_nothing_written(
    harness: LedgerHarness, name: str
) -> None:
    """'' is no queue a sweep could send the attempt to again, and not "none" either: an
    attempt handed off so would never be requeued or failed by any sweep."""
    ledger = ledger_for(harness, Clock())
    _, queued = ledger.start(harness.lifecycle(harness.load(harness.insert())))
    before = ledger.get(queued.id)
    with pytest.raises(ValueError, match=rf"hand_off\({name}=''\) names nothing"):
        ledger.hand_off(queued, **{name: ""})  # type: ignore[arg-type]
    assert ledger.get(queued.id) == before


def test_an_owner_hands_its_attempt_back_fenced_by_its_token(harness: LedgerHarness) -> None:
    """hand_back takes the owner's rendering attempt back to queued (fresh owner, progress
    at 0, the project PROCESSING); its old token is fenced; a former owner, or an attempt
    someone asked to cancel, is refused and nothing is written."""
    clock = Clock()
    ledger = ledger_for(harness, clock)
    attempt = _begun(harness, ledger, CELERY, worker="elsewhere:1")
    assert ledger.heartbeat(attempt, {"phase": "rendering", "done": 3, "total": 9})
    back = ledger.hand_back(attempt)
    assert back is not None
    assert (back.state, back.worker, back.done, back.phase) == (
        AttemptState.QUEUED,
        None,
        0,
        "queued",
    )
    assert back.owner != attempt.owner
    assert back.lease_expires_at == clock.now + LEASE
    assert _status(harness, attempt) == harness.literal(Status.PROCESSING)
    assert ledger.hand_back(attempt) is None, "the old token holds it no more"
    assert not ledger.heartbeat(attempt)
    assert ledger.get(attempt.id) == back
    again = ledger.begin(back, worker="elsewhere:2")
    assert ledger.cancel(_lifecycle(harness, again), "stop")
    before = ledger.get(again.id)
    assert ledger.hand_back(again) is None, "a cancel request is not handed back"
    assert ledger.get(again.id) == before


def test_a_failed_begin_leaves_a_requeued_attempt_to_its_new_delivery(
    harness: LedgerHarness,
) -> None:
    """A sweep requeued a dead worker's attempt and sent it again; a duplicate delivery of
    the old message then failed in its begin and gives up: the attempt stays queued for
    the delivery the sweep sent (a task queue holds it), and the project PROCESSING."""
    clock = Clock()
    ledger = ledger_for(harness, clock)
    dead = _begun(harness, ledger, CELERY, worker="elsewhere:1")
    clock.now += LEASE + 1
    sent: list[Attempt] = []
    assert [s.requeued is not None for s in _sweep(harness, ledger, sent)] == [True]
    requeued = ledger.get(dead.id)
    assert requeued is not None
    assert requeued.state is AttemptState.QUEUED
    duplicate_token = "d0" * 16  # a duplicate delivery's own, never held
    given_up = ledger.give_up(
        _lifecycle(harness, dead), requeued, "its begin raised", owner=duplicate_token
    )
    assert given_up is None
    after = ledger.get(dead.id)
    assert after is not None
    assert (after.state, after.owner) == (AttemptState.QUEUED, requeued.owner)
    assert _status(harness, dead) == harness.literal(Status.PROCESSING)
    # The delivery the sweep sent renders it.
    assert ledger.begin(after, worker="elsewhere:2").state is AttemptState.RENDERING


def test_a_failed_begin_fails_a_queued_attempt_no_task_queue_holds(
    harness: LedgerHarness,
) -> None:
    """The control: a thread executor's queued attempt (no task queue recorded), whose
    begin raised, is failed with its project: nobody else would render it."""
    ledger = ledger_for(harness, Clock())
    key = harness.insert()
    lifecycle = harness.lifecycle(harness.load(key))
    _, queued = ledger.start(lifecycle)
    KEYS[queued.id] = key
    record = ledger.give_up(lifecycle, queued, "its begin raised", owner="e1" * 16)
    assert record is not None
    ended = ledger.get(queued.id)
    assert ended is not None
    assert ended.state is AttemptState.FAILED
    assert _status(harness, queued) == harness.literal(Status.FAILED)
