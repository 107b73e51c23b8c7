"""Holding an attempt: the heartbeat renewals a job keeps under its owner token, and letting go.

A job renews its attempt under its own owner token, never under the attempt's id: two jobs
of one attempt in this process (a duplicate delivery, a second runner taking over) are two
owners, and one's end never stops the other's renewals.
"""

from __future__ import annotations

from renderstate.ledger._owners import release
from renderstate.runner._job import RenderJob
from renderstate.runner._state import RunnerState
from renderstate.typing import ProjectT

__all__ = ["keep_alive", "let_go"]


def keep_alive(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> None:
    """Renew the job's attempt under the job's owner token until the job ends.

    Not for a job rendered immediately: it ends before its caller goes on, and a heartbeat
    thread would write beside the caller's transaction (a test's, which it cannot see).
    """
    if job._immediate:
        return
    assert state.heartbeat is not None
    assert job.attempt is not None
    state.heartbeat.add(
        job.owner, job.attempt, job._tracker.snapshot, job._lose, job._request_cancel
    )
    job._beats.append(job.owner)


def let_go(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> None:
    """Stop renewing what this job kept alive, and hold nothing any more (it has ended)."""
    if state.heartbeat is not None:
        for key in job._beats:
            state.heartbeat.remove(key)
    job._beats.clear()
    if job._begun or job.attempt is not None:
        release(job.owner)
