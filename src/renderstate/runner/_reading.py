"""Reading a render: the progress and the failure of a project's current attempt.

What a status endpoint shows while a render runs and after it ended: from this runner's own
job while it is the project's current attempt, else (with a ledger) from the attempt any
process recorded.
"""

from __future__ import annotations

from renderstate._attempts import AttemptState, encode_key
from renderstate.runner._state import RunnerState
from renderstate.runner.progress import Progress, progress_of
from renderstate.typing import ProjectT


def progress(state: RunnerState[ProjectT], project: ProjectT) -> Progress | None:
    """The latest progress of the project's current attempt; see the facade."""
    key = state.adapter.project_key(project)
    job = state.registry.jobs.get(key)
    if state.ledger is None or key is None:
        return None if job is None else job.progress
    if job is not None and job.attempt is None and not job.done():
        return job.progress  # registered, its start (and record) under way
    current = state.ledger.current(state.ledger.scope(project), encode_key(key))
    if current is None:
        return None if job is None else job.progress
    if job is not None and job.attempt_id == current.id:
        return job.progress
    return progress_of(current, state.ledger.now(), state.ledger.lease)


def video(state: RunnerState[ProjectT], project: ProjectT) -> str | None:
    """The URL-relative path of the project's current video; see the facade."""
    field = state.options["output_field"]
    if field is not None:
        return getattr(project, field) or None
    assert state.ledger is not None  # the runner refuses output_field=None without one
    key = state.adapter.project_key(project)
    if key is None:
        return None
    return state.ledger.video(state.ledger.scope(project), encode_key(key))


def error(state: RunnerState[ProjectT], project: ProjectT) -> str | None:
    """Why the project's current attempt failed, as one line; see the facade."""
    key = state.adapter.project_key(project)
    job = state.registry.jobs.get(key)
    recorded: str | None = None  # why the ledger says the current attempt ended
    if state.ledger is not None and key is not None:
        current = state.ledger.current(state.ledger.scope(project), encode_key(key))
        if current is not None:
            ended = current.state in (AttemptState.FAILED, AttemptState.INTERRUPTED)
            recorded = current.error if ended else None
            if job is None or job.attempt_id != current.id:
                return recorded
    if state.ledger is None:
        replaced, reason = state.recovered.get(key, (None, None))
        if reason is not None and replaced is job:
            return reason  # recovery failed the project after that job (if any) ended
    if job is None:
        return None
    # A failing job is known as such from before its FAILED is saved, so a reader who
    # loaded the FAILED row finds the reason even while the job is still ending.
    failure = job.error if job.done() else job._failure
    if failure is None:
        # Recovery in another process may have failed this job's attempt while the
        # job, hung here, has not noticed yet: the ledger knows why.
        return recorded
    text = str(failure).splitlines()[0] if str(failure) else ""
    name = type(failure).__name__
    return f"{name}: {text}" if text else name
