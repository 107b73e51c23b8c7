"""RenderRunner: starts renders under the lifecycle's guard and owns the video file's fate.

This module is the facade users import; each of its methods reads as one step of the flow
and delegates to the module that owns that concern. One render, from ``submit`` to the
published file, in the order to read them:

1. ``_starting.py``: make the job, register it around the guarded start, give it to the
   executor (and ``execute``'s loading of a job another process submitted).
2. ``_owning.py``: the registry of each project's current job, and running the job this
   runner owns: claim it, begin its attempt in the ledger, render it in the adapter's scope.
3. ``_publishing.py``: the file half of a render: the temporary file, the renderer, the
   durable file moved over the final video.
4. ``_ending.py``: saving COMPLETED or FAILED, retrying a failing store, ending the job.

Around that flow:

- ``_reading.py``: the progress and the failure of a project's current attempt.
- ``_recovering.py``: failing what a dead process left PROCESSING, cleaning up after it.
- ``_stopping.py``: cancel, ``stop_jobs`` and ``shutdown``.
- ``_job.py``: :class:`RenderJob`, the attempt carried through the flow.
- ``_state.py``: what every concern of one runner shares; ``_locks.py``: its per-project
  key locks; ``_heartbeat.py``: the lease renewals of its live attempts.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Generic

from renderstate._jobs import JobSpec
from renderstate._layout import StatusValues
from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import TransitionRecord
from renderstate.exceptions import RenderInterruptedError, RenderOutputError
from renderstate.ledger import AsyncLedger, Ledger, Swept
from renderstate.runner import (
    _delivering,
    _owning,
    _reading,
    _recovering,
    _requeuing,
    _starting,
    _stopping,
)
from renderstate.runner._heartbeat import Heartbeat
from renderstate.runner._immediate import RUNNERS
from renderstate.runner._job import RenderJob
from renderstate.runner._state import RunnerState
from renderstate.runner.executors import ThreadExecutor
from renderstate.runner.progress import DEFAULT_INTERVAL, Progress
from renderstate.typing import (
    Adapter,
    AsyncAdapter,
    Executor,
    Observer,
    ProjectLoader,
    ProjectT,
    Renderer,
)

__all__ = ["RenderInterruptedError", "RenderJob", "RenderOutputError", "RenderRunner"]


class RenderRunner(Generic[ProjectT]):
    """Runs renders in the background and drives each project's lifecycle around them.

    :meth:`submit` starts the render under the lifecycle's guard (a second start is
    refused at once with :class:`~renderstate.RenderConflictError`), then an executor
    calls ``renderer(project, target, progress)``. ``target`` is a temporary ``.mp4``
    next to the final file; only a complete, fsynced file replaces
    ``<media_root>/projects/<key>/final.mp4`` (one atomic rename), after which the
    project is COMPLETED with that path. Whatever else happens, exceptions and
    interrupts included, the temporary file is removed, the previous video is left as
    it was, and the project is FAILED.

    Args:
        adapter: Persists the project's transitions.
        renderer: Writes the video; see :class:`~renderstate.typing.Renderer`.
        media_root: The directory the stored output paths are relative to.
        max_workers: How many renders the default thread executor runs at once; the
            rest wait in a queue. Ignored when ``executor`` is given.
        executor: Runs the jobs; defaults to a
            :class:`~renderstate.runner.executors.ThreadExecutor`.
        status_field: Passed to each :class:`~renderstate.ProjectLifecycle`.
        output_field: Passed to each :class:`~renderstate.ProjectLifecycle`: the model's
            column for the video's path, or ``None`` for a model without one; the
            ledger's completed attempts then keep it (see :meth:`video`).
        values: Passed to each :class:`~renderstate.ProjectLifecycle`.
        observers: Passed to each :class:`~renderstate.ProjectLifecycle`.
        error_field: Passed to each :class:`~renderstate.ProjectLifecycle`: the app's own
            column for why the last render failed (a failure, a cancel and a recovery
            write it; a start empties it).
        task_id_field: Passed to each :class:`~renderstate.ProjectLifecycle`: the app's
            own column for the task system's id, which an executor that sends jobs to a
            task queue (Celery) gives each start; emptied for a render without one.
        output_path_for: Returns a project's URL-relative video path; defaults to
            ``"projects/<key>/final.mp4"``.
        find_processing: Loads the projects stored as PROCESSING, for
            :meth:`recover_interrupted` called without arguments (for example
            ``lambda: Project.objects.filter(status="PROCESSING")``). The adapter
            contract has no query of its own, so the runner cannot find them alone.
        persist_timeout: For how many seconds saving COMPLETED or FAILED is retried
            (with exponential backoff, logging each failure) before the runner gives up.
        progress_interval: Minimum seconds between two progress updates within a phase.
        ledger: The attempt ledger (see "Running several processes"). With one, each
            submit records an attempt in the same transaction as the start, the render's
            end (and the move of its video into place) is fenced by the attempt's id, a
            heartbeat thread renews the leases of this runner's live attempts and writes
            their progress, :meth:`progress` reads any process's attempt, and
            :meth:`recover_interrupted` is safe at any time in any process. An
            :class:`~renderstate.ledger.AsyncLedger` serves :meth:`asubmit` on the event
            loop, and its threads' twin (:attr:`AsyncLedger.threads
            <renderstate.ledger.AsyncLedger.threads>`) the render and heartbeat threads.
        loader: Loads a project by the key text the ledger stores (``store.loader(Model)``);
            needed by :meth:`recover_interrupted` with a ledger.
        async_adapter: The :class:`~renderstate.typing.AsyncAdapter` that :meth:`asubmit`
            awaits the guarded start through
            (:class:`~renderstate.adapters.sqlalchemy.AsyncSQLAlchemyAdapter`,
            :class:`~renderstate.adapters.django.AsyncDjangoAdapter`), over the same
            database as ``adapter``, which still records the end of each render.
        immediate: Whether each render runs in the caller's thread, before
            :meth:`submit` returns (no executor, no background thread, no heartbeat): for
            an app's test suite, say ``immediate=settings.RENDERSTATE_IMMEDIATE``. By
            default the environment variable ``RENDERSTATE_IMMEDIATE`` decides (``1`` or
            ``0``), and an executor that runs jobs in the caller (Celery with
            ``task_always_eager``) turns it on; :func:`renderstate.testing.immediate_renders`
            overrides all of these. See "Tests of an app".

    Raises:
        TypeError: ``async_adapter`` is not an async adapter, or the executor needs a
            ledger (``CeleryExecutor(app, task=...)``) and there is none.
        ValueError: ``output_field=None`` without a ``ledger``: nothing would keep the
            video's path.
    """

    def __init__(
        self,
        adapter: Adapter[ProjectT],
        renderer: Renderer[ProjectT],
        *,
        media_root: str | os.PathLike[str],
        max_workers: int = 2,
        executor: Executor | None = None,
        status_field: str = "status",
        output_field: str | None = "output_path",
        values: StatusValues | None = None,
        observers: Iterable[Observer] = (),
        output_path_for: Callable[[ProjectT], str] | None = None,
        find_processing: Callable[[], Iterable[ProjectT]] | None = None,
        persist_timeout: float = 30.0,
        progress_interval: float = DEFAULT_INTERVAL,
        ledger: Ledger | AsyncLedger | None = None,
        loader: ProjectLoader[ProjectT] | None = None,
        async_adapter: AsyncAdapter[ProjectT] | None = None,
        immediate: bool | None = None,
        error_field: str | None = None,
        task_id_field: str | None = None,
    ) -> None:
        if async_adapter is not None and not inspect.iscoroutinefunction(
            getattr(async_adapter, "apply", None)
        ):
            msg = (
                f"async_adapter= needs an async adapter, and {type(async_adapter).__name__} is "
                "a sync one (pass it as the first argument): give AsyncSQLAlchemyAdapter, "
                "AsyncDjangoAdapter or AsyncMemoryAdapter"
            )
            raise TypeError(msg)
        async_ledger = ledger if isinstance(ledger, AsyncLedger) else None
        if async_ledger is not None:
            ledger = async_ledger.threads
        assert not isinstance(ledger, AsyncLedger)
        if output_field is None and ledger is None:
            msg = (
                "output_field=None says the model has no column for the video's path, and "
                "without a ledger nothing else keeps it: pass ledger=Ledger(store) (with "
                "loader=store.loader(Project)), whose completed attempts record it, or "
                "output_field='...' naming the model's column"
            )
            raise ValueError(msg)
        if ledger is None and getattr(executor, "needs_ledger", False):
            # Refused before any start: the first submit() would fail its project.
            msg = (
                f"{executor!r} sends each job to a task that finds its attempt in the "
                "ledger: create the RenderRunner with ledger=Ledger(store) and "
                "loader=store.loader(Project)"
            )
            raise TypeError(msg)
        heartbeat = (
            None if ledger is None else Heartbeat(ledger, lambda: _owning.job_scope(adapter))
        )
        self._state = RunnerState(
            adapter=adapter,
            async_adapter=async_adapter,
            ledger=ledger,
            async_ledger=async_ledger,
            loader=loader,
            heartbeat=heartbeat,
            renderer=renderer,
            media_root=Path(media_root),
            executor=ThreadExecutor(max_workers) if executor is None else executor,
            options={
                "status_field": status_field,
                "output_field": output_field,
                "values": values,
                "error_field": error_field,
                "task_id_field": task_id_field,
            },
            observers=tuple(observers),
            output_path_for=output_path_for,
            find_processing=find_processing,
            persist_timeout=persist_timeout,
            progress_interval=progress_interval,
            registry=_owning.Registry(),
            immediate=immediate,
        )
        RUNNERS.add(self)

    def __repr__(self) -> str:
        state = self._state
        return (
            f"<RenderRunner media_root={str(state.media_root)!r} jobs={len(state.registry.jobs)}>"
        )

    def __enter__(self) -> RenderRunner[ProjectT]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Leaving the block on an exception (Ctrl-C included) cancels the queued renders
        # rather than running them; running renders always finish.
        self.shutdown(wait=True, cancel_pending=exc_type is not None)

    @property
    def media_root(self) -> Path:
        """The directory the stored output paths are relative to."""
        return self._state.media_root

    @property
    def ledger(self) -> Ledger | None:
        """The attempt ledger this runner records and fences its attempts in, if any."""
        return self._state.ledger

    def lifecycle(self, project: ProjectT) -> ProjectLifecycle[ProjectT]:
        """Return a lifecycle for ``project`` with this runner's adapter and options."""
        return self._state.lifecycle(project)

    def output_path(self, project: ProjectT) -> str:
        """Return the URL-relative path a successful render of ``project`` is stored at.

        Raises:
            ProjectNotFoundError: the project has no primary key yet.
            InvalidOutputPathError: ``output_path_for`` returned an unusable path.
        """
        return self._state.output_path(project)

    def file_path(self, project: ProjectT) -> Path:
        """Return where a successful render of ``project`` is written on disk."""
        return self._state.file_for(self.output_path(project))

    # ------------------------------------------------------------------ the flow

    def submit(self, project: ProjectT, *, actor: str | None = None) -> RenderJob[ProjectT]:
        """Start rendering ``project`` and return at once; the render runs in the executor.

        The project is PROCESSING when this returns (the start is the guarded
        ``start_render()``), so a web endpoint can answer 202 with the job's progress.
        With a ledger, the attempt is recorded in the same transaction (``actor``, who
        asked, is kept in its record). In async code, await :meth:`asubmit`.

        Raises:
            RenderConflictError: a render of this project is already running (HTTP 409).
            ProjectNotFoundError: the project is not stored.
            InvalidOutputPathError: ``output_path_for`` returned an unusable path.
            RuntimeError: the runner has been shut down.
        """
        state = self._state
        state.check_open()
        job = _starting.new_job(state, project, actor)
        with state.key_locks.hold(job.project_key), _starting.registered(state, job):
            started = _starting.start(state, job)
        return _starting.launch(state, job, started)

    async def asubmit(self, project: ProjectT, *, actor: str | None = None) -> RenderJob[ProjectT]:
        """Start rendering ``project`` without blocking the event loop; see :meth:`submit`.

        The guarded start is awaited through the runner's ``async_adapter`` (one
        conditional ``UPDATE`` on the loop's own connection); then the job is registered
        and scheduled exactly as :meth:`submit` does, and the render runs in the executor
        with the sync adapter. Starts of one project in this runner, sync or async, never
        interleave, and a start waiting for another one waits without blocking the loop.

        With a ledger, the start and the attempt's record are one transaction in the
        ledger's store (the ``async_adapter`` is then not needed, nor used): with an
        :class:`~renderstate.ledger.AsyncLedger` it is awaited on the event loop, with a
        :class:`~renderstate.ledger.Ledger` it runs in a worker thread. Observers are
        told, and the executor is handed the job, in a worker thread.

        Cancelling the caller does not abandon a start under way: once the start has been
        sent, it runs to its end, and a job that won is registered and scheduled, before
        the cancellation goes on. A project is never left PROCESSING without its job.

        Raises:
            TypeError: the runner has neither an ``async_adapter`` nor a ledger.
            RenderConflictError: a render of this project is already running (HTTP 409).
            ProjectNotFoundError: the project is not stored.
            InvalidOutputPathError: ``output_path_for`` returned an unusable path.
            RuntimeError: the runner has been shut down.
        """
        return await _starting.asubmit(self._state, project, actor)

    def execute(self, spec: JobSpec) -> RenderJob[ProjectT]:
        """Run a job that a runner in another process submitted, here, to its end.

        For the worker of a task system (Celery, RQ, your own queue) that received
        ``job.spec.to_dict()`` from the submitting process's executor::

            job = runner.execute(JobSpec.from_dict(data))

        It loads the project fresh with the runner's ``loader``, reads the attempt the
        spec names from the ledger, and runs it exactly as a worker thread would: the
        attempt begins (in this process, with a lease the heartbeat renews), the renderer
        writes a temporary file beside the final one, and the fenced completion moves it
        into place; scratch files are removed whatever happens. A spec whose attempt is
        no longer live (recovered, superseded, already finished: a redelivered task)
        renders nothing and saves nothing: the job returned has ended, its
        :attr:`~RenderJob.error` an :class:`~renderstate.AttemptSupersededError`. A spec
        whose attempt another worker is rendering, and keeps alive, is a duplicate
        delivery: it renders nothing either, its error an
        :class:`~renderstate.AttemptOwnedError` (see :meth:`Ledger.begin
        <renderstate.ledger.Ledger.begin>`). An attempt whose start has not committed yet
        (sent from inside the sender's transaction) is waited for, up to a lease.

        Returns:
            The job, ended (``done()`` is true); its :attr:`~RenderJob.status` is what
            it left the project in.

        Raises:
            TypeError: the runner has no ledger or no loader (a job from another
                process is only safe fenced by its attempt).
            ValueError: the spec names no attempt, or another kind of project than the
                loader loads, or an attempt of another project.
            ProjectNotFoundError: the project no longer exists (its attempt stays live
                until its lease expires and recovery marks it interrupted).
            RuntimeError: the runner has been shut down.
        """
        self._state.check_open()
        job: RenderJob[ProjectT] = _starting.delivered(self._state, spec)
        # Begun before it is registered: a duplicate delivery (refused) or a begin that
        # failed never takes the place of the attempt's owner in this runner. The
        # heartbeat starts once the attempt has begun here: renewing it before would keep
        # alive the lease of a worker that died, which this delivery must take over.
        if job.done() or not _owning.begin_delivered(self._state, job):
            return job
        if not _owning.register_delivered(self._state, job):
            return job
        job.run()
        return job

    def run_attempt(self, key: object) -> RenderJob[ProjectT] | None:
        """Render the project's started attempt in the caller's thread: the app's own task body.

        For an app whose own task (a function its thread task manager runs, its Celery
        task) is what renders, called with the project's key, as the app always sent it::

            def render_task_function(project_id, task_id):  # the app's, still what runs
                get_runner().run_attempt(project_id)

        A job this process started and handed to the app's task
        (:class:`~renderstate.runner.executors.AppTaskExecutor`, or
        ``CeleryExecutor(app, task=...)`` in eager mode) runs here, to its end, with every
        guarantee of a job run by the runner's own threads. With a ledger, a task in
        another process finds the project's newest attempt there and runs it as
        :meth:`execute` runs a spec (begun here, fenced, its lease renewed, taken over if
        its worker died; refused if another live worker renders it).

        Returns:
            The job, ended; ``None`` when there was nothing to render: the attempt had
            ended (a second call, a cancelled job), or the project has no attempt.

        Raises:
            TypeError: nothing of this process waits for the task and the runner has no
                ledger and loader to find the attempt elsewhere.
            RuntimeError: the runner has been shut down.
        """
        self._state.check_open()
        return _delivering.deliver_key(self, key)[1]

    # ------------------------------------------------------------------ reading a render

    def progress(self, project: ProjectT) -> Progress | None:
        """Return the latest progress of the project's current attempt, if it has one.

        Without a ledger, that is the last attempt in this runner. With a ledger, it is the
        project's newest attempt in any process: read from this runner's own job while it
        is that attempt (fresher), else from the ledger (written about once a second).
        """
        return _reading.progress(self._state, project)

    def video(self, project: ProjectT) -> str | None:
        """Return the URL-relative path of the project's current video, if it has one.

        The model's ``output_field`` as loaded; for a model without one
        (``output_field=None``), the ``output_path`` of the project's newest completed
        attempt in the ledger, from any process. ``None`` while no render has completed
        (a re-render keeps the previous video until it completes). With
        :meth:`progress` and :meth:`error`, what :func:`renderstate.web.status_body`
        reads.
        """
        return _reading.video(self._state, project)

    def error(self, project: ProjectT) -> str | None:
        """Return why the project's current attempt failed, as one line, if it did.

        ``"RuntimeError: disk full"`` (the exception's type and message), or ``None`` while
        that attempt runs, after it succeeded, or when no attempt is known. The reason is
        known before the project is saved FAILED (a reader who loaded the FAILED row never
        gets ``None`` because the job has not quite ended). As for
        :meth:`progress`, the attempt is this runner's last one, or with a ledger the
        project's newest one in any process. With :meth:`progress` this makes the runner a
        :class:`~renderstate.typing.ProgressSource`.

        A project that :meth:`recover_interrupted` failed has that reason too
        (``"RenderInterruptedError: Project 42 was not rendered to the end: ..."``): with a
        ledger it is the attempt's recorded one, in any process; without one this runner
        remembers it until it renders the project again (a restart forgets it).
        """
        return _reading.error(self._state, project)

    def job(self, project: ProjectT) -> RenderJob[ProjectT] | None:
        """Return the project's last job in this runner, if any."""
        return self._state.registry.jobs.get(self._state.adapter.project_key(project))

    # ------------------------------------------------------------------ around the flow

    def cancel(self, project: ProjectT, reason: str | None = None) -> bool:
        """Cancel the project's render, wherever it runs; see :meth:`RenderJob.cancel`.

        A render of this runner stops at its next progress report. With a ledger, a
        render in another process (another web server, a Celery worker) is asked through
        the ledger (:meth:`Ledger.cancel <renderstate.ledger.Ledger.cancel>`): one that
        waits in a task queue is failed at once, a running one stops at its owner's next
        heartbeat. Either way it ends FAILED as cancelled, its temporary files removed and
        the previous video untouched, and the answer is the same in every process.

        Returns:
            ``True`` if the project's current render will end FAILED as cancelled;
            ``False`` if there is nothing to cancel: no render of the project is running
            (here, or with a ledger anywhere), or its video is already being published.
        """
        return _stopping.cancel_project(self._state, project, reason)

    def stop_jobs(
        self, *, reason: str = "the runner stopped its jobs", timeout: float | None = None
    ) -> int:
        """Cancel every unfinished job of this runner and wait until they have ended.

        Queued jobs end at once; running ones at their next progress report; a job whose
        save is being retried gives up (its project stays PROCESSING for recovery). The
        runner stays open. For tests: no job outlives the test (see
        :func:`renderstate.testing.stopping_jobs`).

        Returns:
            How many jobs were cancelled.

        Raises:
            TimeoutError: a job had not ended after ``timeout`` seconds (a renderer that
                never reports progress).
        """
        return _stopping.stop_jobs(self._state, reason, timeout)

    def recover_interrupted(
        self, projects: Iterable[ProjectT] | None = None, *, requeue: bool = False
    ) -> list[TransitionRecord]:
        """Fail the projects that a dead process left PROCESSING, and clean up after it.

        With a ledger it is set-based and safe at any time, in any process, while others
        render: it fails exactly the PROCESSING projects whose current attempt's lease has
        expired (see :meth:`renderstate.ledger.Ledger.recover`), removes the temporary
        files of those that ran on this machine, and with ``requeue=True`` submits each
        failed project again. ``projects`` must then be left out: the ledger finds them.

        Without a ledger, what follows holds.

        ``projects`` are the candidates, loaded with status PROCESSING; without them the
        runner calls its ``find_processing`` loader.

        Call it at process start in a single-process deployment, with the projects loaded
        with status PROCESSING: no render can be running for them, since this process has
        not started any yet. Each one moves to FAILED through the guarded ``fail()``, so a
        project that completed meanwhile is left alone, and the temporary files its render
        left beside the final video are removed. Projects this runner is rendering are
        skipped.

        It is unsafe while another process may be rendering: that process's projects are
        PROCESSING too, and would be failed under it (its ``complete()`` is then refused
        and its video is not recorded).

        Returns:
            The records of the projects moved to FAILED.

        Raises:
            TypeError: neither ``projects`` nor the runner's ``find_processing`` is given;
                with a ledger, ``projects`` is given or the runner has no ``loader``.
        """
        return _recovering.recover_interrupted(
            self._state, projects, requeue=requeue, submit=self.submit
        )

    def sweep(self, executor: str, send: Callable[[JobSpec, str], None]) -> list[Swept]:
        """Requeue the renders whose worker is gone, through the task queue that held them.

        What each worker of a task queue runs every so often (the Celery task's
        ``register()`` runs it every half lease in each worker process): set-based and safe
        at any time in any process, see :meth:`Ledger.sweep
        <renderstate.ledger.Ledger.sweep>`. An attempt that was handed to ``executor``'s
        queue and whose owner died (its lease expired, or its process on this machine is
        gone) goes back to queued, the temporary files its owner left here are removed,
        and ``send(spec, executor)`` sends it again (``executor`` as the attempt recorded
        it, with its queue: ``"celery:renders"``); one that no task queue holds (its
        process's own executor ran it) is failed with its project, the reason recorded,
        as :meth:`recover_interrupted` fails it.

        Raises:
            TypeError: the runner has no ledger or no loader.
        """
        return _requeuing.sweep(self._state, executor, send)

    def hand_back(
        self,
        reason: str = "the worker is shutting down",
        *,
        cannot_finish_within: float | None = None,
    ) -> int:
        """Stop this runner's task-queue renders at their next frame and queue them again.

        For a worker's warm shutdown. Each render this runner runs for a task queue (begun
        by :meth:`execute`: another process sent it) stops at its next progress report;
        its temporary files are removed, the previous video is untouched, and its attempt
        goes back to queued (:meth:`Ledger.hand_back <renderstate.ledger.Ledger.hand_back>`),
        the project still PROCESSING: its job ends with a
        :class:`~renderstate.RenderHandedBackError` and saves nothing. The caller then sends
        it again (the Celery task does), or leaves it to a worker's next sweep, a lease
        later. A render whose attempt someone asked to cancel ends cancelled instead.

        Args:
            reason: Kept in the job's error.
            cannot_finish_within: Only the renders whose estimated time left is longer than
                this many seconds (a render without an estimate yet is left running).

        Returns:
            How many renders were asked.
        """
        return _requeuing.hand_back(self._state, reason, cannot_finish_within)

    def shutdown(
        self, wait: bool = True, *, cancel_pending: bool = False, cancel_running: bool = False
    ) -> None:
        """Accept no more renders and stop the executor.

        Args:
            wait: Block until the running (and, unless cancelled, the queued) renders end.
            cancel_pending: Do not start the queued renders; fail their projects instead.
                A save being retried gives up too (the project stays PROCESSING for
                recovery): after this, no job of this runner touches the database again
                once the running ones have ended.
            cancel_running: Also cancel the running renders (cooperatively, at their next
                progress report; see :meth:`RenderJob.cancel`), so that nothing outlives
                the call with ``wait``: what a test's tear-down needs before its database
                goes away.
        """
        _stopping.shutdown(
            self._state, wait, cancel_pending=cancel_pending, cancel_running=cancel_running
        )

    # ------------------------------------------------------------------ for tests
    # Tests replace the renderer and the retry's sleep of a runner they built, and reach
    # its ledger, loader and heartbeat: these read and write the shared state.

    @property
    def _ledger(self) -> Ledger | None:
        return self._state.ledger

    @property
    def _loader(self) -> ProjectLoader[ProjectT] | None:
        return self._state.loader

    @property
    def _heartbeat(self) -> Heartbeat | None:
        return self._state.heartbeat

    @property
    def _renderer(self) -> Renderer[ProjectT]:
        return self._state.renderer

    @_renderer.setter
    def _renderer(self, renderer: Renderer[ProjectT]) -> None:
        self._state.renderer = renderer

    @property
    def _sleep(self) -> Callable[[float], None]:
        return self._state.sleep

    @_sleep.setter
    def _sleep(self, sleep: Callable[[float], None]) -> None:
        self._state.sleep = sleep
