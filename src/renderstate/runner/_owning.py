"""Owning a job: which job is each project's current one here, and running the one owned.

The registry keeps each project's current job in this runner; an older job of the same
project is superseded (it replaces no video and saves nothing). A worker runs a job once:
it claims it, begins its attempt in the ledger (under a lease the heartbeat renews), and
renders it within the adapter's job scope. A job handed off to another process is owned
there, through the ledger.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Final, Generic

from renderstate import telemetry
from renderstate.exceptions import (
    AttemptOwnedError,
    AttemptSupersededError,
    RenderInterruptedError,
)
from renderstate.ledger import new_owner
from renderstate.ledger._owners import release
from renderstate.runner._ending import end_failed, end_unsaved
from renderstate.runner._holding import keep_alive, let_go
from renderstate.runner._immediate import running
from renderstate.runner._job import RenderJob
from renderstate.runner._publishing import clean_after, render
from renderstate.runner._state import RunnerState
from renderstate.typing import Adapter, ProjectT

logger = logging.getLogger("renderstate.runner")

KEEP_FINISHED_JOBS: Final = 1024
"""How many finished jobs a runner remembers (for ``job()`` and ``progress()``)."""
_SUPERSEDED: Final = "superseded by a newer render attempt"


class Registry(Generic[ProjectT]):
    """Each project's current job in one runner, and the most recent finished ones."""

    def __init__(self) -> None:
        # lock guards the registry (and the runner's closed flag) and is only ever held
        # for dictionary work.
        self.lock = threading.Lock()
        self.jobs: dict[object, RenderJob[ProjectT]] = {}

    def superseded(self, job: RenderJob[ProjectT]) -> bool:
        """Whether a newer attempt of the job's project has started in this runner.

        A job that was ever current here is superseded once another job took its place.
        A delivered job that never became current (its begin was refused or failed) only
        by a live job here of a newer attempt: the owner of its own attempt, running here,
        is not newer.
        """
        with self.lock:
            current = self.jobs.get(job.project_key)
            if job._registered:
                return current is not job
            return (
                current is not None
                and not current.done()
                and (current.attempt_id or 0) > (job.attempt_id or 0)
            )

    def make_current(self, job: RenderJob[ProjectT]) -> None:
        """Make ``job`` its project's current job here; the lock is held."""
        # Re-inserted at the end: the dict is ordered oldest attempt first. A job that
        # was current once stays _registered: from now on it is superseded.
        self.jobs.pop(job.project_key, None)
        self.jobs[job.project_key] = job
        job._registered = True
        self.forget_old_jobs()

    def superseded_error(self, job: RenderJob[ProjectT]) -> RenderInterruptedError:
        """The error a superseded job ends with."""
        return RenderInterruptedError(project_key=job.project_key, reason=_SUPERSEDED)

    def forget_old_jobs(self) -> None:
        """Drop the oldest finished jobs beyond ``KEEP_FINISHED_JOBS``; the lock is held."""
        # A long-lived runner sees many projects: keep every unfinished job, and only the
        # most recent finished ones, so memory does not grow with every project ever seen.
        excess = len(self.jobs) - KEEP_FINISHED_JOBS
        if excess <= 0:
            return
        for key in [k for k, job in self.jobs.items() if job.done()][:excess]:
            del self.jobs[key]


