"""Starting: make a job, start its project under the lifecycle's guard, hand it on.

The first step of the flow. ``submit`` and ``asubmit`` make a job, register it around the
guarded start (recording its attempt in the ledger in the same transaction), then tell the
observers and give the job to the executor. ``execute`` loads a job another process
submitted, from the attempt its spec names.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from renderstate import telemetry
from renderstate._jobs import JobSpec
from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import TransitionRecord
from renderstate.exceptions import AttemptSupersededError, ProjectNotFoundError
from renderstate.runner._ending import end_failed, end_unsaved
from renderstate.runner._holding import keep_alive
from renderstate.runner._immediate import is_immediate
from renderstate.runner._job import RenderJob
from renderstate.runner._journal import settle_before_start
from renderstate.runner._owning import handed_off, run
from renderstate.runner._state import RunnerState
from renderstate.runner._stopping import cancel_job, schedule
from renderstate.runner.progress import ProgressTracker
from renderstate.typing import ProjectT

if TYPE_CHECKING:
    import asyncio

    from renderstate.ledger import AsyncLedger

logger = logging.getLogger("renderstate.runner")


def new_job(
    state: RunnerState[ProjectT], project: ProjectT, actor: str | None
) -> RenderJob[ProjectT]:
    """A job for a new render of ``project``, before its start.

    Raises:
        ValueError: ``RENDERSTATE_IMMEDIATE`` is neither a yes nor a no (nothing written).
    """
    immediate = is_immediate(state.immediate, state.executor)
    if immediate:
        _refuse_inside_a_transaction(state, project)
    job = _job(state, project, state.output_path(project), actor)
    job._immediate = immediate
    return job


def _refuse_inside_a_transaction(state: RunnerState[ProjectT], project: ProjectT) -> None:
    """Refuse an immediate render inside the caller's own transaction (not a test's).

    The render would publish the new video over the final file before that transaction
    commits; a rollback would then leave the row's previous state (COMPLETED, the same
    URL) pointing at the new video, the previous one lost for good.
    """
    inside = getattr(state.adapter, "in_callers_transaction", None)
    if inside is None or not inside(project):
        return
    msg = (
        "submit() would render immediately (immediate mode, RENDERSTATE_IMMEDIATE or "
        "Celery's task_always_eager) inside the caller's database transaction "
        "(transaction.atomic(), ATOMIC_REQUESTS): the new video would replace the final "
        "file before that transaction commits, and a rollback would leave the project's "
        "previous state pointing at it, the previous video lost. Submit once the "
        "transaction has committed, e.g. transaction.on_commit(lambda: "
        "runner.submit(project)), or render in the executor (immediate=False). Inside a "
        "Django TestCase immediate renders are allowed: its transaction is the test's."
    )
    raise RuntimeError(msg)


def _job(
    state: RunnerState[ProjectT], project: ProjectT, output_path: str, actor: str | None
) -> RenderJob[ProjectT]:
    return RenderJob(
        project,
        state.quiet_lifecycle(project),
        output_path,
        ProgressTracker(interval=state.progress_interval, output_path=output_path),
        runner=functools.partial(run, state),
        hand_off=functools.partial(handed_off, state),
        cancel=functools.partial(cancel_job, state),
        final=state.file_for(output_path),
        actor=actor,
    )


@contextlib.contextmanager
def registered(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> Iterator[None]:
    """Register ``job`` around its start; the caller holds the project's key lock."""
    key = job.project_key
    registry = state.registry
    with registry.lock:
        state.check_open()  # again: shutdown() may have run meanwhile
        previous = registry.jobs.get(key)
        # Publish the new attempt before it starts, so nobody reading progress sees
        # the last attempt's figures on a PROCESSING project. While a job of this
        # project is unfinished here, keep showing it until the start succeeds:
        # usually the start is refused (409) and that job is still the story.
        register_first = previous is None or previous.done()
        if register_first:
            registry.jobs[key] = job
            job._registered = True
    try:
        job._trail = telemetry.submitted(job)
        yield
    except BaseException as exc:
        telemetry.refused(job, exc)
        if register_first:
            with registry.lock:
                job._registered = False
                if previous is None:
                    del registry.jobs[key]
                else:
                    registry.jobs[key] = previous
        raise
    with registry.lock:
        # From here on an unfinished previous job is superseded: it replaces no
        # video and saves nothing. Re-insert at the end: the dict is ordered
        # oldest attempt first.
        registry.make_current(job)


