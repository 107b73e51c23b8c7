"""Ending a render: save COMPLETED or FAILED (retrying a failing store), then end the job.

The last step of the flow. Every way a job ends comes here: a render that succeeded or
failed, a queued job cancelled or shut down, an attempt superseded before it rendered. A
job counts as ended (``wait()`` returns) only after its save was tried, whatever happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from renderstate import telemetry
from renderstate._records import TransitionRecord
from renderstate._status import Status
from renderstate.exceptions import (
    AttemptSupersededError,
    InvalidTransitionError,
    RenderCancelledError,
    RenderHandedBackError,
    RenderInterruptedError,
    RenderOutputError,
    RenderStateError,
)
from renderstate.runner._holding import let_go
from renderstate.runner._job import RenderJob
from renderstate.runner._state import RunnerState
from renderstate.runner.progress import Phase
from renderstate.typing import ProjectT

logger = logging.getLogger("renderstate.runner")

# Saving COMPLETED/FAILED is retried with exponential backoff between these bounds.
_FIRST_DELAY: Final = 0.05
_MAX_DELAY: Final = 2.0


def end_completed(
    state: RunnerState[ProjectT],
    job: RenderJob[ProjectT],
    publish: Callable[[], None] | None = None,
    clean_up: Callable[[TransitionRecord | None, BaseException | None], None] | None = None,
) -> None:
    """Save the job's project COMPLETED (publishing its video inside the fenced save).

    ``clean_up`` is told what the save came to (the record saved, or the problem it gave
    up on) before the job counts as ended: the publish journal settles its backup by it.
    A completion the ledger refused because someone asked the attempt to cancel (from
    any process) ends the job FAILED as cancelled instead: nothing was published.
    """
    record: TransitionRecord | None = None
    problem: BaseException | None = None
    ledger, attempt = state.ledger, job.attempt
    if ledger is not None and attempt is not None:

        def save() -> TransitionRecord:
            return ledger.complete(
                job._lifecycle, attempt, job.output_path, publish=publish, fields=job._fields
            )
    else:

        def save() -> TransitionRecord:
            return job._lifecycle.complete(job.output_path, fields=job._fields)

    try:
        record, problem = _persist(state, job, "COMPLETED", save)
    except BaseException as exc:  # an interrupt while saving: the job still ends
        problem = exc
        raise
    finally:
        try:
            if clean_up is not None:
                # Before the job counts as ended: wait() sees a clean disk.
                clean_up(record, problem)
        finally:
            if record is None and isinstance(problem, RenderCancelledError):
                end_failed(state, job, problem)
            else:
                _finish(state, job, _status_of(job, record), problem)


def end_failed(
    state: RunnerState[ProjectT],
    job: RenderJob[ProjectT],
    error: BaseException,
    *,
    gave_up: bool = False,
) -> None:
    """Save the job's project FAILED with ``error``.

    With ``gave_up``, the job's begin raised: whether it took the attempt is unknown, so
    the attempt is failed only while it is still queued or held under the job's token
    (:meth:`~renderstate.ledger.Ledger.give_up`); otherwise nothing is saved.
    """
    if isinstance(error, RenderHandedBackError) and not gave_up and _hand_back(state, job, error):
        return
    record: TransitionRecord | None = None
    if isinstance(error, (RenderInterruptedError, RenderOutputError)) and error.untouched is None:
        # Say that the previous video is untouched only once it was checked.
        checked = type(error)(
            project_key=error.project_key, reason=error.reason, untouched=job._untouched()
        )
        checked.__cause__ = error.__cause__
        error = checked
    # Known before the row says FAILED, so that error() never answers None on a
    # FAILED project whose job has not ended yet.
    job._failure = error
    try:
        if isinstance(error, RenderInterruptedError):
            logger.warning("%s", error)
        else:
            logger.error("the render of project %s failed", job.project_key, exc_info=error)
        ledger, attempt = state.ledger, job.attempt
        if ledger is not None and attempt is not None and gave_up:

            def save() -> TransitionRecord:
                record = ledger.give_up(job._lifecycle, attempt, error, owner=job.owner)
                if record is None:
                    logger.warning(
                        "attempt %s of project %s is not failed: its begin here raised, and "
                        "it is neither queued nor held by this job (another owner renders "
                        "it, or it ended); this delivery saves nothing",
                        attempt.id,
                        job.project_key,
                    )
                    raise AttemptSupersededError(project_key=job.project_key, attempt_id=attempt.id)
                return record
        elif ledger is not None and attempt is not None:

            def save() -> TransitionRecord:
                return ledger.fail(job._lifecycle, attempt, error)
        else:

            def save() -> TransitionRecord:
                return job._lifecycle.fail(error)

        record, _ = _persist(state, job, "FAILED", save)
    finally:
        # Even if an interrupt cut the save short, wait() returns and the job counts as
        # ended, so recover_interrupted() can repair a project left PROCESSING.
        _finish(state, job, _status_of(job, record), error)


def _hand_back(
    state: RunnerState[ProjectT], job: RenderJob[ProjectT], error: RenderHandedBackError
) -> bool:
    """Give the job's attempt back to the queue instead of failing it; whether it was.

    Not when the attempt is no longer the job's, or someone asked it to cancel: the job
    then ends as any interrupted render does.
    """
    ledger, attempt = state.ledger, job.attempt
    if ledger is None or attempt is None or not job._begun:
        return False
    # Its heartbeat stops renewing under the token it gives up.
    let_go(state, job)
    try:
        back = ledger.hand_back(attempt)
    except Exception:
        logger.exception("could not hand attempt %s back; it is failed instead", attempt.id)
        return False
    if back is None:
        return False
    job.attempt = back
    logger.warning("%s", error)
    _finish(state, job, _status_of(job, None), error)
    return True


def end_unsaved(
    state: RunnerState[ProjectT], job: RenderJob[ProjectT], error: BaseException
) -> None:
    """End a job whose attempt is no longer current: it saves nothing."""
    _finish(state, job, _status_of(job, None), error)


def _finish(
    state: RunnerState[ProjectT],
    job: RenderJob[ProjectT],
    status: Status,
    error: BaseException | None,
) -> None:
    let_go(state, job)
    telemetry.ended(job, error)
    job._finish(status, error)


def _status_of(job: RenderJob[ProjectT], record: TransitionRecord | None) -> Status:
    if record is not None:
        # What this job saved; the shared project object may already show a newer
        # attempt's PROCESSING.
        return record.target
    try:
        return job._lifecycle.status
    except RenderStateError:  # pragma: no cover - a value nobody maps: report PROCESSING
        return Status.PROCESSING


def _persist(
    state: RunnerState[ProjectT],
    job: RenderJob[ProjectT],
    what: str,
    save: Callable[[], TransitionRecord],
) -> tuple[TransitionRecord | None, BaseException | None]:
    """Save the end of a render, retrying a failing store.

    Returns:
        The saved record, or the error it gave up on (nothing saved).
    """
    registry = state.registry
    deadline = time.monotonic() + state.persist_timeout
    delay = _FIRST_DELAY
    attempt = 1
    while True:
        try:
            # Under the key lock, no new attempt can start between the check and the
            # save: the guard alone would accept this job's end on the newer
            # attempt's PROCESSING row. The retry's sleep happens outside it.
            with state.key_locks.hold(job.project_key):
                if registry.superseded(job):
                    superseded = registry.superseded_error(job)
                    logger.warning(
                        "project %s is not saved as %s: %s", job.project_key, what, superseded
                    )
                    return None, superseded
                record = save()
                # Before the key lock is released: a new attempt that starts next never
                # finds this one still showing "finalizing" figures.
                job._tracker.enter(
                    Phase.DONE if record.target is Status.COMPLETED else Phase.FAILED
                )
        except (InvalidTransitionError, AttemptSupersededError, RenderCancelledError) as exc:
            # Not PROCESSING any more, or no longer the current attempt: recovered by
            # someone else, superseded, or a late duplicate. Or asked to cancel (from any
            # process) before its completion: nothing was written, end_completed fails it.
            logger.warning("project %s could not be saved as %s: %s", job.project_key, what, exc)
            return None, exc
        except RenderStateError as exc:
            logger.exception(
                "project %s could not be saved as %s", job.project_key, what, exc_info=exc
            )
            return None, exc
        except Exception as exc:
            if job._abandoned:
                logger.exception(
                    "saving project %s as %s failed and the runner was stopped: not "
                    "retried; it stays PROCESSING until recover_interrupted() runs",
                    job.project_key,
                    what,
                    exc_info=exc,
                )
                return None, exc
            if time.monotonic() + delay > deadline:
                logger.critical(
                    "gave up saving project %s as %s after %d attempts; it stays "
                    "PROCESSING until recover_interrupted() runs",
                    job.project_key,
                    what,
                    attempt,
                    exc_info=exc,
                )
                return None, exc
            logger.exception(
                "saving project %s as %s failed (attempt %d); retrying in %.2f s",
                job.project_key,
                what,
                attempt,
                delay,
                exc_info=exc,
            )
            state.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)
            attempt += 1
        else:
            telemetry.saved(job, record)
            state.notify(record)
            return record, None
