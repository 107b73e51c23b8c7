"""Stopping: cancelling one job, stopping all of them, shutting the runner down.

A cancel is cooperative: a queued job ends at once, a running one at its next progress
report, and once its video is being published it is refused. With a ledger, a project whose
render runs in another process (or waits in a task queue) is cancelled through the ledger
(:meth:`~renderstate.ledger.Ledger.cancel`). Jobs stopped this way give up retrying their
save, so nothing of this runner touches the database after it has stopped.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any, Final

from renderstate.exceptions import RenderCancelledError, RenderInterruptedError
from renderstate.ledger._fencing import takes_cancel_requests
from renderstate.runner._ending import end_failed
from renderstate.runner._job import RenderJob
from renderstate.runner._state import RunnerState
from renderstate.typing import ProjectT

_scheduled_lock: Final = threading.Lock()
_scheduled: Final[weakref.WeakSet[RenderJob[Any]]] = weakref.WeakSet()
"""Every job handed to an executor that runs it in this process, while anything holds it.

Weak: a job stays here only while its executor's queue (or its app) holds it, so a
queued job whose runner was garbage-collected (an app that builds a runner per request
and drops it) is still found by :func:`renderstate.testing.stop_all_jobs`, and a job that
ran or was sent to a task queue costs nothing once it is collected."""


def schedule(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> None:
    """Hand ``job`` to the runner's executor, where stopping all jobs can still find it."""
    with _scheduled_lock:
        _scheduled.add(job)
    state.executor.schedule(job)


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
    return _stop(_unfinished(state), reason, timeout)


def stop_all(states: Iterable[RunnerState[Any]], reason: str, timeout: float | None) -> int:
    """Cancel the unfinished jobs of ``states`` and every other job an executor holds.

    What :func:`renderstate.testing.stop_all_jobs` does with the runners it knows: a job
    still queued when its runner was garbage-collected is in none of their registries, and
    ends here too, as a cancelled queued job does (FAILED, its attempt ended), without ever
    running; one a worker thread has just taken stops at its next progress report.

    Returns:
        How many jobs were cancelled.
    """
    found: list[tuple[RunnerState[Any] | None, RenderJob[Any]]] = []
    for state in states:
        found += _unfinished(state)
    known = {id(job) for _, job in found}
    with _scheduled_lock:
        held = [job for job in _scheduled if id(job) not in known and not job.done()]
    found += [(None, job) for job in held if job._away is None]
    return _stop(found, reason, timeout)


def _unfinished(
    state: RunnerState[ProjectT],
) -> list[tuple[RunnerState[Any] | None, RenderJob[Any]]]:
    with state.registry.lock:
        return [(state, job) for job in state.registry.jobs.values() if not job.done()]


def _stop(
    found: list[tuple[RunnerState[Any] | None, RenderJob[Any]]],
    reason: str,
    timeout: float | None,
) -> int:
    # The queued jobs first: a running job that stops frees its executor's thread, which
    # must find none of them still waiting (an executor may be shared by several runners).
    ordered = sorted(found, key=lambda pair: pair[1]._claimed)
    cancelled = 0
    for state, job in ordered:
        job._abandoned = True
        if job._away is not None and state is not None:
            cancelled += cancel_sent(state, job, reason)
        else:
            cancelled += job.cancel(reason)
    deadline = None if timeout is None else time.monotonic() + timeout
    for _, job in ordered:
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
