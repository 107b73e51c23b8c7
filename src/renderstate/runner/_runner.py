"""RenderRunner: starts renders under the lifecycle's guard and owns the video file's fate."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic

from renderstate._attempts import Attempt, AttemptState, encode_key
from renderstate._jobs import JobSpec
from renderstate._lifecycle import ProjectLifecycle, notify_observers, validate_output_path
from renderstate._records import TransitionRecord
from renderstate._status import Status
from renderstate.exceptions import (
    AttemptOwnedError,
    AttemptSupersededError,
    InvalidTransitionError,
    ProjectNotFoundError,
    RenderCancelledError,
    RenderInterruptedError,
    RenderOutputError,
    RenderStateError,
)
from renderstate.files import (
    create_temporary,
    discard,
    make_durable,
    publish,
    remove_temporary_files,
    sync_directory,
)
from renderstate.ledger import Ledger
from renderstate.recovery import fail_interrupted
from renderstate.runner._heartbeat import Heartbeat
from renderstate.runner.executors import ThreadExecutor
from renderstate.runner.progress import (
    DEFAULT_INTERVAL,
    Phase,
    Progress,
    ProgressTracker,
    progress_of,
)
from renderstate.typing import (
    Adapter,
    AsyncAdapter,
    Executor,
    Observer,
    ProjectLoader,
    ProjectT,
    Renderer,
)

if TYPE_CHECKING:
    import asyncio

__all__ = ["RenderInterruptedError", "RenderJob", "RenderOutputError", "RenderRunner"]

logger = logging.getLogger("renderstate.runner")

KEEP_FINISHED_JOBS: Final = 1024
"""How many finished jobs a runner remembers (for ``job()`` and ``progress()``)."""
# Saving COMPLETED/FAILED is retried with exponential backoff between these bounds.
_FIRST_DELAY: Final = 0.05
_MAX_DELAY: Final = 2.0
_SUPERSEDED: Final = "superseded by a newer render attempt"
# How often wait() of a handed-off job reads the ledger, at most and at least.
_MIN_POLL: Final = 0.05
_MAX_POLL: Final = 1.0
_LOST: Final = "its attempt was recovered or superseded in another process (its lease was lost)"


class _Held:
    """The state of one project's key lock (guarded by ``_KeyLocks._changed``)."""

    __slots__ = ("depth", "loop_thread", "owner", "users", "waiters")

    def __init__(self) -> None:
        self.owner: object = None
        """The holder: a thread's ident, or an asyncio task."""
        self.loop_thread: int | None = None
        """For a task holder, the thread its event loop runs in."""
        self.depth = 0
        self.users = 0
        """Holders and waiters: the entry is dropped when none is left."""
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        """Tasks waiting for the lock, woken on their own loops."""


