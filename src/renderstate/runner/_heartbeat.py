"""One thread per runner that renews its live attempts' leases and writes their progress.

One transaction per tick for all of them (:meth:`Ledger.renew
<renderstate.ledger.Ledger.renew>`), whatever the number of renders (50 per transaction
beyond 50).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Final, NamedTuple

from renderstate._attempts import Attempt
from renderstate.ledger import Ledger, Renewal, RenewalOutcome, Renewed
from renderstate.ledger._checks import check_progress
from renderstate.runner.progress import Progress

__all__ = ["Heartbeat", "progress_fields"]

logger = logging.getLogger("renderstate.runner")

_MIN_TICK: Final = 0.05


def progress_fields(progress: Progress) -> dict[str, object]:
    """The ledger's progress columns for ``progress``."""
    return {
        "phase": progress.step or progress.phase.value,
        "done": progress.step_done,
        "total": progress.step_total,
        "fraction": progress.fraction,
        "eta_seconds": progress.eta,
        "label": progress.label,
    }


class _Beat:
    __slots__ = (
        "attempt",
        "cancel_seen",
        "key",
        "lost",
        "on_cancel",
        "on_lost",
        "progress_at",
        "read",
        "refused",
        "renewed_at",
        "written",
    )

    def __init__(
        self,
        key: str,
        attempt: Attempt,
        read: Callable[[], Progress],
        on_lost: Callable[[], None],
        on_cancel: Callable[[str], object] | None,
    ) -> None:
        self.key = key
        self.attempt = attempt
        self.read = read
        self.on_lost = on_lost
        self.on_cancel = on_cancel
        self.cancel_seen = on_cancel is None
        self.written: Progress | None = None
        now = time.monotonic()
        self.progress_at = now
        """When its progress was last written (or the attempt added)."""
        self.renewed_at = now
        """When its lease was last renewed (or the attempt added)."""
        self.lost = False
        self.refused = False


class _TurnAsked:
    """A sweeper's request for the fleet's sweep turn, answered by the next tick."""

    __slots__ = ("answered", "executor", "scope", "seconds", "won")

    def __init__(self, executor: str, scope: str, seconds: float) -> None:
        self.executor = executor
        self.scope = scope
        self.seconds = seconds
        self.won: bool | None = None
        """Whether the tick took the turn; ``None``: it did not ask (ask alone)."""
        self.answered = threading.Event()


class _Due(NamedTuple):
    """One beat's part of a tick: the progress to write (``None``: the lease alone)."""

    beat: _Beat
    progress: Progress
    fields: dict[str, object] | None


