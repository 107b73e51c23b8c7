"""Fencing: what an owner may write to its attempt, and ending an attempt with its project.

Every write of a live attempt's owner (a heartbeat, ``complete``, ``fail``) goes through
:func:`owned_update`: one conditional ``UPDATE`` that matches only while the attempt is live
and held under the owner's token. :func:`finish` writes the attempt's row first and then the
project's guarded ``UPDATE`` (and runs ``publish``, the rename of the new video) in one
transaction, so a late owner stops before it has touched the project; where the store
folds (:mod:`~renderstate.ledger._folding`), both rows in the project's one statement,
which writes both or neither.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from renderstate._attempts import ACTIVE_STATES, Attempt, AttemptState
from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import TransitionRecord
from renderstate.exceptions import (
    AttemptSupersededError,
    InvalidTransitionError,
    RenderCancelledError,
)
from renderstate.ledger._checks import is_token
from renderstate.ledger._folding import Ride, ride_update
from renderstate.ledger._owners import release
from renderstate.typing import AttemptStore, ProjectT

if TYPE_CHECKING:
    from renderstate.ledger._ledger import Ledger

__all__ = [
    "LEFT_OUTSIDE",
    "finish",
    "held",
    "owned_update",
    "owner_fences",
    "refused",
    "superseded",
]

LEFT_OUTSIDE: Final = "the project left PROCESSING outside the ledger"


def finish(
    ledger: Ledger,
    lifecycle: ProjectLifecycle[ProjectT],
    attempt: Attempt,
    values: Mapping[str, object],
    *,
    transition: Callable[[], TransitionRecord],
    publish: Callable[[], None] | None,
    fence: Callable[[], bool] | None = None,
    uncancelled: bool = False,
) -> TransitionRecord:
    """End ``attempt`` with ``values`` and its project with ``transition``, fenced.

    ``fence`` replaces the owner's conditional write of the attempt's row (see
    :meth:`Ledger.give_up <renderstate.ledger.Ledger.give_up>`). With ``uncancelled``
    (a completion), the write matches only while nobody asked the attempt to cancel;
    an owner whose attempt was asked gets :class:`~renderstate.RenderCancelledError`,
    nothing written, the attempt still its own to fail.
    """
    try:
        with ledger._atomic(lifecycle):
            ride = (
                None
                if fence is not None
                else _ride(ledger, lifecycle, attempt, values, uncancelled=uncancelled)
            )
            if ride is None:
                # The attempt's row first: a late attempt stops here, before it has
                # taken the project's row lock or touched its object.
                if fence is None:
                    matched = owned_update(ledger.store, attempt, values, uncancelled=uncancelled)
                else:
                    matched = fence()
                if not matched:
                    raise refused(ledger.store, attempt, lifecycle.project_key)
                record = transition()
            else:
                # Both rows in the project's guarded UPDATE: both written, or neither
                # (the ride raises refused() when the attempt's fence failed).
                with ride:
                    record = transition()
                if ride.landed is None and not owned_update(
                    ledger.store, attempt, values, uncancelled=uncancelled
                ):  # the adapter sent a statement of its own
                    raise refused(ledger.store, attempt, lifecycle.project_key)
            if publish is not None:
                publish()
    except AttemptSupersededError:
        release(attempt.owner)  # whoever holds it now, it is not this caller
        raise
    except RenderCancelledError:
        raise  # still this caller's attempt: it fails it next
    except InvalidTransitionError:
        # The project left PROCESSING without the ledger (a plain lifecycle call):
        # this attempt cannot finish it, and must not stay live for recovery either.
        interrupted = owned_update(
            ledger.store,
            attempt,
            {
                "state": AttemptState.INTERRUPTED,
                "finished_at": ledger._time(),
                "error": LEFT_OUTSIDE,
            },
        )
        release(attempt.owner)
        if not interrupted:
            # Not this caller's attempt any more (ended or taken over): a ride plans the
            # project's UPDATE before the attempt's fence is tried, so a late attempt
            # meets the project's new state first. Answer as the attempt's own write
            # does when it matches nothing.
            raise refused(ledger.store, attempt, lifecycle.project_key) from None
        raise
    release(attempt.owner)
    return record


def _ride(
    ledger: Ledger,
    lifecycle: ProjectLifecycle[ProjectT],
    attempt: Attempt,
    values: Mapping[str, object],
    *,
    uncancelled: bool = False,
) -> Ride[bool] | None:
    """The store's ride of the attempt's fenced write in the project's UPDATE, if it has one."""
    fences = owner_fences(ledger.store, attempt, uncancelled=uncancelled)
    if fences is None:
        return None
    return ride_update(
        ledger.store,
        lifecycle,
        attempt_id=attempt.id,
        values=values,
        fences=fences,
        refused=lambda: refused(ledger.store, attempt, lifecycle.project_key),
    )