class _KeyLocks:
    """One lock per project key, created on demand and dropped when nobody holds or wants it.

    Re-entrant for its holder, which is a thread (:meth:`hold`) or an asyncio task
    (:meth:`ahold`, which waits without blocking its event loop): a job saving its end
    publishes its video under the lock it already holds.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._locks: dict[object, _Held] = {}

    @contextlib.contextmanager
    def hold(self, key: object) -> Iterator[None]:
        owner = threading.get_ident()
        with self._changed:
            held = self._locks.setdefault(key, _Held())
            held.users += 1
            while held.owner is not None and held.owner != owner:
                if held.loop_thread == owner:
                    self._drop(key, held)
                    msg = (
                        "RenderRunner.submit() was called on an event loop while asubmit() "
                        "of the same project awaits its start on that loop: it would wait "
                        "forever; await runner.asubmit(project) instead"
                    )
                    raise RuntimeError(msg)
                self._changed.wait()
            held.owner = owner
            held.depth += 1
        try:
            yield
        finally:
            self._release(key, held)

    @contextlib.asynccontextmanager
    async def ahold(self, key: object) -> AsyncIterator[None]:
        import asyncio  # noqa: PLC0415 - only async callers pay for importing asyncio

        loop = asyncio.get_running_loop()
        owner = asyncio.current_task()
        with self._changed:
            held = self._locks.setdefault(key, _Held())
            held.users += 1
        try:
            while True:
                with self._changed:
                    if held.owner is None or held.owner is owner:
                        held.owner = owner
                        held.loop_thread = threading.get_ident()
                        held.depth += 1
                        break
                    waiter: asyncio.Future[None] = loop.create_future()
                    held.waiters.append((loop, waiter))
                try:
                    await waiter
                finally:
                    with self._changed:
                        if (loop, waiter) in held.waiters:
                            held.waiters.remove((loop, waiter))
        except BaseException:
            with self._changed:
                self._drop(key, held)
            raise
        try:
            yield
        finally:
            self._release(key, held)

    def _release(self, key: object, held: _Held) -> None:
        with self._changed:
            held.depth -= 1
            if held.depth == 0:
                held.owner = held.loop_thread = None
                waiters, held.waiters = held.waiters, []
                for loop, waiter in waiters:
                    with contextlib.suppress(RuntimeError):  # a loop closed meanwhile
                        loop.call_soon_threadsafe(_wake, waiter)
                self._changed.notify_all()
            self._drop(key, held)

    def _drop(self, key: object, held: _Held) -> None:
        # Called with _changed held.
        held.users -= 1
        if held.users == 0:
            del self._locks[key]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class RenderJob(Generic[ProjectT]):
    """One render attempt of one project, as returned by :meth:`RenderRunner.submit`.

    It is also what the runner hands its executor (a :class:`~renderstate.typing.Job`):
    :attr:`spec` is the job as data, to send to another process whose runner calls
    :meth:`RenderRunner.execute`; :meth:`run` runs it here, in the calling thread.
    Calling the job is the same as :meth:`run`, so an executor that calls what it is
    given (written for the plain callables of earlier versions) keeps working.
    """

    def __init__(
        self,
        project: ProjectT,
        lifecycle: ProjectLifecycle[ProjectT],
        output_path: str,
        tracker: ProgressTracker,
        *,
        runner: Callable[[RenderJob[ProjectT]], None],
        hand_off: Callable[[RenderJob[ProjectT]], None],
        cancel: Callable[[RenderJob[ProjectT], str], bool],
        final: Path | None = None,
        actor: str | None = None,
    ) -> None:
        self.attempt: Attempt | None = None
        """The attempt's record in the ledger (``None`` without a ledger)."""
        self.project = project
        """The project being rendered."""
        self.project_key = lifecycle.project_key
        """The project's primary key."""
        self.output_path = output_path
        """The URL-relative path the video is stored at when the render succeeds."""
        self.actor = actor
        """Who asked for the render, if the caller said."""
        self._lifecycle = lifecycle
        self._tracker = tracker
        self._runner = runner
        self._hand_off = hand_off
        self._cancel = cancel
        self._finished = threading.Event()
        self._claim_lock = threading.Lock()
        self._claimed = False
        self._status: Status | None = None
        self._error: BaseException | None = None
        self._failure: BaseException | None = None  # set as its FAILED is being saved
        self._lost = False
        # Set by hand_off(): the ledger this job's attempt is followed in from here on.
        self._away: Ledger | None = None
        # Cancel: requested (the reason), refused once the video is being published.
        self._cancel_lock = threading.Lock()
        self._cancel_reason: str | None = None
        self._publishing = False
        self._abandoned = False  # stop_jobs()/shutdown(cancel_running): no save retries
        self._final = final
        self._before = None if final is None else _identity(final)

    def __repr__(self) -> str:
        return f"<RenderJob project={self.project_key!r} {self.progress.phase}>"

    @property
    def progress(self) -> Progress:
        """The latest published progress of this attempt.

        After :meth:`hand_off`, read from the ledger (what the process rendering it wrote).
        """
        away = self._away
        if away is not None and not self._finished.is_set():
            attempt = self._follow(away)
            if attempt is not None:
                return progress_of(attempt, away.now())
        return self._tracker.latest

    @property
    def error(self) -> BaseException | None:
        """Why the render failed (or the save that gave up), ``None`` while all is well."""
        return self._error

    @property
    def status(self) -> Status | None:
        """The project's status when the job ended, ``None`` while it runs."""
        return self._status if self.done() else None

    def done(self) -> bool:
        """Whether the job has ended, successfully or not.

        After :meth:`hand_off`, whether the ledger shows its attempt ended.
        """
        if self._away is not None and not self._finished.is_set():
            self._follow(self._away)
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> Status:
        """Block until the job has ended and return the project's final status.

        That is COMPLETED or FAILED, except when saving it failed for longer than the
        runner's ``persist_timeout`` (see :attr:`error`): then the project is still
        PROCESSING and :meth:`RenderRunner.recover_interrupted` is what repairs it. A job
        superseded by a newer attempt of the same project in this runner (its
        :attr:`error` is a :class:`~renderstate.RenderInterruptedError`) saves nothing and
        reports the status the newer attempt has left, PROCESSING while that one runs.

        Raises:
            TimeoutError: the job had not ended after ``timeout`` seconds.
        """
        away = self._away
        if away is None:
            ended = self._finished.wait(timeout)
        else:
            # Rendered elsewhere: follow the ledger, at the pace its progress is written.
            deadline = None if timeout is None else time.monotonic() + timeout
            pause = min(max(away.progress_interval, _MIN_POLL), _MAX_POLL)
            while not self.done():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._finished.wait(pause if left is None else min(pause, left))
            ended = self._finished.is_set()
        if not ended:
            msg = f"the render of project {self.project_key} had not ended after {timeout} s"
            raise TimeoutError(msg)
        assert self._status is not None
        return self._status

    def hand_off(self) -> None:
        """Say that this job runs in another process (once its :attr:`spec` was sent).

        An executor that sends the spec to a task system calls it after sending. From
        then on this process does not run the job (:meth:`run` returns at once) and no
        longer renews its attempt's lease: while the attempt waits in the task queue its
        lease is the ledger's ``queue_timeout`` (:meth:`Ledger.hand_off
        <renderstate.ledger.Ledger.hand_off>`), so a long queue is not mistaken for a dead
        worker, and a spec lost on the way is recovered once that has passed. The
        worker's runner renews the usual lease once it has begun the attempt.
        :attr:`progress`, :meth:`done`, :meth:`wait` and :attr:`status` follow the
        attempt in the ledger.

        Raises:
            TypeError: the job has no attempt (a runner without a ledger): nothing could
                fence it in another process.
            RuntimeError: the job already started or ended in this process.
        """
        self._hand_off(self)

    def _follow(self, ledger: Ledger) -> Attempt | None:
        """Read the handed-off attempt; end this job if the ledger says it ended."""
        assert self.attempt is not None
        attempt = ledger.get(self.attempt.id)
        if attempt is None or attempt.active or self._finished.is_set():
            return attempt
        self.attempt = attempt
        try:
            status = self._lifecycle.refresh()
        except RenderStateError:  # pragma: no cover - deleted meanwhile
            completed = attempt.state is AttemptState.COMPLETED
            status = Status.COMPLETED if completed else Status.FAILED
        error: BaseException | None = None
        if attempt.state is not AttemptState.COMPLETED:
            error = RenderInterruptedError(
                project_key=self.project_key,
                reason=f"its attempt {attempt.id} ended {attempt.state.value} in "
                f"{attempt.worker or 'another process'}: {attempt.error or 'no reason recorded'}",
            )
        self._finish(status, error)
        return attempt

    @property
    def attempt_id(self) -> int | None:
        """The attempt's id in the ledger, its fencing token (``None`` without a ledger)."""
        return None if self.attempt is None else self.attempt.id

    @property
    def spec(self) -> JobSpec:
        """This job as data (JSON-serialisable with ``spec.to_dict()``), for an executor.

        With a ledger it names the attempt (``scope``, ``attempt_id``), so the process
        that receives it runs exactly that attempt, fenced by its id.
        """
        attempt = self.attempt
        return JobSpec(
            project_key=encode_key(self.project_key),
            output_path=self.output_path,
            scope=None if attempt is None else attempt.scope,
            attempt_id=None if attempt is None else attempt.id,
            actor=self.actor,
        )

    def run(self) -> None:
        """Run the job in the calling thread, to its end (what an executor calls).

        It handles its own errors: a failing render fails the project and returns. Only
        ``KeyboardInterrupt`` and ``SystemExit`` propagate, after the project was failed
        and the temporary file removed. A job runs at most once: a second call, or a call
        after :meth:`RenderRunner.shutdown` cancelled it, returns at once.
        """
        self._runner(self)

    def __call__(self) -> None:
        """The same as :meth:`run`."""
        self.run()

    def cancel(self, reason: str | None = None) -> bool:
        """Ask the render to stop; it ends FAILED with a :class:`~renderstate.RenderCancelledError`.

        Cooperative: a queued job ends at once; a running one stops at its next progress
        report (between frames, between phases) or when its renderer returns, before its
        file is published. Its temporary file is removed and the previous video stays as
        it was. ``reason`` is kept in the error (default ``"cancelled"``).

        Returns:
            ``True`` if the job will end FAILED as cancelled (or already has, by this
            call); ``False`` if there was nothing to cancel: the job has ended, or its video
            is already being published (it completes), or it was handed off to another
            process.
        """
        return self._cancel(self, reason or "cancelled")

    def _check_cancelled(self) -> None:
        reason = self._cancel_reason
        if reason is not None:
            raise RenderCancelledError(
                project_key=self.project_key, reason=reason, untouched=self._untouched()
            )

    def _begin_publishing(self) -> None:
        # From here on a cancel is refused: the video replaces the final file.
        with self._cancel_lock:
            self._check_cancelled()
            self._publishing = True

    def _request_cancel(self, reason: str) -> bool:
        with self._cancel_lock:
            if self._finished.is_set() or self._publishing or self._away is not None:
                return False
            if self._cancel_reason is None:
                self._cancel_reason = reason
            return True

    def _untouched(self) -> bool | None:
        """Whether the final file is still the one there was when the job was made."""
        if self._final is None:
            return None
        return _identity(self._final) == self._before

    def _report(self, phase: str, done: int, total: int) -> None:
        # The renderer's progress sink: a render whose attempt was taken away, or that was
        # cancelled, stops here (between frames and between phases).
        if self._lost:
            raise RenderInterruptedError(
                project_key=self.project_key, reason=_LOST, untouched=self._untouched()
            )
        self._check_cancelled()
        self._tracker(phase, done, total)

    def _lose(self) -> None:
        self._lost = True

    def _claim(self) -> bool:
        # Exactly one of "a worker starts it" and "shutdown cancels it" wins.
        with self._claim_lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def _finish(self, status: Status, error: BaseException | None) -> None:
        self._status = status
        self._error = error
        # DONE only for the attempt that completed the project itself: a superseded one
        # may find the project COMPLETED by the newer attempt.
        succeeded = status is Status.COMPLETED and error is None
        self._tracker.enter(Phase.DONE if succeeded else Phase.FAILED)
        self._finished.set()