class Heartbeat:
    """Keeps the runner's live attempts alive in the ledger, from one daemon thread.

    The thread runs while the runner holds attempts: it ends at the first tick with none,
    and the next :meth:`add` starts another.

    Each tick that any attempt is due (its progress changed and ``progress_interval``
    has passed since its last progress write, or a third of the lease has passed since
    its last renewal), one :meth:`Ledger.renew <renderstate.ledger.Ledger.renew>` renews
    the lease of every attempt the runner holds and writes each changed progress that is
    due: one transaction per tick, whatever the number of renders (up to 50, then 50 per
    transaction). A render step that
    reports nothing (an encoder flush) therefore keeps its lease. A renewal the ledger
    refuses means the attempt was recovered, superseded or taken over by another owner:
    ``on_lost`` is called once, so the render can stop. A renewal refused because someone
    asked the attempt to cancel (from any process, through the ledger) calls
    ``on_cancel`` with the reason, once, and renews the lease without that condition from
    then on, so the render keeps its lease while it stops. A renewal skipped because
    another transaction held its row locked is sent again at the next tick; it delays
    no other renewal.

    Beats are keyed by their owner's token, never by attempt: two jobs of one attempt in
    this process (a duplicate delivery, a takeover by a second runner) are two owners, and
    one's end or loss never touches the other's renewals.
    """

    def __init__(self, ledger: Ledger, scope: Callable[[], AbstractContextManager[object]]) -> None:
        self._ledger = ledger
        self._scope = scope
        self._beats: dict[str, _Beat] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._turn: _TurnAsked | None = None
        self._renew_every = ledger.lease / 3
        self._tick = max(min(ledger.progress_interval or _MIN_TICK, self._renew_every), _MIN_TICK)
        # A store without renew() writes one UPDATE per renewal: there, only the due ones.
        self._batches = hasattr(ledger.store, "renew")
        self._failures = 0
        """Renewal transactions failed in a row (a locked database, say); 0 once one commits."""

    def add(
        self,
        key: str,
        attempt: Attempt,
        read: Callable[[], Progress],
        on_lost: Callable[[], None],
        on_cancel: Callable[[str], object] | None = None,
    ) -> None:
        """Keep ``attempt`` alive under ``key`` (its owner's token) until :meth:`remove`.

        ``read`` gives its latest progress; ``on_lost`` is called once if the ledger
        refuses a renewal; ``on_cancel`` once, with the reason, when someone asked the
        attempt to cancel. Adding under a key already kept replaces that beat: the same
        owner, now holding the attempt as ``begin`` returned it.
        """
        with self._lock:
            if self._stopped:
                return
            self._beats[key] = _Beat(key, attempt, read, on_lost, on_cancel)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="renderstate-heartbeat", daemon=True
                )
                self._thread.start()

    def take_sweep_turn(self, executor: str, scope: str, seconds: float) -> bool | None:
        """Ask for the fleet's sweep turn in the next tick's renewal transaction.

        A worker with renders renews their leases every tick anyway: the turn's claim
        rides along (:meth:`Ledger.renew_and_take_sweep_turn
        <renderstate.ledger.Ledger.renew_and_take_sweep_turn>`), at no extra round trip;
        that tick renews every lease, whether due or not. Returns whether the turn was
        taken, or ``None`` when the heartbeat keeps nothing alive, cannot batch, or did
        not send it within a quarter of ``seconds`` (at least two ticks and a second), or
        once sent, did not answer within ``seconds`` more: ask alone then.
        """
        asked = _TurnAsked(executor, scope, seconds)
        with self._lock:
            if self._stopped or not self._beats or not self._batches:
                return None
            self._turn = asked
        if not asked.answered.wait(max(2 * self._tick + 1.0, seconds / 4)):
            with self._lock:
                if self._turn is asked:
                    self._turn = None
                    return None  # never sent
            # A tick has sent it (its transaction waits on a lock, say): its answer
            # decides, late as it comes. A claim asked alone meanwhile would queue
            # behind it and be refused the turn this process then holds, and nobody
            # would sweep for an interval. Up to the turn's length: it is over by then.
            asked.answered.wait(seconds)
        return asked.won

    def remove(self, key: str) -> None:
        """Stop renewing what ``key`` (an owner's token) kept alive: its job has ended."""
        with self._lock:
            self._beats.pop(key, None)

    def stop(self) -> None:
        """Stop the thread; live attempts are no longer renewed."""
        with self._lock:
            self._stopped = True
            self._beats.clear()
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._wake.wait(self._tick):
            with self._lock:
                beats = list(self._beats.values())
                turn, self._turn = self._turn, None
                if not beats:
                    # Nothing to keep alive: the thread ends, and the next add() starts
                    # another. A runner dropped while idle (one built per request) leaves
                    # no thread behind, holding its ledger, for the life of the process.
                    self._thread = None
            if not beats:
                if turn is not None:
                    turn.answered.set()  # nothing to renew: it asks alone
                return
            with self._scope():  # e.g. Django: recycle this thread's connection per tick
                self.tick(beats, turn)

    def tick(self, beats: list[_Beat], turn: _TurnAsked | None = None) -> None:
        """Renew ``beats`` that are due, with every other one's lease, in one transaction.

        With ``turn``, every lease is renewed, due or not, and the sweep turn is claimed
        in the same transaction.
        """
        try:
            self._tick_taking(beats, turn)
        finally:
            if turn is not None:
                turn.answered.set()

    def _tick_taking(self, beats: list[_Beat], turn: _TurnAsked | None) -> None:
        now = time.monotonic()
        interval = self._ledger.progress_interval
        due: list[_Due] = []
        rest: list[_Due] = []
        for beat in beats:
            progress = beat.read()
            if progress != beat.written and now - beat.progress_at >= interval:
                due.append(_Due(beat, progress, self._checked(beat, progress)))
            elif now - beat.renewed_at >= self._renew_every:
                due.append(_Due(beat, progress, None))
            else:
                rest.append(_Due(beat, progress, None))
        if not due and turn is None:
            return
        sent = due + rest if self._batches else due
        results = self._send(sent, turn)
        if results is None:
            return
        cancelled: list[_Due] = []
        for item, result in zip(sent, results, strict=True):
            if result.outcome is RenewalOutcome.RENEWED:
                self._renewed(item, now)
            elif result.outcome is RenewalOutcome.CANCEL_REQUESTED:
                # Someone asked it to stop, from this or another process: tell the job
                # once, and keep its lease (without the condition) while it stops.
                assert result.stored is not None
                item.beat.cancel_seen = True
                assert item.beat.on_cancel is not None
                item.beat.on_cancel(result.stored.cancel_reason or "cancelled")
                cancelled.append(item)
            elif result.outcome is RenewalOutcome.LOST:
                self._lost(item.beat)
            # SKIPPED: another transaction holds its row (or its start has not committed
            # yet); nothing was written, and it is still due at the next tick.
        if cancelled:
            self._renew_cancelled(cancelled, now)

    def _send(self, sent: list[_Due], turn: _TurnAsked | None) -> list[Renewed] | None:
        """One transaction renewing ``sent`` (and claiming ``turn``); ``None`` if it failed."""
        try:
            renewals = [self._renewal(d) for d in sent]
            if turn is None:
                results = self._ledger.renew(renewals)
            else:
                results, turn.won = self._ledger.renew_and_take_sweep_turn(
                    renewals, executor=turn.executor, scope=turn.scope, seconds=turn.seconds
                )
        except Exception as exc:  # noqa: BLE001 - logged by _failed, retried next tick
            # A database hiccup: the lease has margin (three renewals per lease); retry on
            # the next tick.
            self._failed(exc, sorted({d.beat.attempt.id for d in sent}))
            return None
        self._succeeded()
        return results

    def _failed(self, exc: Exception, attempts: list[int]) -> None:
        """Log a failed renewal: the first of a streak with its traceback, then one line."""
        self._failures += 1
        if self._failures == 1:
            logger.warning("could not renew the leases of attempts %s", attempts, exc_info=exc)
        else:
            # Under contention (SQLite's "database is locked") every tick fails alike: one
            # traceback per streak says what it is, the count says how long it lasts.
            logger.warning(
                "could not renew the leases of attempts %s (%d failures in a row): %s: %s",
                attempts,
                self._failures,
                type(exc).__name__,
                str(exc).partition("\n")[0],
            )

    def _succeeded(self) -> None:
        """A renewal transaction committed: end a streak of failures, once, in the log."""
        if self._failures:
            logger.info(
                "renewing leases again after %d failed renewal transactions", self._failures
            )
            self._failures = 0

    def _renewal(self, item: _Due) -> Renewal:
        """The ledger's renewal of ``item``, refused while a cancel request is unseen."""
        return Renewal(item.beat.attempt, item.fields, unless_cancelled=not item.beat.cancel_seen)

    def _checked(self, beat: _Beat, progress: Progress) -> dict[str, object] | None:
        """``progress``'s fields, or ``None`` (counted as written) if the ledger refuses them."""
        fields = progress_fields(progress)
        try:
            check_progress(fields)
        except ValueError:
            # A count no column holds: that write can never succeed, and retrying it
            # every tick would fail every tick. Drop this progress value (it counts as
            # written) and renew the lease alone.
            if not beat.refused:
                beat.refused = True
                logger.warning(
                    "attempt %s: the ledger cannot record its progress %s; its lease is "
                    "renewed without it",
                    beat.attempt.id,
                    fields,
                    exc_info=True,
                )
            beat.written = progress
            return None
        return fields

    def _renewed(self, item: _Due, now: float) -> None:
        item.beat.renewed_at = now
        if item.fields is not None:
            item.beat.written = item.progress
            item.beat.progress_at = now

    def _renew_cancelled(self, cancelled: list[_Due], now: float) -> None:
        """Renew the attempts just told of a cancel request, without that condition."""
        try:
            results = self._ledger.renew([self._renewal(item) for item in cancelled])
        except Exception as exc:  # noqa: BLE001 - logged by _failed, retried next tick
            self._failed(exc, sorted(item.beat.attempt.id for item in cancelled))
            return
        self._succeeded()
        for item, result in zip(cancelled, results, strict=True):
            if result.outcome is RenewalOutcome.RENEWED:
                self._renewed(item, now)
            elif result.outcome is RenewalOutcome.LOST:
                self._lost(item.beat)

    def _lost(self, beat: _Beat) -> None:
        """A renewal matched nothing: the attempt ended or another owner holds it."""
        if beat.lost:
            return
        with self._lock:
            if self._beats.get(beat.key) is not beat:
                # Removed while this renewal was under way: its owner ended, or replaced
                # its token (a begin). The refusal is not a lost attempt.
                return
            del self._beats[beat.key]
        beat.lost = True
        beat.on_lost()
