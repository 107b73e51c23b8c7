"""One thread per runner that renews its live attempts' leases and writes their progress."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Final

from renderstate._attempts import Attempt
from renderstate.ledger import Ledger
from renderstate.ledger._fencing import held
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
    }


class _Beat:
    __slots__ = (
        "attempt",
        "cancel_seen",
        "key",
        "last_write",
        "lost",
        "on_cancel",
        "on_lost",
        "read",
        "refused",
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
        self.last_write = time.monotonic()
        self.lost = False
        self.refused = False


class Heartbeat:
    """Keeps the runner's live attempts alive in the ledger, from one daemon thread.

    Each tick, an attempt whose progress changed gets one ``UPDATE`` (progress and a
    fresh lease) if ``progress_interval`` has passed since its last write; one whose
    progress did not change gets a lease renewal about three times per lease. A render
    step that reports nothing (an encoder flush) therefore keeps its lease. A renewal
    the ledger refuses means the attempt was recovered, superseded or taken over by
    another owner: ``on_lost`` is called once, so the render can stop. A renewal refused
    because someone asked the attempt to cancel (from any process, through the ledger)
    calls ``on_cancel`` with the reason, once, and renews the lease without that
    condition from then on, so the render keeps its lease while it stops.

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
        self._renew_every = ledger.lease / 3
        self._tick = max(min(ledger.progress_interval or _MIN_TICK, self._renew_every), _MIN_TICK)

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
            if not beats:
                continue
            with self._scope():  # e.g. Django: recycle this thread's connection per tick
                for beat in beats:
                    self._beat(beat)

    def _renew(self, beat: _Beat, fields: dict[str, object] | None) -> bool:
        """One renewal, refused while a cancel request is unseen by the job."""
        return self._ledger.heartbeat(beat.attempt, fields, unless_cancelled=not beat.cancel_seen)

    def _beat(self, beat: _Beat) -> None:
        now = time.monotonic()
        progress = beat.read()
        since = now - beat.last_write
        changed = progress != beat.written
        if changed and since >= self._ledger.progress_interval:
            fields: dict[str, object] | None = progress_fields(progress)
        elif since >= self._renew_every:
            fields = None
        else:
            return
        try:
            try:
                alive = self._renew(beat, fields)
            except ValueError:
                if fields is None:
                    raise
                # The ledger refused the progress before writing anything (a count no
                # column holds): that write can never succeed, and retrying it every tick
                # would let the lease run out under a live render. Drop this progress
                # value (it counts as written) and renew the lease alone.
                if not beat.refused:
                    beat.refused = True
                    logger.warning(
                        "attempt %s: the ledger cannot record its progress %s; its lease is "
                        "renewed without it",
                        beat.attempt.id,
                        fields,
                        exc_info=True,
                    )
                fields = None
                beat.written = progress
                alive = self._renew(beat, None)
        except Exception:
            # A database hiccup: the lease has margin (three renewals per lease); retry on
            # the next tick.
            logger.warning("could not renew attempt %s", beat.attempt.id, exc_info=True)
            return
        beat.last_write = now
        if fields is not None:
            beat.written = progress
        if not alive:
            self._refused(beat, fields)

    def _refused(self, beat: _Beat, fields: dict[str, object] | None) -> None:
        """A renewal matched nothing: a cancel request, a start not committed, or lost."""
        try:
            now_stored = self._ledger.get(beat.attempt.id)
        except Exception:
            logger.warning("could not read attempt %s", beat.attempt.id, exc_info=True)
            return
        if now_stored is None:
            return  # started inside a transaction that has not committed yet: not lost
        if not beat.cancel_seen and now_stored.cancel_requested and held(now_stored, beat.attempt):
            # Someone asked it to stop, from this or another process: tell the job once,
            # and keep its lease (without the condition) while it stops.
            beat.cancel_seen = True
            assert beat.on_cancel is not None
            beat.on_cancel(now_stored.cancel_reason or "cancelled")
            try:
                if self._renew(beat, fields):
                    return
            except Exception:
                logger.warning("could not renew attempt %s", beat.attempt.id, exc_info=True)
                return
        if not beat.lost:
            with self._lock:
                if self._beats.get(beat.key) is not beat:
                    # Removed while this renewal was under way: its owner ended, or
                    # replaced its token (a begin). The refusal is not a lost attempt.
                    return
                del self._beats[beat.key]
            beat.lost = True
            beat.on_lost()