def _default_output_path(key: object) -> str:
    return f"projects/{key}/final.mp4"


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
        output_field: Passed to each :class:`~renderstate.ProjectLifecycle`.
        values: Passed to each :class:`~renderstate.ProjectLifecycle`.
        observers: Passed to each :class:`~renderstate.ProjectLifecycle`.
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
            :meth:`recover_interrupted` is safe at any time in any process.
        loader: Loads a project by the key text the ledger stores (``store.loader(Model)``);
            needed by :meth:`recover_interrupted` with a ledger.
        async_adapter: The :class:`~renderstate.typing.AsyncAdapter` that :meth:`asubmit`
            awaits the guarded start through
            (:class:`~renderstate.adapters.sqlalchemy.AsyncSQLAlchemyAdapter`,
            :class:`~renderstate.adapters.django.AsyncDjangoAdapter`), over the same
            database as ``adapter``, which still records the end of each render.

    Raises:
        TypeError: ``async_adapter`` is not an async adapter.
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
        output_field: str = "output_path",
        values: Mapping[Status, Hashable] | None = None,
        observers: Iterable[Observer] = (),
        output_path_for: Callable[[ProjectT], str] | None = None,
        find_processing: Callable[[], Iterable[ProjectT]] | None = None,
        persist_timeout: float = 30.0,
        progress_interval: float = DEFAULT_INTERVAL,
        ledger: Ledger | None = None,
        loader: ProjectLoader[ProjectT] | None = None,
        async_adapter: AsyncAdapter[ProjectT] | None = None,
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
        self._adapter = adapter
        self._async_adapter = async_adapter
        self._ledger = ledger
        self._loader = loader
        self._heartbeat = None if ledger is None else Heartbeat(ledger, self._job_scope)
        self._renderer = renderer
        self._media_root = Path(media_root)
        self._executor: Executor = ThreadExecutor(max_workers) if executor is None else executor
        self._options: dict[str, Any] = {
            "status_field": status_field,
            "output_field": output_field,
            "values": values,
        }
        # Told by the runner itself, after it has released the project's key lock: an
        # observer that submits another project must not wait on a lock held here.
        self._observers: tuple[Observer, ...] = tuple(observers)
        self._output_path_for = output_path_for
        self._find_processing = find_processing
        self._persist_timeout = persist_timeout
        self._progress_interval = progress_interval
        # _lock guards the registry and is only ever held for dictionary work. Each
        # project's key lock orders what must not interleave for that one project: a
        # submit's start and registration, a job's supersession check and what it guards
        # (replacing the video, saving the end). It is held during database round trips,
        # so projects never queue behind each other's database work.
        self._lock = threading.Lock()
        self._key_locks = _KeyLocks()
        self._jobs: dict[object, RenderJob[ProjectT]] = {}
        self._closed = False
        self._sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"<RenderRunner media_root={str(self._media_root)!r} jobs={len(self._jobs)}>"

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
        return self._media_root

    @property
    def ledger(self) -> Ledger | None:
        """The attempt ledger this runner records and fences its attempts in, if any."""
        return self._ledger

    def lifecycle(self, project: ProjectT) -> ProjectLifecycle[ProjectT]:
        """Return a lifecycle for ``project`` with this runner's adapter and options."""
        return ProjectLifecycle(project, self._adapter, observers=self._observers, **self._options)

    def _quiet_lifecycle(self, project: ProjectT) -> ProjectLifecycle[ProjectT]:
        # The runner's own lifecycles notify no observer: it does, outside its locks.
        return ProjectLifecycle(project, self._adapter, **self._options)

    def _notify(self, record: TransitionRecord) -> None:
        notify_observers(self._observers, record)

    def output_path(self, project: ProjectT) -> str:
        """Return the URL-relative path a successful render of ``project`` is stored at.

        Raises:
            ProjectNotFoundError: the project has no primary key yet.
            InvalidOutputPathError: ``output_path_for`` returned an unusable path.
        """
        key = self._adapter.project_key(project)
        if key is None:
            raise ProjectNotFoundError(project_key=None)
        if self._output_path_for is None:
            return validate_output_path(_default_output_path(key))
        return validate_output_path(self._output_path_for(project))

    def file_path(self, project: ProjectT) -> Path:
        """Return where a successful render of ``project`` is written on disk."""
        return self._file_for(self.output_path(project))

    def _file_for(self, output_path: str) -> Path:
        return self._media_root.joinpath(*PurePosixPath(output_path).parts)

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
        self._check_open()
        job = self._new_job(project, actor)
        with self._key_locks.hold(job.project_key), self._starting(job):
            started = self._start(job)
        return self._launch(job, started)

    async def asubmit(self, project: ProjectT, *, actor: str | None = None) -> RenderJob[ProjectT]:
        """Start rendering ``project`` without blocking the event loop; see :meth:`submit`.

        The guarded start is awaited through the runner's ``async_adapter`` (one
        conditional ``UPDATE`` on the loop's own connection); then the job is registered
        and scheduled exactly as :meth:`submit` does, and the render runs in the executor
        with the sync adapter. Starts of one project in this runner, sync or async, never
        interleave, and a start waiting for another one waits without blocking the loop.

        With a ledger, the start and the attempt's record are one transaction in the
        ledger's store, which is synchronous: it runs in a worker thread (the
        ``async_adapter`` is then not needed, nor used). Observers are told, and the
        executor is handed the job, in a worker thread too.

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
        import asyncio  # noqa: PLC0415 - only async callers pay for importing asyncio

        if self._async_adapter is None and self._ledger is None:
            msg = (
                "asubmit() needs an async adapter for its guarded start: create the "
                "RenderRunner with async_adapter=AsyncSQLAlchemyAdapter(async_sessionmaker) "
                "(or AsyncDjangoAdapter()); with an ORM that has none (Peewee), call "
                "`await asyncio.to_thread(runner.submit, project)` instead"
            )
            raise TypeError(msg)
        self._check_open()
        job = self._new_job(project, actor)
        sent = asyncio.Event()
        submitting = asyncio.ensure_future(self._asubmit(job, sent))
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

    async def _asubmit(self, job: RenderJob[ProjectT], sent: asyncio.Event) -> RenderJob[ProjectT]:
        import asyncio  # noqa: PLC0415 - only async callers pay for importing asyncio

        async with self._key_locks.ahold(job.project_key):
            with self._starting(job):
                sent.set()
                if self._ledger is not None:
                    started = await asyncio.to_thread(self._start, job)
                else:
                    assert self._async_adapter is not None
                    lifecycle = ProjectLifecycle(job.project, self._async_adapter, **self._options)
                    started = await lifecycle.astart_render()
        return await asyncio.to_thread(self._launch, job, started)

    def _new_job(self, project: ProjectT, actor: str | None) -> RenderJob[ProjectT]:
        output_path = self.output_path(project)
        return RenderJob(
            project,
            self._quiet_lifecycle(project),
            output_path,
            ProgressTracker(interval=self._progress_interval),
            runner=self._run,
            hand_off=self._handed_off,
            cancel=self._cancel_job,
            final=self._file_for(output_path),
            actor=actor,
        )

    @contextlib.contextmanager
    def _starting(self, job: RenderJob[ProjectT]) -> Iterator[None]:
        """Register ``job`` around its start; the caller holds the project's key lock."""
        key = job.project_key
        with self._lock:
            self._check_open()  # again: shutdown() may have run meanwhile
            previous = self._jobs.get(key)
            # Publish the new attempt before it starts, so nobody reading progress sees
            # the last attempt's figures on a PROCESSING project. While a job of this
            # project is unfinished here, keep showing it until the start succeeds:
            # usually the start is refused (409) and that job is still the story.
            register_first = previous is None or previous.done()
            if register_first:
                self._jobs[key] = job
        try:
            yield
        except BaseException:
            if register_first:
                with self._lock:
                    if previous is None:
                        del self._jobs[key]
                    else:
                        self._jobs[key] = previous
            raise
        with self._lock:
            # From here on an unfinished previous job is superseded: it replaces no
            # video and saves nothing. Re-insert at the end: the dict is ordered
            # oldest attempt first.
            self._jobs.pop(key, None)
            self._jobs[key] = job
            self._forget_old_jobs()

    def _start(self, job: RenderJob[ProjectT]) -> TransitionRecord:
        """The guarded start, through the sync adapter (and the ledger if there is one)."""
        if self._ledger is None:
            return job._lifecycle.start_render()
        started, job.attempt = self._ledger.start(
            job._lifecycle, output_path=job.output_path, actor=job.actor
        )
        assert self._heartbeat is not None
        self._heartbeat.add(job.attempt, job._tracker.snapshot, job._lose)
        return started

    def _launch(self, job: RenderJob[ProjectT], started: TransitionRecord) -> RenderJob[ProjectT]:
        """Tell the observers and hand the started job to the executor."""
        self._notify(started)
        try:
            self._executor.schedule(job)
        except BaseException as exc:
            # Scheduling failed (executor closed, broker down): nothing will run the job,
            # so fail the project now rather than leave it PROCESSING.
            if job._claim():
                self._end_failed(job, exc)
            raise
        return job

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
        self._check_open()
        ledger, loader = self._ledger, self._loader
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
        job = RenderJob(
            project,
            self._quiet_lifecycle(project),
            attempt.output_path or spec.output_path,
            ProgressTracker(interval=self._progress_interval),
            runner=self._run,
            hand_off=self._handed_off,
            cancel=self._cancel_job,
            final=self._file_for(attempt.output_path or spec.output_path),
            actor=attempt.actor,
        )
        job.attempt = attempt
        if not attempt.active:
            logger.info("attempt %s is already %s: nothing to render", attempt.id, attempt.state)
            stale = AttemptSupersededError(
                project_key=job.project_key, attempt_id=attempt.id, state=attempt.state.value
            )
            self._end_unsaved(job, stale)
            return job
        key = job.project_key
        with self._key_locks.hold(key), self._lock:
            self._check_open()
            current = self._jobs.get(key)
            # A newer attempt of the project running here wins; anything else this
            # runner holds for the project is older (or this very attempt, delivered
            # again) and stops counting as current, as it does after a new submit.
            newer = (
                current is not None
                and not current.done()
                and (current.attempt_id or 0) > attempt.id
            )
            if not newer:
                self._jobs.pop(key, None)
                self._jobs[key] = job
                self._forget_old_jobs()
        if newer:
            self._end_unsaved(job, self._superseded_error(job))
            return job
        # The heartbeat starts once the attempt has begun here: renewing it before would
        # keep alive the lease of a worker that died, which this delivery must take over.
        job.run()
        return job

    def cancel(self, project: ProjectT, reason: str | None = None) -> bool:
        """Cancel the project's render in this runner; see :meth:`RenderJob.cancel`.

        Returns:
            ``True`` if its current job will end FAILED as cancelled; ``False`` if there
            is nothing to cancel here: no job of this project in this runner, or its job
            has ended (or is publishing its video, or runs in another process).
        """
        job = self._jobs.get(self._adapter.project_key(project))
        return False if job is None else job.cancel(reason)

    def _cancel_job(self, job: RenderJob[ProjectT], reason: str) -> bool:
        if not job._request_cancel(reason):
            return False
        if job._claim():
            # Still queued: it ends now, without ever holding a worker.
            self._end_failed(
                job,
                RenderCancelledError(
                    project_key=job.project_key, reason=reason, untouched=job._untouched()
                ),
            )
        return True

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
        with self._lock:
            jobs = [job for job in self._jobs.values() if not job.done()]
        cancelled = 0
        for job in jobs:
            job._abandoned = True
            cancelled += self._cancel_job(job, reason)
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in jobs:
            if job._away is None:
                job.wait(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        return cancelled

    def _handed_off(self, job: RenderJob[ProjectT]) -> None:
        if self._ledger is None or job.attempt is None:
            msg = (
                "only a job recorded in a ledger can run in another process: create the "
                "RenderRunner with ledger=Ledger(store) and loader=store.loader(Project)"
            )
            raise TypeError(msg)
        if not job._claim():
            msg = f"{job!r} already started or ended in this process; it cannot be handed off"
            raise RuntimeError(msg)
        assert self._heartbeat is not None
        self._heartbeat.remove(job.attempt)
        job._away = self._ledger
        try:
            self._ledger.hand_off(job.attempt)
        except Exception:  # the spec is sent: a worker renders it regardless
            logger.warning(
                "could not give attempt %s its queue timeout; it keeps the lease until a "
                "worker begins it",
                job.attempt.id,
                exc_info=True,
            )

    def _check_open(self) -> None:
        if self._closed:
            msg = "this RenderRunner has been shut down; create a new one to render again"
            raise RuntimeError(msg)

    def _superseded(self, job: RenderJob[ProjectT]) -> bool:
        """Whether a newer attempt of the job's project has started in this runner."""
        with self._lock:
            return self._jobs.get(job.project_key) is not job

    def _superseded_error(self, job: RenderJob[ProjectT]) -> RenderInterruptedError:
        return RenderInterruptedError(project_key=job.project_key, reason=_SUPERSEDED)

    def _forget_old_jobs(self) -> None:
        # A long-lived runner sees many projects: keep every unfinished job, and only the
        # most recent finished ones, so memory does not grow with every project ever seen.
        excess = len(self._jobs) - KEEP_FINISHED_JOBS
        if excess <= 0:
            return
        for key in [k for k, job in self._jobs.items() if job.done()][:excess]:
            del self._jobs[key]

    def progress(self, project: ProjectT) -> Progress | None:
        """Return the latest progress of the project's current attempt, if it has one.

        Without a ledger, that is the last attempt in this runner. With a ledger, it is the
        project's newest attempt in any process: read from this runner's own job while it
        is that attempt (fresher), else from the ledger (written about once a second).
        """
        key = self._adapter.project_key(project)
        job = self._jobs.get(key)
        if self._ledger is None or key is None:
            return None if job is None else job.progress
        if job is not None and job.attempt is None and not job.done():
            return job.progress  # registered, its start (and record) under way
        current = self._ledger.current(self._ledger.scope(project), encode_key(key))
        if current is None:
            return None if job is None else job.progress
        if job is not None and job.attempt_id == current.id:
            return job.progress
        return progress_of(current, self._ledger.now())

    def error(self, project: ProjectT) -> str | None:
        """Return why the project's current attempt failed, as one line, if it did.

        ``"RuntimeError: disk full"`` (the exception's type and message), or ``None`` while
        that attempt runs, after it succeeded, or when no attempt is known. The reason is
        known before the project is saved FAILED (a reader who loaded the FAILED row never
        gets ``None`` because the job has not quite ended). As for
        :meth:`progress`, the attempt is this runner's last one, or with a ledger the
        project's newest one in any process. With :meth:`progress` this makes the runner a
        :class:`~renderstate.typing.ProgressSource`.
        """
        key = self._adapter.project_key(project)
        job = self._jobs.get(key)
        recorded: str | None = None  # why the ledger says the current attempt ended
        if self._ledger is not None and key is not None:
            current = self._ledger.current(self._ledger.scope(project), encode_key(key))
            if current is not None:
                ended = current.state in (AttemptState.FAILED, AttemptState.INTERRUPTED)
                recorded = current.error if ended else None
                if job is None or job.attempt_id != current.id:
                    return recorded
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

    def job(self, project: ProjectT) -> RenderJob[ProjectT] | None:
        """Return the project's last job in this runner, if any."""
        return self._jobs.get(self._adapter.project_key(project))

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
        if self._ledger is not None:
            return self._recover_expired(projects, requeue=requeue)
        if requeue:
            msg = (
                "recover_interrupted(requeue=True) needs a ledger; see 'Running several processes'"
            )
            raise TypeError(msg)
        if projects is None:
            if self._find_processing is None:
                msg = (
                    "recover_interrupted() needs the projects left PROCESSING: pass them, "
                    "or create the RenderRunner with find_processing=<a function that loads "
                    "them>, e.g. lambda: Project.objects.filter(status='PROCESSING')"
                )
                raise TypeError(msg)
            projects = self._find_processing()
        records: list[TransitionRecord] = []
        for project in projects:
            lifecycle = self._quiet_lifecycle(project)
            key = lifecycle.project_key
            # Under the key lock, no submit of this runner can start the project between
            # the check that it is not rendering here and the fail() below.
            with self._key_locks.hold(key):
                record = self._recover(project, lifecycle)
            if record is not None:
                self._notify(record)
                records.append(record)
        return records

    def _recover_expired(
        self, projects: Iterable[ProjectT] | None, *, requeue: bool
    ) -> list[TransitionRecord]:
        assert self._ledger is not None
        if projects is not None:
            msg = (
                "with a ledger, recover_interrupted() finds the interrupted attempts itself: "
                "call it without projects"
            )
            raise TypeError(msg)
        if self._loader is None:
            msg = (
                "recover_interrupted() with a ledger needs a loader: create the RenderRunner "
                "with loader=store.loader(Project) (or any callable with a 'scope' attribute "
                "that loads a project by its key text)"
            )
            raise TypeError(msg)
        found = self._ledger.recover(
            self._adapter, self._loader, cleanup=self._clean_after, **self._options
        )
        records = [r.record for r in found if r.record is not None]
        for record in records:
            self._notify(record)
        if requeue:
            for recovered in found:
                if recovered.record is None:
                    continue
                project = self._loader(recovered.attempt.project_key)
                if project is None:  # pragma: no cover - deleted in between
                    continue
                try:
                    self.submit(project, actor=recovered.attempt.actor)
                except RenderStateError as exc:
                    logger.warning("could not re-queue project %s: %s", recovered.attempt, exc)
        return records

    def _clean_after(self, attempt: Attempt) -> None:
        if attempt.output_path is not None:
            remove_temporary_files(self._file_for(attempt.output_path))

    def _recover(
        self, project: ProjectT, lifecycle: ProjectLifecycle[ProjectT]
    ) -> TransitionRecord | None:
        key = lifecycle.project_key
        running = self._jobs.get(key)
        if running is not None and not running.done():
            return None
        try:
            final: Path | None = self.file_path(project)
        except RenderStateError:
            final = None
        return fail_interrupted(lifecycle, final_file=final)

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
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())

        if cancel_pending or cancel_running:
            for job in jobs:
                job._abandoned = True
        if cancel_pending:
            for job in jobs:
                if job._claim():
                    reason = "the runner shut down before the render started"
                    self._end_failed(
                        job,
                        RenderInterruptedError(
                            project_key=job.project_key, reason=reason, untouched=job._untouched()
                        ),
                    )
        if cancel_running:
            for job in jobs:
                self._cancel_job(job, "the runner shut down")
        self._executor.shutdown(wait)
        if wait and self._heartbeat is not None:
            # Every job has ended; without wait, running renders keep their heartbeat.
            self._heartbeat.stop()

    # ------------------------------------------------------------------ the job itself

    def _run(self, job: RenderJob[ProjectT]) -> None:
        if not job._claim():
            return  # cancelled by shutdown(cancel_pending=True)
        if self._superseded(job):
            # A newer attempt started while this one waited in the queue: rendering it
            # would only hold a worker that the newer attempt is waiting for.
            self._end_failed(job, self._superseded_error(job))
            return
        with self._job_scope():
            self._render(job)

    def _job_scope(self) -> contextlib.AbstractContextManager[object]:
        # An adapter that keeps per-thread connections (Django) recycles them around each
        # job, as its request cycle does; the others need nothing.
        scope = getattr(self._adapter, "job_scope", None)
        return contextlib.nullcontext() if scope is None else scope()

    def _begin(self, job: RenderJob[ProjectT]) -> bool:
        """Begin the job's attempt in the ledger; end the job if it may not render here."""
        if self._ledger is None or job.attempt is None:
            return True
        try:
            job.attempt = self._ledger.begin(job.attempt, cleanup=self._clean_after)
        except AttemptOwnedError as exc:
            # A duplicate delivery: a live worker renders this attempt.
            logger.info("%s", exc)
            self._end_unsaved(job, exc)
            return False
        except AttemptSupersededError as exc:
            # Recovered or superseded in another process while it was queued here.
            logger.warning("%s", exc)
            self._end_unsaved(job, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - a store error ends the job like a render error
            self._end_failed(job, exc)
            return False
        assert self._heartbeat is not None
        self._heartbeat.add(job.attempt, job._tracker.snapshot, job._lose)
        return True

    def _render(self, job: RenderJob[ProjectT]) -> None:
        if not self._begin(job):
            return
        final: Path | None = None
        partial: Path | None = None
        try:
            # The path recorded at submit, so the file written is the one complete() saves.
            final = self._file_for(job.output_path)
            final.parent.mkdir(parents=True, exist_ok=True)
            partial = create_temporary(final)
            job._tracker.enter(Phase.RENDERING)
            job._check_cancelled()
            written = self._renderer(job.project, partial, job._report)
            job._check_cancelled()
            job._tracker.enter(Phase.FINALIZING)
            if written is not None:
                _adopt(written, partial, final, project_key=job.project_key)
            make_durable(partial, project_key=job.project_key)
            job._begin_publishing()
            if self._ledger is None:
                self._publish(job, partial, final)
                discard(partial)
                partial = None
        except BaseException as exc:
            if partial is not None:
                discard(partial)  # the partial video itself and its scratch files
            self._end_failed(job, exc)
            if not isinstance(exc, Exception):
                # KeyboardInterrupt, SystemExit: the project is FAILED and the file cleaned
                # up; let the interrupt keep its meaning for whoever runs this job.
                raise
            return
        if partial is None:
            _sync_after_rename(final)
            self._end_completed(job)
            return
        # With a ledger the rename happens inside the fenced completion, under the
        # attempt's and the project's row locks: a late attempt never replaces the video.
        moved: list[Path] = []

        def publish() -> None:
            assert partial is not None
            if not moved:  # a retried save after a failed commit: the file is in place
                self._publish(job, partial, final)
                moved.append(final)

        def clean_up() -> None:
            assert partial is not None
            discard(partial)  # the partial if it was never moved, and scratch files
            if moved:
                _sync_after_rename(final)

        self._end_completed(job, publish, clean_up)

    def _publish(self, job: RenderJob[ProjectT], partial: Path, final: Path) -> None:
        """Move the finished file over the final video, unless a newer attempt has started."""
        with self._key_locks.hold(job.project_key):
            # Under the key lock, no new attempt can register between the check and the
            # rename: a superseded job never replaces the newer attempt's video.
            if self._superseded(job):
                raise self._superseded_error(job)
            partial.replace(final)  # atomic: readers see the old or the new video

    def _end_completed(
        self,
        job: RenderJob[ProjectT],
        publish: Callable[[], None] | None = None,
        clean_up: Callable[[], None] | None = None,
    ) -> None:
        record: TransitionRecord | None = None
        problem: BaseException | None = None
        ledger, attempt = self._ledger, job.attempt
        if ledger is not None and attempt is not None:

            def save() -> TransitionRecord:
                return ledger.complete(job._lifecycle, attempt, job.output_path, publish=publish)
        else:

            def save() -> TransitionRecord:
                return job._lifecycle.complete(job.output_path)

        try:
            record, problem = self._persist(job, "COMPLETED", save)
        except BaseException as exc:  # an interrupt while saving: the job still ends
            problem = exc
            raise
        finally:
            try:
                if clean_up is not None:
                    clean_up()  # before the job counts as ended: wait() sees a clean disk
            finally:
                self._finish(job, self._status_of(job, record), problem)

    def _end_failed(self, job: RenderJob[ProjectT], error: BaseException) -> None:
        record: TransitionRecord | None = None
        if (
            isinstance(error, (RenderInterruptedError, RenderOutputError))
            and error.untouched is None
        ):
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
            ledger, attempt = self._ledger, job.attempt
            if ledger is not None and attempt is not None:

                def save() -> TransitionRecord:
                    return ledger.fail(job._lifecycle, attempt, error)
            else:

                def save() -> TransitionRecord:
                    return job._lifecycle.fail(error)

            record, _ = self._persist(job, "FAILED", save)
        finally:
            # Even if an interrupt cut the save short, wait() returns and the job counts as
            # ended, so recover_interrupted() can repair a project left PROCESSING.
            self._finish(job, self._status_of(job, record), error)

    def _end_unsaved(self, job: RenderJob[ProjectT], error: BaseException) -> None:
        """End a job whose attempt is no longer current: it saves nothing."""
        self._finish(job, self._status_of(job, None), error)

    def _finish(
        self, job: RenderJob[ProjectT], status: Status, error: BaseException | None
    ) -> None:
        if self._heartbeat is not None and job.attempt is not None:
            self._heartbeat.remove(job.attempt)
        job._finish(status, error)

    def _status_of(self, job: RenderJob[ProjectT], record: TransitionRecord | None) -> Status:
        if record is not None:
            # What this job saved; the shared project object may already show a newer
            # attempt's PROCESSING.
            return record.target
        try:
            return job._lifecycle.status
        except RenderStateError:  # pragma: no cover - a value nobody maps: report PROCESSING
            return Status.PROCESSING

    def _persist(
        self, job: RenderJob[ProjectT], what: str, save: Callable[[], TransitionRecord]
    ) -> tuple[TransitionRecord | None, BaseException | None]:
        """Save the end of a render, retrying a failing store.

        Returns:
            The saved record, or the error it gave up on (nothing saved).
        """
        deadline = time.monotonic() + self._persist_timeout
        delay = _FIRST_DELAY
        attempt = 1
        while True:
            try:
                # Under the key lock, no new attempt can start between the check and the
                # save: the guard alone would accept this job's end on the newer
                # attempt's PROCESSING row. The retry's sleep happens outside it.
                with self._key_locks.hold(job.project_key):
                    if self._superseded(job):
                        superseded = self._superseded_error(job)
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
            except (InvalidTransitionError, AttemptSupersededError) as exc:
                # Not PROCESSING any more, or no longer the current attempt: recovered by
                # someone else, superseded, or a late duplicate.
                logger.warning(
                    "project %s could not be saved as %s: %s", job.project_key, what, exc
                )
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
                self._sleep(delay)
                delay = min(delay * 2, _MAX_DELAY)
                attempt += 1
            else:
                self._notify(record)
                return record, None


def _adopt(
    written: str | os.PathLike[str], partial: Path, final: Path, *, project_key: object
) -> None:
    """Bring the file a renderer returned to ``partial``, checked and flushed.

    The file then goes the way of every render: the fenced, atomic replace of ``final``.
    """
    if not isinstance(written, (str, os.PathLike)):
        raise RenderOutputError(
            project_key=project_key,
            reason=f"the renderer returned {type(written).__name__}, not the path of the file "
            f"it wrote (return None after writing the target, or a str or Path)",
        )
    source = Path(written)
    if source.absolute() == partial.absolute():
        return  # it wrote the target it was given
    with contextlib.suppress(FileNotFoundError):
        if source.samefile(final):
            raise RenderOutputError(
                project_key=project_key,
                reason=f"the renderer returned the final file {final} itself: it wrote over "
                f"the published video instead of a new file (write to the target it is "
                f"given, or to any other path, and return that)",
            )
    # Checked (a regular, non-empty file, not a link) and fsynced, then renamed onto the
    # temporary file (copied where a rename cannot cross file systems); it leaves
    # `source` where it was on failure.
    publish(source, partial, project_key=project_key)


def _identity(final: Path) -> tuple[int, ...] | None:
    """What tells one version of ``final`` from another; ``None`` while there is none."""
    try:
        stat = final.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _sync_after_rename(final: Path) -> None:
    try:
        sync_directory(final.parent)
    except OSError:
        # The new video is already in place; failing the project now would record a
        # FAILED render whose video replaced the old one. Say so and carry on.
        logger.warning("could not fsync %s after the rename", final.parent, exc_info=True)
