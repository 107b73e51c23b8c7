"""Cancelling through the ledger: a request any process can make, fenced to the live attempt.

A queued attempt (no worker has begun it) is failed at once, with its project, by one
conditional ``UPDATE`` that matches only while it is still queued. A rendering one gets the
request recorded on its row (``cancel_requested_at``, ``cancel_reason``): its owner, in
whatever process, sees it at its next heartbeat and ends FAILED as cancelled, and its
completion is refused from the moment the request is recorded, so a request that was
recorded is a render that ends cancelled.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from renderstate._attempts import ACTIVE_STATES, AttemptState
from renderstate._lifecycle import ProjectLifecycle
from renderstate.exceptions import (
    AttemptSupersededError,
    InvalidTransitionError,
    RenderCancelledError,
)
from renderstate.ledger._checks import describe
from renderstate.ledger._fencing import finish, takes_cancel_requests
from renderstate.typing import ProjectT

if TYPE_CHECKING:
    from renderstate.ledger._ledger import Ledger

__all__ = ["DEFAULT_REASON", "cancel"]

DEFAULT_REASON: Final = "cancelled"
_QUEUED: Final = frozenset({AttemptState.QUEUED})


def cancel(ledger: Ledger, lifecycle: ProjectLifecycle[ProjectT], reason: object) -> bool:
    """Ask the project's live attempt to stop; see :meth:`Ledger.cancel`."""
    if reason is not None and not isinstance(reason, str):
        msg = f"a cancel reason must be a string or None, got {type(reason).__name__}"
        raise TypeError(msg)
    if not takes_cancel_requests(ledger.store):
        msg = (
            f"{type(ledger.store).__name__}.update() takes no 'uncancelled' fence, so its "
            "attempts' owners could never see a cancel request: add the keyword (see "
            "renderstate.typing.AttemptStore.update) to cancel through the ledger"
        )
        raise TypeError(msg)
    text = reason or DEFAULT_REASON
    scope, key = ledger.key(lifecycle)
    live = ledger.store.live(scope, key)
    if not live:
        return False
    attempt = max(live, key=lambda a: a.id)  # the current one; older ones are left over
    now = ledger._time()
    request: dict[str, object] = {"cancel_requested_at": now, "cancel_reason": describe(text)}
    if attempt.state is AttemptState.QUEUED:
        error = RenderCancelledError(project_key=lifecycle.project_key, reason=text)
        values = {
            **request,
            "state": AttemptState.FAILED,
            "finished_at": now,
            "phase": "failed",
            "error": describe(error),
        }
        try:
            finish(
                ledger,
                lifecycle,
                # No owner: the token is the submitter's, never this caller's to release.
                dataclasses.replace(attempt, owner=None, worker=None),
                values,
                transition=lambda: lifecycle.fail(error),
                publish=None,
                fence=lambda: ledger.store.update(attempt.id, values, states=_QUEUED),
            )
        except AttemptSupersededError:
            pass  # a worker began it meanwhile (or it ended): ask its owner below
        except InvalidTransitionError:
            return False  # the project left PROCESSING outside the ledger
        else:
            return True
    return ledger.store.update(attempt.id, request, states=ACTIVE_STATES)