def run(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> None:
    """Run ``job`` to its end in the calling thread (what :meth:`RenderJob.run` does)."""
    if not job._claim():
        return  # cancelled by shutdown(cancel_pending=True)
    if state.registry.superseded(job):
        # A newer attempt started while this one waited in the queue: rendering it
        # would only hold a worker that the newer attempt is waiting for.
        end_failed(state, job, state.registry.superseded_error(job))
        return
    # Held while it runs: a runner dropped meanwhile still has this job stopped by
    # renderstate.testing.stop_all_jobs.
    with running(state), job_scope(state.adapter):
        if not job._begun and not begin(state, job):
            return
        with telemetry.rendering(job):
            render(state, job)


def job_scope(adapter: Adapter[ProjectT]) -> contextlib.AbstractContextManager[object]:
    """The adapter's scope around one job (its heartbeat's too)."""
    # An adapter that keeps per-thread connections (Django) recycles them around each
    # job, as its request cycle does; the others need nothing.
    scope = getattr(adapter, "job_scope", None)
    return contextlib.nullcontext() if scope is None else scope()


def begin(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> bool:
    """Begin the job's attempt in the ledger under a fresh owner token of the job's own.

    A begin that is refused, or that fails, changes nothing this job does not own: not
    the registry's current job, not another job's heartbeat, not the attempt of a live
    owner. The job has then ended.
    """
    if state.ledger is None or job.attempt is None:
        job._begun = True
        return True
    # The start's token stops being renewed before the begin replaces it: a renewal under
    # it would be refused once the begin committed, and must not count as a lost attempt.
    submitted = job.owner
    if submitted in job._beats:
        job._beats.remove(submitted)
        assert state.heartbeat is not None
        state.heartbeat.remove(submitted)
    release(submitted)
    job.owner = new_owner()
    try:
        job.attempt = state.ledger.begin(
            job.attempt, owner=job.owner, cleanup=lambda attempt: clean_after(state, attempt)
        )
    except AttemptOwnedError as exc:
        # A duplicate delivery: a live worker renders this attempt.
        logger.info("%s", exc)
        end_unsaved(state, job, exc)
        return False
    except AttemptSupersededError as exc:
        # Recovered or superseded in another process while it was queued here.
        logger.warning("%s", exc)
        end_unsaved(state, job, exc)
        return False
    except BaseException as exc:
        # A store error ends the job like a render error, and so does an interrupt
        # (Ctrl-C in a begin that waits for its row), which then propagates. Whether the
        # begin took the attempt is unknown: fail it only if it is still queued or held
        # under this job's token (give_up), never a live owner's.
        end_failed(state, job, exc, gave_up=True)
        if not isinstance(exc, Exception):
            raise
        return False
    job._begun = True
    keep_alive(state, job)
    return True


def begin_delivered(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> bool:
    """Begin a job delivered from another process, before it becomes current here.

    Returns:
        ``False`` if it may not render here (a newer attempt of the project runs here,
        another owner holds the attempt, it ended, or the begin failed): the job has then
        ended, and nothing of another job in this runner was touched.
    """
    if state.registry.superseded(job):
        end_unsaved(state, job, state.registry.superseded_error(job))
        return False
    with job_scope(state.adapter):
        return begin(state, job)


def register_delivered(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> bool:
    """Make a job delivered from another process its project's current one here.

    Returns:
        ``False`` if a newer attempt of the project runs here: the job has then ended,
        unsaved.

    Raises:
        RuntimeError: the runner was shut down since the job began: the job has then
            ended, its attempt failed (nothing here renews or renders it any more).
    """
    key = job.project_key
    assert job.attempt is not None
    registry = state.registry
    with state.key_locks.hold(key), registry.lock:
        closed = state.closed
        current = None if closed else registry.jobs.get(key)
        # A newer attempt of the project running here wins; anything else this
        # runner holds for the project is older, or an earlier owner of this very
        # attempt (which this delivery took over: its begin succeeded), and stops
        # counting as current, as it does after a new submit.
        newer = (
            current is not None
            and not current.done()
            and (current.attempt_id or 0) > job.attempt.id
        )
        if not newer and not closed:
            registry.make_current(job)
    if closed:
        # It began the attempt (and keeps it alive) but will not render here: end it, or
        # a heartbeat that outlives shutdown(wait=False) would renew it for ever.
        reason = "the runner shut down before the render started"
        end_failed(
            state,
            job,
            RenderInterruptedError(
                project_key=job.project_key, reason=reason, untouched=job._untouched()
            ),
        )
        state.check_open()
    if newer:
        end_unsaved(state, job, registry.superseded_error(job))
        return False
    return True


def handed_off(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> None:
    """Let ``job`` run in another process (what :meth:`RenderJob.hand_off` does)."""
    if state.ledger is None or job.attempt is None:
        msg = (
            "only a job recorded in a ledger can run in another process: create the "
            "RenderRunner with ledger=Ledger(store) and loader=store.loader(Project)"
        )
        raise TypeError(msg)
    if not job._claim():
        msg = f"{job!r} already started or ended in this process; it cannot be handed off"
        raise RuntimeError(msg)
    let_go(state, job)  # its worker renews it (under its own token) once it has begun
    job._away = state.ledger
    telemetry.handed_off(job)
    # Which task queue holds it, so that a worker of that queue can send it again.
    route = getattr(state.executor, "route", None)
    try:
        # A task id the start did not know (Django's tasks make theirs when queued).
        learned = job.task_id if job.task_id != job.attempt.task_id else None
        executor = route if isinstance(route, str) else None
        try:
            # The app's task_id_field gets it too, while the attempt is live.
            state.ledger.hand_off(
                job.attempt, executor=executor, task_id=learned, lifecycle=job._lifecycle
            )
        except ValueError:  # an id the app's column cannot hold: the attempt keeps it
            logger.warning("attempt %s: task id not written", job.attempt.id, exc_info=True)
            state.ledger.hand_off(job.attempt, executor=executor, task_id=learned)
    except Exception:  # the spec is sent: a worker renders it regardless
        logger.warning(
            "could not give attempt %s its queue timeout; it keeps the lease until a "
            "worker begins it",
            job.attempt.id,
            exc_info=True,
        )
