"""Fencing: what an owner may write to its attempt, and ending an attempt with its project.

Every write of a live attempt's owner (a heartbeat, ``complete``, ``fail``) goes through
:func:`owned_update`: one conditional ``UPDATE`` that matches only while the attempt is live
and held under the owner's token. :func:`finish` writes the attempt's row first and then the
project's guarded ``UPDATE`` (and runs ``publish``, the rename of the new video) in one
transaction, so a late owner stops before it has touched the project.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from renderstate._attempts import ACTIVE_STATES, Attempt, AttemptState
from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import TransitionRecord
from renderstate.exceptions import AttemptSupersededError, InvalidTransitionError
from renderstate.ledger._checks import is_token
from renderstate.ledger._owners import release
from renderstate.typing import AttemptStore, ProjectT

if TYPE_CHECKING:
    from renderstate.ledger._ledger import Ledger

__all__ = ["LEFT_OUTSIDE", "finish", "owned_update", "superseded"]

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
) -> TransitionRecord:
    """End ``attempt`` with ``values`` and its project with ``transition``, fenced.

    ``fence`` replaces the owner's conditional write of the attempt's row (see
    :meth:`Ledger.give_up <renderstate.ledger.Ledger.give_up>`).
    """
    try:
        with ledger._atomic(lifecycle):
            # The attempt's row first: a late attempt stops here, before it has taken
            # the project's row lock or touched its object.
            matched = owned_update(ledger.store, attempt, values) if fence is None else fence()
            if not matched:
                raise superseded(ledger.store, attempt)
            record = transition()
            if publish is not None:
                publish()
    except AttemptSupersededError:
        release(attempt.owner)  # whoever holds it now, it is not this caller
        raise
    except InvalidTransitionError:
        # The project left PROCESSING without the ledger (a plain lifecycle call):
        # this attempt cannot finish it, and must not stay live for recovery either.
        owned_update(
            ledger.store,
            attempt,
            {
                "state": AttemptState.INTERRUPTED,
                "finished_at": ledger._time(),
                "error": LEFT_OUTSIDE,
            },
        )
        release(attempt.owner)
        raise
    release(attempt.owner)
    return record


def owned_update(store: AttemptStore, attempt: Attempt | int, values: Mapping[str, object]) -> bool:
    """Write ``values`` while ``attempt`` is live and still held under its owner token.

    An attempt as :meth:`start` or :meth:`begin` returned it carries its owner token:
    once another owner took it over (a worker began the queued attempt, or the lease
    expired while the first worker stalled and a second one began it), the first
    owner's heartbeats, ``complete`` and ``fail`` match nothing, even in the same
    process. A bare id is not fenced by owner (scripts that renew by id). An attempt
    recorded before owner tokens existed is fenced by its worker name, as then.
    """
    if isinstance(attempt, int):
        return store.update(attempt, values, states=ACTIVE_STATES)
    if attempt.owner is not None:
        if not is_token(attempt.owner):
            return False  # no owner holds it: a variant of a token would match on MariaDB
        return store.update(attempt.id, values, states=ACTIVE_STATES, owner=attempt.owner)
    if attempt.worker is None:
        return store.update(attempt.id, values, states=ACTIVE_STATES)
    return store.update(attempt.id, values, states=ACTIVE_STATES, worker=attempt.worker)


def superseded(store: AttemptStore, attempt: Attempt) -> AttemptSupersededError:
    """The error of a caller whose attempt is no longer its to change."""
    now = store.get(attempt.id)
    return AttemptSupersededError(
        project_key=attempt.project_key,
        attempt_id=attempt.id,
        state=None if now is None else now.state.value,
    )
