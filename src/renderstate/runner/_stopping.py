"""Stopping: cancelling one job, stopping all of them, shutting the runner down.

A cancel is cooperative: a queued job ends at once, a running one at its next progress
report, and once its video is being published it is refused. With a ledger, a project whose
render runs in another process (or waits in a task queue) is cancelled through the ledger
(:meth:`~renderstate.ledger.Ledger.cancel`). Jobs stopped this way give up retrying their
save, so nothing of this runner touches the database after it has stopped.
"""

from __future__ import annotations

import time

from renderstate.exceptions import RenderCancelledError, RenderInterruptedError
from renderstate.ledger._fencing import takes_cancel_requests
from renderstate.runner._ending import end_failed
from renderstate.runner._job import RenderJob
from renderstate.runner._state import RunnerState
from renderstate.typing import ProjectT


def cancel_project(state: RunnerState[ProjectT], project: ProjectT, reason: str | None) -> bool:
    """Cancel the project's render, here or in any process; see the facade."""
    text = reason or "cancelled"
    job = state.registry.jobs.get(state.adapter.project_key(project))
    if job is not None and not job.done() and job._away is None:
        # Rendered (or queued) here: at once, without a round trip. Refused while its
        # video is being published, as everywhere.
        return job.cancel(text)
    if state.ledger is None or not takes_cancel_requests(state.ledger.store):
        return False  # a store that predates cancel requests: nothing to ask through it
    return state.ledger.cancel(state.lifecycle(project), text)


def cancel_job(state: RunnerState[ProjectT], job: RenderJob[ProjectT], reason: str) -> bool:
    """Ask ``job`` to stop (what :meth:`RenderJob.cancel` does)."""
    if not job._request_cancel(reason):
        return False
    if job._claim():
        # Still queued: it ends now, without ever holding a worker.
        end_failed(
            state,
            job,
            RenderCancelledError(
                project_key=job.project_key, reason=reason, untouched=job._untouched()
            ),
        )
    return True


def cancel_sent(state: RunnerState[ProjectT], job: RenderJob[ProjectT], reason: str) -> bool:
    """Cancel, through the ledger, a job this runner sent to a task queue.

    Its task may never run (an app's test mocks the task's ``apply_async``): still queued,
    the attempt fails at once with its project; begun by a worker, that worker stops at
    its next heartbeat.
    """
    if state.ledger is None or not takes_cancel_requests(state.ledger.store):
        return False
    return state.ledger.cancel(job._lifecycle, reason)


def stop_jobs(state: RunnerState[ProjectT], reason: str, timeout: float | None) -> int:
    """Cancel every unfinished job and wait until they have ended; see the facade."""
    with state.registry.lock:
        jobs = [job for job in state.registry.jobs.values() if not job.done()]
    cancelled = 0
    for job in jobs:
        job._abandoned = True
        if job._away is not None:
            cancelled += cancel_sent(state, job, reason)
        else:
            cancelled += cancel_job(state, job, reason)
    deadline = None if timeout is None else time.monotonic() + timeout
    for job in jobs:
        if job._away is None:
            job.wait(None if deadline is None else max(deadline - time.monotonic(), 0.0))
    return cancelled


def shutdown(
    state: RunnerState[ProjectT], wait: bool, *, cancel_pending: bool, cancel_running: bool
) -> None:
    """Accept no more renders and stop the executor; see the facade."""
    with state.registry.lock:
        state.closed = True
        jobs = list(state.registry.jobs.values())

    if cancel_pending or cancel_running:
        for job in jobs:
            job._abandoned = True
    if cancel_pending:
        for job in jobs:
            if job._claim():
                reason = "the runner shut down before the render started"
                end_failed(
                    state,
                    job,
                    RenderInterruptedError(
                        project_key=job.project_key, reason=reason, untouched=job._untouched()
                    ),
                )
    if cancel_running:
        for job in jobs:
            cancel_job(state, job, "the runner shut down")
    state.executor.shutdown(wait)
    if wait and state.heartbeat is not None:
        # Every job has ended; without wait, running renders keep their heartbeat.
        state.heartbeat.stop()
