"""Requeuing: an attempt whose owner is gone, or that its owner hands back, waits again.

:meth:`Ledger.sweep <renderstate.ledger.Ledger.sweep>` is this module's :func:`sweep`, what
every task-queue worker runs every so often: one query lists the live attempts that missed
a renewal, and each whose lease expired (or whose owner, a process of this machine, is
gone) is either *requeued* (taken back to ``queued`` under a fresh owner token, by one
``UPDATE`` fenced by the old owner token and the expired lease, so of many workers
sweeping at once exactly one acts, then sent again by the caller's ``send``), or failed
with its project when nobody can send it again (it was never handed to a task queue: its
own process ran it). :meth:`Ledger.hand_back <renderstate.ledger.Ledger.hand_back>` is
the owner's own way back to ``queued``, fenced by its token (a warm shutdown).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from renderstate import telemetry
from renderstate._attempts import ACTIVE_STATES, Attempt, AttemptState
from renderstate._records import TransitionRecord
from renderstate.ledger._checks import check_text
from renderstate.ledger._fencing import owned_update
from renderstate.ledger._owners import dead_owner, expire_dead_owner, new_owner, owner_gone
from renderstate.ledger._recovery import DIED, INTERRUPTED, clean_up, end_attempt
from renderstate.typing import Adapter, ProjectLoader, ProjectT

if TYPE_CHECKING:
    from renderstate.ledger._ledger import Ledger

__all__ = ["Swept", "hand_back", "queued_by", "sweep"]

logger = logging.getLogger("renderstate.ledger")

_CANCELLED: Final = "its owner stopped after a cancel request and could not end it"


class Swept(NamedTuple):
    """One attempt that :meth:`Ledger.sweep` found without a live owner, and what it did."""

    attempt: Attempt
    """The attempt as it was found (its owner gone or its lease expired)."""
    requeued: Attempt | None
    """The attempt as it was taken back to queued (a fresh owner token, its progress back
    at 0) and given to ``send``; ``None`` if it was failed instead."""
    record: TransitionRecord | None
    """The project's move to FAILED when the attempt was failed (``None`` if requeued,
    or if the project had already left PROCESSING)."""


def queued_by(executor: str | None, name: str) -> bool:
    """Whether an attempt's ``executor`` is ``name`` or one of its queues (``name:queue``)."""
    return executor is not None and (executor == name or executor.startswith(f"{name}:"))


def requeued_values(ledger: Ledger) -> dict[str, object]:
    """What taking an attempt back to queued writes: a fresh owner and progress at 0.

    Its lease is one lease long: whoever took it back sends it on and then hands it off
    (:meth:`Ledger.hand_off`), giving it the queue's timeout; if the send failed, the
    next sweep finds it expired again and sends it again.
    """
    now = ledger._time()
    return {
        "state": AttemptState.QUEUED,
        "owner": new_owner(),
        "worker": None,
        "started_at": None,
        "lease_expires_at": now + ledger.lease,
        "phase": "queued",
        "done": 0,
        "total": 0,
        "fraction": 0.0,
        "eta_seconds": None,
    }


def hand_back(ledger: Ledger, attempt: Attempt) -> Attempt | None:
    """Take the caller's own attempt back to queued; see :meth:`Ledger.hand_back`."""
    values = requeued_values(ledger)
    if not owned_update(ledger.store, attempt, values, uncancelled=True):
        return None
    back = ledger.store.get(attempt.id)
    if back is None or back.owner != values["owner"]:  # pragma: no cover - taken at once
        return None
    telemetry.requeued(attempt.scope)
    return back


def sweep(
    ledger: Ledger,
    adapter: Adapter[ProjectT],
    loader: ProjectLoader[ProjectT],
    *,
    executor: str,
    send: Callable[[Attempt], None],
    cleanup: Callable[[Attempt], None] | None,
    options: dict[str, Any],
) -> list[Swept]:
    """Requeue or fail the attempts whose owner is gone; see :meth:`Ledger.sweep`."""
    check_text("executor", executor)
    if not executor:
        msg = "sweep() needs the executor's name (for example 'celery'), got ''"
        raise ValueError(msg)
    done: list[Swept] = []
    now = ledger._time()
    # One query: the live attempts that missed at least one renewal (a live owner renews
    # about three times per lease). Only those whose lease really expired are acted on,
    # each by a conditional UPDATE that re-checks it.
    for found in ledger.store.expired(now + ledger.lease / 2, scope=loader.scope):
        died = dead_owner(found) and expire_dead_owner(ledger.store, found, ledger._time())
        if queued_by(found.executor, executor) and not found.cancel_requested:
            requeued = _take_back(ledger, found)
            if requeued is None:
                continue  # renewed, ended or taken since it was listed
            clean_up(cleanup if owner_gone(found) else None, found)
            logger.warning(
                "render attempt %s of %s %s: its worker %s %s; it is queued again",
                found.id,
                found.scope,
                found.project_key,
                found.worker or "(none yet)",
                "is gone" if died else "stopped renewing its lease",
            )
            _send(ledger, send, requeued)
            telemetry.requeued(found.scope)
            done.append(Swept(found, requeued, None))
        elif found.executor is None or found.cancel_requested:
            # Its own process ran it (the thread executor) and is gone or stuck: nobody
            # can send it again. Or its owner was asked to cancel: it ends as recovery
            # would end it.
            reason = _CANCELLED if found.cancel_requested else INTERRUPTED
            if died and not found.cancel_requested:
                reason = DIED.format(worker=found.worker)
            ended = end_attempt(
                ledger,
                adapter,
                loader,
                found,
                fence={"states": ACTIVE_STATES, "lease_before": ledger._time()},
                reason=reason,
                cleanup=cleanup,
                options=options,
            )
            if ended is not None:
                done.append(Swept(found, None, ended.record))
        # Any other executor's attempts are left to that executor's own workers.
    return done


def _take_back(ledger: Ledger, found: Attempt) -> Attempt | None:
    """Take ``found`` back to queued if it is still as listed, its lease expired."""
    values = requeued_values(ledger)
    fence: dict[str, Any] = {"states": ACTIVE_STATES, "lease_before": ledger._time()}
    if found.owner is not None:
        fence["owner"] = found.owner
    elif found.worker is not None:
        fence["worker"] = found.worker
    if not ledger.store.update(found.id, values, **fence):
        return None
    back = ledger.store.get(found.id)
    if back is None or back.owner != values["owner"]:  # pragma: no cover - taken at once
        return None
    return back


def _send(ledger: Ledger, send: Callable[[Attempt], None], requeued: Attempt) -> None:
    try:
        send(requeued)
    except Exception:
        # Queued with one lease: the next sweep finds it expired and sends it again.
        logger.exception("could not send attempt %s again; the next sweep tries again", requeued.id)
        return
    try:
        ledger.hand_off(requeued)
    except Exception:  # sent: a worker renders it regardless
        logger.warning("could not give attempt %s its queue timeout", requeued.id, exc_info=True)
