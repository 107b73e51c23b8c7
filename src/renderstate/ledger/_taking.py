"""Beginning an attempt: one owner at a time, a fresh owner token, and takeovers.

:meth:`Ledger.begin <renderstate.ledger.Ledger.begin>` is this module's :func:`begin`. It
takes a queued attempt, or a rendering one whose lease expired (its owner died or stalled)
or whose owner is a process of this machine that is gone, each with one conditional
``UPDATE`` that records a fresh owner token; a live owner's attempt is refused. A
takeover cleans up after the previous owner only when that owner is really gone
(:func:`~renderstate.ledger._owners.owner_gone`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from renderstate import telemetry
from renderstate._attempts import Attempt, AttemptState
from renderstate.exceptions import AttemptOwnedError
from renderstate.ledger._checks import check_owner, check_text
from renderstate.ledger._fencing import superseded
from renderstate.ledger._owners import (
    expire_dead_owner,
    holding,
    new_owner,
    owner_gone,
    release,
    this_worker,
)
from renderstate.ledger._recovery import clean_up
from renderstate.ledger._waiting import pauses

if TYPE_CHECKING:
    from renderstate.ledger._ledger import Ledger

__all__ = ["begin"]

logger = logging.getLogger("renderstate.ledger")

_QUEUED: Final = frozenset({AttemptState.QUEUED})
_RENDERING: Final = frozenset({AttemptState.RENDERING})


def begin(
    ledger: Ledger,
    attempt: Attempt,
    *,
    worker: str | None,
    cleanup: Callable[[Attempt], None] | None,
    owner: str | None,
) -> Attempt:
    """Make ``attempt`` the caller's render under a fresh owner token; see :meth:`Ledger.begin`."""
    check_text("worker", worker)
    check_owner(owner)
    me = worker or this_worker()
    token = owner or new_owner()
    waiting = pauses(ledger.lease)
    while True:
        now = ledger._time()
        values: dict[str, object] = {
            "state": AttemptState.RENDERING,
            "started_at": now,
            "worker": me,
            "lease_expires_at": now + ledger.lease,
            "owner": token,
        }
        holding(token)
        if ledger.store.update(attempt.id, values, states=_QUEUED):
            return _fetch(ledger, attempt, token)
        seen = ledger.store.get(attempt.id)
        if seen is not None and not seen.active:
            release(token)
            raise superseded(ledger.store, attempt)
        if seen is not None and seen.state is AttemptState.RENDERING:
            if ledger.store.update(attempt.id, values, states=_RENDERING, lease_before=now) or (
                # Its process, on this machine, is gone: its lease ends now, not later.
                expire_dead_owner(ledger.store, seen, now)
                and ledger.store.update(attempt.id, values, states=_RENDERING, lease_before=now)
            ):
                logger.warning(
                    "render attempt %s of %s %s: its worker %s stopped renewing its "
                    "lease or died; %s takes it over",
                    attempt.id,
                    seen.scope,
                    seen.project_key,
                    seen.worker,
                    me,
                )
                clean_up(cleanup if owner_gone(seen) else None, seen)
                telemetry.taken_over(seen)
                return _fetch(ledger, attempt, token)
            release(token)
            held = ledger.store.get(attempt.id)
            if held is None or not held.active:
                raise superseded(ledger.store, attempt)
            raise AttemptOwnedError(
                project_key=held.project_key,
                attempt_id=held.id,
                worker=held.worker,
                retry_after=_remaining(ledger, held),
            )
        # Not visible yet (its start has not committed), or it was queued and just
        # committed: try again, for up to a lease.
        pause = next(waiting, None)
        if pause is None:
            release(token)
            raise superseded(ledger.store, attempt)
        time.sleep(pause)


def _remaining(ledger: Ledger, held: Attempt) -> float:
    """Seconds until ``held``'s lease runs out, as far as this process's clock can tell.

    Advice only: the lease is on the database's clock, which this one may differ from,
    so the answer is kept within 0 and one lease.
    """
    clock = ledger.now()
    return min(ledger.lease, max(0.0, (held.lease_expires_at or clock) - clock))


def _fetch(ledger: Ledger, attempt: Attempt, owner: str) -> Attempt:
    fresh = ledger.store.get(attempt.id)
    if fresh is None:  # pragma: no cover - an attempt row is never deleted by us
        raise superseded(ledger.store, attempt)
    if fresh.owner != owner:  # pragma: no cover - a store that ignores the owner column
        msg = (
            f"attempt {attempt.id} was begun under owner {owner!r} but the store reads "
            f"back {fresh.owner!r}: the store does not keep the owner column"
        )
        raise RuntimeError(msg)
    return fresh