def _new_task_id(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> str | None:
    """The id the executor will send ``job`` under, made before its start (or ``None``).

    An immediate render is sent nowhere, so it has none, except where the executor itself
    runs tasks in the caller (Celery's ``task_always_eager``, whose ``apply_async`` gives
    an id too): an app's tests then see the id column filled as in production.
    """
    make = getattr(state.executor, "new_task_id", None)
    if make is None:
        return None
    if job._immediate and not getattr(state.executor, "runs_in_caller", False):
        return None
    task_id: str | None = make()
    job.task_id = task_id
    return task_id


def start(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> TransitionRecord:
    """The guarded start, through the sync adapter (and the ledger if there is one)."""
    task_id = _new_task_id(state, job)
    if state.ledger is None:
        settle_before_start(state, job)
        return job._lifecycle.start_render(task_id=task_id)
    started, job.attempt = state.ledger.start(
        job._lifecycle,
        output_path=job.output_path,
        actor=job.actor,
        owner=job.owner,
        task_id=task_id,
        traceparent=telemetry.traceparent(job),
    )
    keep_alive(state, job)
    return started


async def astart(
    state: RunnerState[ProjectT], job: RenderJob[ProjectT], ledger: AsyncLedger
) -> TransitionRecord:
    """The guarded start and its attempt, awaited on the event loop through the async ledger."""
    started, job.attempt = await ledger.start(
        job._lifecycle,
        output_path=job.output_path,
        actor=job.actor,
        owner=job.owner,
        task_id=_new_task_id(state, job),
        traceparent=telemetry.traceparent(job),
    )
    keep_alive(state, job)
    return started


def launch(
    state: RunnerState[ProjectT], job: RenderJob[ProjectT], started: TransitionRecord
) -> RenderJob[ProjectT]:
    """Tell the observers and hand the started job to the executor."""
    telemetry.started(job)
    state.notify(started)
    # An executor whose eager mode runs the app's own task in the caller (Celery's
    # task_always_eager with CeleryExecutor(task=...)) is still handed an immediate job:
    # that task renders it, here.
    if job._immediate and not getattr(state.executor, "schedules_immediate", False):
        job.run()  # handles its own errors; an interrupt propagates after the FAILED save
        return job
    try:
        schedule(state, job)
    except BaseException as exc:
        # Scheduling failed (executor closed, broker down): nothing will run the job,
        # so fail the project now rather than leave it PROCESSING.
        if job._claim():
            end_failed(state, job, exc)
        raise
    return job


async def asubmit(
    state: RunnerState[ProjectT], project: ProjectT, actor: str | None
) -> RenderJob[ProjectT]:
    """Start ``project`` without blocking the event loop; see :meth:`RenderRunner.asubmit`."""
    import asyncio  # noqa: PLC0415 - only async callers pay for importing asyncio

    if state.async_adapter is None and state.ledger is None:
        msg = (
            "asubmit() needs an async adapter for its guarded start: create the "
            "RenderRunner with async_adapter=AsyncSQLAlchemyAdapter(async_sessionmaker) "
            "(or AsyncDjangoAdapter()); with an ORM that has none (Peewee), call "
            "`await asyncio.to_thread(runner.submit, project)` instead"
        )
        raise TypeError(msg)
    state.check_open()
    job = new_job(state, project, actor)
    sent = asyncio.Event()
    submitting = asyncio.ensure_future(_asubmit(state, job, sent))
    try:
        return await asyncio.shield(submitting)
    except asyncio.CancelledError:
        if not sent.is_set():
            submitting.cancel()  # still waiting for its turn: nothing was written
            raise
        while not submitting.done():
            # Swallowed until the start has ended; raised again below.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({submitting})
        if not submitting.cancelled():
            submitting.exception()  # retrieved: a refused start is no news here
        raise


async def _asubmit(
    state: RunnerState[ProjectT], job: RenderJob[ProjectT], sent: asyncio.Event
) -> RenderJob[ProjectT]:
    import asyncio  # noqa: PLC0415 - only async callers pay for importing asyncio

    async with state.key_locks.ahold(job.project_key):
        with registered(state, job):
            sent.set()
            if state.async_ledger is not None:
                started = await astart(state, job, state.async_ledger)
            elif state.ledger is not None:
                started = await asyncio.to_thread(start, state, job)
            else:
                assert state.async_adapter is not None
                await asyncio.to_thread(settle_before_start, state, job)
                lifecycle = ProjectLifecycle(job.project, state.async_adapter, **state.options)
                started = await lifecycle.astart_render(task_id=_new_task_id(state, job))
    return await asyncio.to_thread(launch, state, job, started)


def delivered(state: RunnerState[ProjectT], spec: JobSpec) -> RenderJob[ProjectT]:
    """Check ``spec`` and load its project and attempt into a job.

    The job has already ended, unsaved, when its attempt is no longer live.
    """
    ledger, loader = state.ledger, state.loader
    if ledger is None or loader is None:
        msg = (
            "execute() needs a runner with a ledger and a loader (RenderRunner(..., "
            "ledger=Ledger(store), loader=store.loader(Project))): a job from another "
            "process is only safe fenced by its attempt"
        )
        raise TypeError(msg)
    if spec.attempt_id is None or spec.scope is None:
        msg = (
            f"this job spec names no attempt ({spec!r}); only a job submitted by a "
            "runner with a ledger can run in another process"
        )
        raise ValueError(msg)
    if spec.scope != loader.scope:
        msg = (
            f"this job spec is for {spec.scope!r} projects but the runner's loader "
            f"loads {loader.scope!r}: give each kind of project its own runner"
        )
        raise ValueError(msg)
    # A job sent from inside the sender's transaction may arrive before its start
    # committed: wait for the attempt as begin() would, up to a lease.
    attempt = ledger.get(spec.attempt_id, wait=True)
    if attempt is None or (attempt.scope, attempt.project_key) != (
        spec.scope,
        spec.project_key,
    ):
        msg = (
            f"attempt {spec.attempt_id} is not an attempt of {spec.scope} "
            f"{spec.project_key} in this ledger; is the worker using the sender's database?"
        )
        raise ValueError(msg)
    project = loader(spec.project_key)
    if project is None:
        raise ProjectNotFoundError(project_key=spec.project_key)
    job = _job(state, project, attempt.output_path or spec.output_path, attempt.actor)
    job.attempt = attempt
    job._delivered = True
    job.task_id = attempt.task_id
    job._trail = telemetry.delivered(job, spec)
    if not attempt.active:
        logger.info("attempt %s is already %s: nothing to render", attempt.id, attempt.state)
        stale = AttemptSupersededError(
            project_key=job.project_key, attempt_id=attempt.id, state=attempt.state.value
        )
        end_unsaved(state, job, stale)
    return job