def owned_update(
    store: AttemptStore,
    attempt: Attempt | int,
    values: Mapping[str, object],
    *,
    uncancelled: bool = False,
) -> bool:
    """Write ``values`` while ``attempt`` is live and still held under its owner token.

    An attempt as :meth:`start` or :meth:`begin` returned it carries its owner token:
    once another owner took it over (a worker began the queued attempt, or the lease
    expired while the first worker stalled and a second one began it), the first
    owner's heartbeats, ``complete`` and ``fail`` match nothing, even in the same
    process. A bare id is not fenced by owner (scripts that renew by id). An attempt
    recorded before owner tokens existed is fenced by its worker name, as then. With
    ``uncancelled``, only while nobody asked the attempt to cancel.
    """
    fences = owner_fences(store, attempt, uncancelled=uncancelled)
    if fences is None:
        return False
    attempt_id = attempt if isinstance(attempt, int) else attempt.id
    return store.update(attempt_id, values, **fences)  # type: ignore[arg-type]


def owner_fences(
    store: AttemptStore, attempt: Attempt | int, *, uncancelled: bool = False
) -> dict[str, object] | None:
    """The fences of :func:`owned_update`, as ``store.update`` takes them; ``None``: none holds."""
    fences: dict[str, object] = {"states": ACTIVE_STATES}
    # Asked only when it matters: a store written before cancel requests (its update()
    # takes no ``uncancelled``) keeps working, without them.
    if uncancelled and takes_cancel_requests(store):
        fences["uncancelled"] = True
    if isinstance(attempt, int):
        return fences
    if attempt.owner is not None:
        if not is_token(attempt.owner):
            return None  # no owner holds it: a variant of a token would match on MariaDB
        fences["owner"] = attempt.owner
    elif attempt.worker is not None:
        fences["worker"] = attempt.worker
    return fences


_TAKES: dict[type, bool] = {}


def takes_cancel_requests(store: AttemptStore) -> bool:
    """Whether ``store.update`` takes ``uncancelled`` (every store renderstate ships does).

    A store written against an earlier version of the Protocol does not: its attempts
    cannot be cancelled through the ledger, and everything else works as before.
    """
    kind = type(store)
    known = _TAKES.get(kind)
    if known is None:
        try:
            parameters = inspect.signature(store.update).parameters.values()
        except (TypeError, ValueError):  # pragma: no cover - no signature to read
            known = False
        else:
            known = any(
                p.name == "uncancelled" or p.kind is inspect.Parameter.VAR_KEYWORD
                for p in parameters
            )
        _TAKES[kind] = known
    return known


def held(now: Attempt, attempt: Attempt) -> bool:
    """Whether ``now`` (the attempt as stored) is live and still held as ``attempt`` was."""
    if not now.active:
        return False
    if attempt.owner is not None:
        return now.owner == attempt.owner
    return attempt.worker is None or now.worker == attempt.worker


def refused(
    store: AttemptStore, attempt: Attempt, project_key: object
) -> AttemptSupersededError | RenderCancelledError:
    """Why the owner's fenced write of ``attempt`` matched nothing.

    A cancel request (the attempt still live and held by this caller), or the attempt is
    no longer this caller's.
    """
    now = store.get(attempt.id)
    if now is not None and now.cancel_requested and held(now, attempt):
        return RenderCancelledError(
            project_key=project_key, reason=now.cancel_reason or "cancelled"
        )
    return AttemptSupersededError(
        project_key=attempt.project_key,
        attempt_id=attempt.id,
        state=None if now is None else now.state.value,
    )


def superseded(store: AttemptStore, attempt: Attempt) -> AttemptSupersededError:
    """The error of a caller whose attempt is no longer its to change."""
    now = store.get(attempt.id)
    return AttemptSupersededError(
        project_key=attempt.project_key,
        attempt_id=attempt.id,
        state=None if now is None else now.state.value,
    )
