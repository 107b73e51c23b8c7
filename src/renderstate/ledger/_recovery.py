"""Recovery in the ledger: fail exactly the attempts whose lease expired, and clean up.

:meth:`Ledger.recover <renderstate.ledger.Ledger.recover>` is this module's
:func:`recover`: safe at any time, in any process, while others render, because each
candidate is re-checked (state and lease) under its row lock in the transaction that fails
its project. An attempt whose owner is a process of this machine that is gone
(:func:`~renderstate.ledger._owners.dead_owner`) is failed at once, its lease unexpired:
it is re-checked under its owner token instead, which no live process holds.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from renderstate import telemetry
from renderstate._attempts import ACTIVE_STATES, Attempt, AttemptState
from renderstate._layout import StatusValues
from renderstate._lifecycle import ProjectLifecycle
from renderstate._observers import describe_error
from renderstate._records import TransitionRecord
from renderstate.exceptions import InvalidTransitionError, RenderInterruptedError
from renderstate.ledger._owners import dead_owner, host_of
from renderstate.typing import Adapter, ProjectLoader, ProjectT

if TYPE_CHECKING:
    from renderstate.ledger._ledger import Ledger

__all__ = ["DIED", "INTERRUPTED", "Recovered", "clean_up", "end_attempt", "recover"]

logger = logging.getLogger("renderstate.ledger")

INTERRUPTED: Final = "its lease expired: the process rendering it died or stopped renewing it"
DIED: Final = "the process rendering it on this machine ({worker}) is gone: it died or was killed"
"""The reason recorded for an attempt failed before its lease expired, its process gone."""

_RENDERING: Final = frozenset({AttemptState.RENDERING})
_EVERY_LEASE: Final = 10 * 365 * 86400.0
"""Seconds ahead within which every live lease expires: listing the attempts whose lease
expires before then lists them all, with the store's one query for expired leases."""


class Recovered(NamedTuple):
    """One attempt that :meth:`Ledger.recover` found dead, and what it did about it."""

    attempt: Attempt
    """The attempt as it was found (still live in the record, its lease expired)."""
    record: TransitionRecord | None
    """The project's move to FAILED; ``None`` if the project had already left PROCESSING
    or no longer exists (the attempt is marked interrupted all the same)."""
    local: bool
    """Whether the attempt ran on this machine, so its temporary files could be removed."""


def recover(
    ledger: Ledger,
    adapter: Adapter[ProjectT],
    loader: ProjectLoader[ProjectT],
    *,
    cleanup: Callable[[Attempt], None] | None,
    status_field: str,
    output_field: str | None,
    values: StatusValues | None,
    error_field: str | None = None,
) -> list[Recovered]:
    """Fail the projects whose live attempt's lease expired; see :meth:`Ledger.recover`."""
    found: list[Recovered] = []
    options: dict[str, Any] = {
        "status_field": status_field,
        "output_field": output_field,
        "values": values,
        "error_field": error_field,
    }

    def end(attempt: Attempt, fence: dict[str, Any], reason: str) -> None:
        ended = end_attempt(
            ledger,
            adapter,
            loader,
            attempt,
            fence=fence,
            reason=reason,
            cleanup=cleanup,
            options=options,
        )
        if ended is not None:
            found.append(ended)

    expired = ledger.store.expired(ledger._time(), scope=loader.scope)
    for attempt in expired:
        end(attempt, {"states": ACTIVE_STATES, "lease_before": ledger._time()}, INTERRUPTED)
    listed = {attempt.id for attempt in expired}
    for attempt in ledger.store.expired(ledger._time() + _EVERY_LEASE, scope=loader.scope):
        if attempt.id not in listed and dead_owner(attempt):
            # Its lease still runs, but no process renews it: fenced by its owner token
            # and worker, so a takeover since it was listed (another owner) is left alone.
            fence = {"states": _RENDERING, "owner": attempt.owner, "worker": attempt.worker}
            end(attempt, fence, DIED.format(worker=attempt.worker))
    return found


def end_attempt(
    ledger: Ledger,
    adapter: Adapter[ProjectT],
    loader: ProjectLoader[ProjectT],
    attempt: Attempt,
    *,
    fence: dict[str, Any],
    reason: str,
    cleanup: Callable[[Attempt], None] | None,
    options: dict[str, Any],
) -> Recovered | None:
    """Mark ``attempt`` interrupted if it still matches ``fence``; fail its project.

    ``None`` if the attempt no longer matched (renewed, ended or taken over since it was
    listed): nothing was written.
    """
    here = socket.gethostname()
    now = ledger._time()
    project = loader(attempt.project_key)
    # The reason as every other failure's is recorded, "<class>: <message>", so that
    # runner.error() reads one format whoever failed the attempt.
    error = RenderInterruptedError(project_key=attempt.project_key, reason=reason)
    ended = {
        "state": AttemptState.INTERRUPTED,
        "finished_at": now,
        "phase": "failed",
        "error": describe_error(error),
    }
    record: TransitionRecord | None = None
    local = host_of(attempt.worker) in (None, here)
    if project is None:
        if not ledger.store.update(attempt.id, ended, **fence):
            return None
        clean_up(cleanup if local else None, attempt)
    else:
        lifecycle = ProjectLifecycle(project, adapter, **options)
        with ledger._atomic(lifecycle):
            if not ledger.store.update(attempt.id, ended, **fence):
                return None  # renewed (or finished, or taken over) since it was listed
            try:
                record = lifecycle.fail(error)
            except InvalidTransitionError:
                record = None  # it left PROCESSING meanwhile: only the record ends
            # Before the commit, while the project is still PROCESSING and locked:
            # no new attempt can start and create its own temporary file, which
            # the clean-up (all of the final video's temporary files) would remove.
            clean_up(cleanup if local else None, attempt)
    logger.warning(
        "render attempt %s of %s %s was interrupted (%s%s)",
        attempt.id,
        attempt.scope,
        attempt.project_key,
        "lease expired" if reason is INTERRUPTED else "its process is gone",
        f", worker {attempt.worker}" if attempt.worker else "",
    )
    telemetry.recovered(attempt.scope)
    return Recovered(attempt, record, local)


def clean_up(cleanup: Callable[[Attempt], None] | None, attempt: Attempt) -> None:
    """Call ``cleanup(attempt)`` if given, logging (never raising) its errors."""
    if cleanup is None:
        return
    try:
        cleanup(attempt)
    except Exception:
        logger.exception("could not clean up after attempt %s", attempt.id)
