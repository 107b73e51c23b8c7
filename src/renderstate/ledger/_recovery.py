"""Recovery in the ledger: fail exactly the attempts whose lease expired, and clean up.

:meth:`Ledger.recover <renderstate.ledger.Ledger.recover>` is this module's
:func:`recover`: safe at any time, in any process, while others render, because each
candidate is re-checked (state and lease) under its row lock in the transaction that fails
its project.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NamedTuple

from renderstate import telemetry
from renderstate._attempts import ACTIVE_STATES, Attempt, AttemptState
from renderstate._layout import StatusValues
from renderstate._lifecycle import ProjectLifecycle
from renderstate._observers import describe_error
from renderstate._records import TransitionRecord
from renderstate.exceptions import InvalidTransitionError, RenderInterruptedError
from renderstate.ledger._owners import host_of
from renderstate.typing import Adapter, ProjectLoader, ProjectT

if TYPE_CHECKING:
    from renderstate.ledger._ledger import Ledger

__all__ = ["INTERRUPTED", "Recovered", "clean_up", "recover"]

logger = logging.getLogger("renderstate.ledger")

INTERRUPTED: Final = "its lease expired: the process rendering it died or stopped renewing it"


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
) -> list[Recovered]:
    """Fail the projects whose live attempt's lease expired; see :meth:`Ledger.recover`."""
    found: list[Recovered] = []
    here = socket.gethostname()
    for attempt in ledger.store.expired(ledger._time(), scope=loader.scope):
        now = ledger._time()
        project = loader(attempt.project_key)
        # The reason as every other failure's is recorded, "<class>: <message>", so that
        # runner.error() reads one format whoever failed the attempt.
        error = RenderInterruptedError(project_key=attempt.project_key, reason=INTERRUPTED)
        ended = {
            "state": AttemptState.INTERRUPTED,
            "finished_at": now,
            "phase": "failed",
            "error": describe_error(error),
        }
        record: TransitionRecord | None = None
        local = host_of(attempt.worker) in (None, here)
        if project is None:
            if not ledger.store.update(attempt.id, ended, states=ACTIVE_STATES, lease_before=now):
                continue
            clean_up(cleanup if local else None, attempt)
        else:
            lifecycle = ProjectLifecycle(
                project,
                adapter,
                status_field=status_field,
                output_field=output_field,
                values=values,
            )
            with ledger._atomic(lifecycle):
                if not ledger.store.update(
                    attempt.id, ended, states=ACTIVE_STATES, lease_before=now
                ):
                    continue  # renewed (or finished) since it was listed: alive
                try:
                    record = lifecycle.fail(error)
                except InvalidTransitionError:
                    record = None  # it left PROCESSING meanwhile: only the record ends
                # Before the commit, while the project is still PROCESSING and locked:
                # no new attempt can start and create its own temporary file, which
                # the clean-up (all of the final video's temporary files) would remove.
                clean_up(cleanup if local else None, attempt)
        logger.warning(
            "render attempt %s of %s %s was interrupted (lease expired%s)",
            attempt.id,
            attempt.scope,
            attempt.project_key,
            f", worker {attempt.worker}" if attempt.worker else "",
        )
        telemetry.recovered(attempt.scope)
        found.append(Recovered(attempt, record, local))
    return found


def clean_up(cleanup: Callable[[Attempt], None] | None, attempt: Attempt) -> None:
    """Call ``cleanup(attempt)`` if given, logging (never raising) its errors."""
    if cleanup is None:
        return
    try:
        cleanup(attempt)
    except Exception:
        logger.exception("could not clean up after attempt %s", attempt.id)
