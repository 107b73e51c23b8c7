"""Render on Celery workers: an executor that sends job specs, and the task that runs them.

In the web process, the runner does the guarded start (409 at once) and records the attempt
in the ledger, then :class:`CeleryExecutor` sends the job's spec (project key, attempt id,
output path: JSON, never a closure) to the task named :data:`TASK_NAME`::

    from celery import Celery
    from renderstate.runner.celery import CeleryExecutor

    app = Celery("mysite", broker="redis://localhost:6379/0")
    runner = RenderRunner(adapter, renderer, media_root="media", ledger=ledger,
                          loader=loader, executor=CeleryExecutor(app))

In the worker, :func:`register` adds that task to the same Celery app; each worker process
builds its runner once, from your factory, and renders each delivered spec through the
runner's own code path (temporary file, fsync, atomic replace, heartbeats, fenced end)::

    from renderstate.runner.celery import register

    register(app, make_runner)   # make_runner() -> RenderRunner with a ledger and a loader

Delivery is at least once (late acknowledgement, redelivered when a worker dies); the state
effect is exactly once (the ledger's fence). See the "Celery workers" page.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from billiard.process import active_children, current_process  # type: ignore[import-untyped]

try:
    from celery import Celery, Task
    from celery.result import EagerResult
    from celery.signals import (
        worker_process_init,
        worker_process_shutdown,
        worker_ready,
        worker_shutdown,
        worker_shutting_down,
    )
    from celery.utils import uuid
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    msg = "renderstate.runner.celery needs Celery: pip install 'renderstate[celery]'"
    raise ImportError(msg) from exc

from renderstate import telemetry
from renderstate._attempts import decode_key
from renderstate.exceptions import AttemptOwnedError
from renderstate.runner import JobSpec, RenderJob, RenderRunner, _awaiting
from renderstate.runner._delivering import (
    Delivery,
    RunnerPerProcess,
    deliver,
    deliver_key,
    run_waiting,
)
from renderstate.runner._requeuing import Grace, Sweeper, rendering
from renderstate.typing import Job

__all__ = [
    "DEFAULT_GRACE",
    "EXECUTOR",
    "TASK_NAME",
    "TASK_OPTIONS",
    "CeleryExecutor",
    "Delivery",
    "deliver",
    "register",
    "run_attempt",
]

logger = logging.getLogger("renderstate.runner.celery")

TASK_NAME: Final = "renderstate.render"
"""The name the render task is registered and sent under; route on it (``task_routes``)."""

TASK_OPTIONS: Final[Mapping[str, Any]] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": False,
    "max_retries": 720,
}
"""The task's options: acknowledged after the render, so a worker that dies mid-render has
its message redelivered; a worker lost to a signal or the OOM killer requeues it too. A
duplicate delivery of an attempt that a live worker renders is retried once that worker's
lease would have run out, at most ``max_retries`` times (720 at the default 30 s lease:
about six hours of render), and then dropped."""

EXECUTOR: Final = "celery"
"""What the ledger records of an attempt sent through Celery (``celery:<queue>`` with a
queue): the workers' sweep requeues such attempts when their worker dies."""

DEFAULT_GRACE: Final = 20.0
"""Seconds a render may still take once a worker's warm shutdown began, before it is handed
back to the queue: within Kubernetes' default 30 s termination grace, with time to spare."""

_TASK_MARK: Final = "#"
"""Separates the queue from the app's task in an attempt's executor
(``celery:<queue>#<task name>``): a sweep sends its render again through that task."""

_OWN_ARGS: Final = "args"
"""Follows the app's task in an attempt's executor when it was sent with the app's own
arguments (``CeleryExecutor(task=..., args=...)``)."""

_MARGIN: Final = 0.25
"""Seconds added to an owner's remaining lease before a duplicate delivery looks again."""


class CeleryExecutor:
    """Sends each job's spec to the render task on ``app``; nothing runs in this process.

    Args:
        app: Your Celery app (its broker, serializer and routes apply).
        queue: The queue to send to; by default Celery's routing decides
            (``task_routes``, else ``task_default_queue``).
        task_name: The task to send to; the one :func:`register` registered.
        options: More :meth:`celery.Celery.send_task` options (``priority``,
            ``headers``, ``retry_policy`` ...); ``ignore_result=False`` stores the task's
            :class:`Delivery` in your result backend (ignored by default: the outcome is
            in the ledger). With ``task``, the ``apply_async`` options the app's code
            passed (``{"countdown": 10}``), passed as they are.
        task: The app's own Celery task to send each job to, instead of the render
            task; its body calls :func:`run_attempt` with the project's key.
        args: With ``task``: the task's positional arguments for a project (by default
            ``(key,)``, the project's primary key as the adapter reads it).

    With ``task``, the job goes to **the app's own task** instead, with the app's own
    arguments, as the app's code sent it (``task.apply_async(args=(video.pk,),
    countdown=10)``): a test that mocks the task's ``apply_async`` sees that call, and
    the task's body renders the attempt with :func:`run_attempt` (``run_attempt(self,
    video_id)``). The task id is Celery's, recorded on the attempt and in the app's
    ``task_id_field`` once sent. Under ``task_always_eager`` Celery runs the app's task in
    the caller, and its :func:`run_attempt` renders the job this runner started, there.

    Sending is synchronous: if the broker is down or the spec cannot be serialised,
    :meth:`schedule` raises and the runner fails the attempt and the project with that
    reason before re-raising to the caller, so no claim is left orphaned.

    With Celery's ``task_always_eager`` (an app's test settings), nothing is sent: each
    job runs in the caller's thread, by the submitting runner, before ``submit()``
    returns, as Celery runs an eager task (see "Tests of an app").
    """

    def __init__(
        self,
        app: Celery,
        *,
        queue: str | None = None,
        task_name: str = TASK_NAME,
        options: Mapping[str, Any] | None = None,
        task: Task[Any, Any] | None = None,
        args: Callable[[Any], Sequence[Any]] | None = None,
    ) -> None:
        if isinstance(task, type):
            msg = (
                f"CeleryExecutor(task=...) takes the app's registered task, got the class "
                f"{task.__name__}: register it with task = app.register_task({task.__name__}()) "
                "and pass that"
            )
            raise TypeError(msg)
        if task is not None and not callable(getattr(task, "apply_async", None)):
            msg = f"CeleryExecutor(task=...) takes the app's Celery task, got {task!r}"
            raise TypeError(msg)
        if args is not None and task is None:
            msg = "CeleryExecutor(args=...) is for the app's own task: give task= as well"
            raise TypeError(msg)
        if options is not None and "args" in options:
            # Passed beside the arguments: apply_async() would refuse every send.
            msg = (
                "CeleryExecutor(options=...) are the send's options; the app's task's "
                "arguments come from task= and args=lambda project: (...), not options['args']"
            )
            raise TypeError(msg)
        if task is not None and task_name != TASK_NAME:
            msg = "CeleryExecutor takes task= (the app's task) or task_name=, not both"
            raise TypeError(msg)
        self.app = app
        """The Celery app the specs are sent through."""
        self.queue = queue
        """The queue the specs are sent to (``None``: Celery's routing decides)."""
        self.task = task
        """The app's own task each job is sent to (``None``: the render task)."""
        self.task_name = task_name if task is None else str(task.name)
        """The task the jobs are sent to."""
        self._args = args
        self._options = dict(options or {})

    def __repr__(self) -> str:
        return (
            f"<CeleryExecutor app={self.app.main!r} task={self.task_name!r} queue={self.queue!r}>"
        )

    @property
    def runs_in_caller(self) -> bool:
        """Whether jobs run in the caller's thread: the app's ``task_always_eager``."""
        return bool(self.app.conf.task_always_eager)

    @property
    def needs_ledger(self) -> bool:
        """Whether a runner must have a ledger to use it: with the app's own ``task``.

        That task finds the attempt there; a runner without one is refused when made.
        """
        return self.task is not None

    @property
    def schedules_immediate(self) -> bool:
        """Whether a job rendered in the caller is still sent: with the app's own ``task``.

        Celery runs that task in the caller (``task_always_eager``), and its
        :func:`run_attempt` renders the job there; a test that mocks the task's
        ``apply_async`` sees the call.
        """
        return self.task is not None

    @property
    def route(self) -> str:
        """What the ledger records as the attempt's executor: ``celery`` or ``celery:<queue>``.

        A worker's sweep sends an attempt whose worker died to that queue again.
        """
        if self.task is not None:
            # The app's own arguments (args=) are marked: a worker that cannot make them
            # does not send the app's task the key alone.
            own_args = "" if self._args is None else f"{_TASK_MARK}{_OWN_ARGS}"
            return f"{EXECUTOR}:{self.queue or ''}{_TASK_MARK}{self.task_name}{own_args}"
        return EXECUTOR if self.queue is None else f"{EXECUTOR}:{self.queue}"

    def new_task_id(self) -> str | None:
        """A fresh Celery task id, made before the start so that the start records it.

        The runner records it on the attempt (``Attempt.task_id``) and in the app's
        ``task_id_field``, and :meth:`schedule` sends the task under it: the id the app
        stores is the one Celery's events, ``AsyncResult`` and ``revoke`` know.
        ``None`` with the app's own task: it is sent exactly as the app sent it, and its
        id, Celery's, is recorded once sent.
        """
        if self.task is not None:
            return None
        return str(uuid())

    def schedule(self, job: Job, /) -> None:
        """Send ``job.spec`` to the render task; return once the broker has accepted it.

        With ``task_always_eager``, run the job here instead, before returning.

        Then the job is handed off (:meth:`RenderJob.hand_off`): this process follows its
        attempt in the ledger.

        Raises:
            TypeError: ``job`` is not a :class:`~renderstate.RenderJob` of a runner.
            kombu.exceptions.OperationalError: the broker cannot be reached.
            kombu.exceptions.EncodeError: the app's serializer refused the spec.
            RuntimeError: the app's task ran here (``task_always_eager``) and did not
                render the job (its body did not call :func:`run_attempt` with the key).
        """
        if not isinstance(job, RenderJob):
            msg = f"CeleryExecutor schedules the RenderJobs of a RenderRunner, got {job!r}"
            raise TypeError(msg)
        if self.task is not None:
            self._send_to_task(job, self.task)
            return
        if self.runs_in_caller:
            job.run()
            return
        options = dict(self._options)
        # The outcome is in the ledger and the project's row: by default nothing waits on a
        # Celery result (no result-backend subscription per render in the web process).
        options.setdefault("ignore_result", True)
        if self.queue is not None:
            options.setdefault("queue", self.queue)
        spec = job.spec
        if job.task_id is not None:
            # The id the start recorded (new_task_id): the task is sent under it.
            options.setdefault("task_id", job.task_id)
        self.app.send_task(self.task_name, args=(spec.to_dict(),), **options)
        # Only once the broker has it: if sending raised, the runner fails the attempt.
        job.hand_off()
        logger.debug("sent attempt %s of project %s", spec.attempt_id, spec.project_key)

    def args_of(self, project: Any) -> Sequence[Any]:
        """The app's task's positional arguments for ``project`` (by default ``(key,)``).

        What ``args`` returns is passed as it is (a list stays a list: a test asserting
        the app's ``apply_async(args=[pk])`` sees exactly that).
        """
        if self._args is None:
            return (_primary_key(project),)
        return self._args(project)

    def _send_to_task(self, job: RenderJob[Any], task: Task[Any, Any]) -> None:
        """Call the app's task with its own arguments; record its id; hand the job off."""
        if job.attempt is None:
            msg = (
                "CeleryExecutor(task=...) needs a RenderRunner with a ledger: the app's task "
                "finds the attempt there (create the runner with ledger=Ledger(store) and "
                "loader=store.loader(Project))"
            )
            raise TypeError(msg)
        args = self.args_of(job.project)
        options = dict(self._options)
        if self.queue is not None:
            options.setdefault("queue", self.queue)
        # Kept for the task: run in this process (task_always_eager), it renders this job.
        _awaiting.wait_for_task(job, self.task_name)
        try:
            result = task.apply_async(args=args, **options)
        finally:
            waited = _awaiting.forget(job)
        if not waited and job.done():
            return  # the task ran here, eagerly, and rendered the job to its end
        if waited and isinstance(result, EagerResult):
            # It ran here and did not take the job: no worker ever will.
            msg = (
                f"the app's task {task.name!r} ran in this process (task_always_eager) with "
                f"args {args!r} and did not render project {job.project_key}'s attempt: its "
                "body must call run_attempt(self, key) with the project's key (give "
                "CeleryExecutor args= that name it)"
            )
            if result.failed():
                msg += f"; it raised {result.result!r} first"
            raise RuntimeError(msg)
        task_id = getattr(result, "id", None)
        if task_id is not None:
            job.task_id = str(task_id)
        job.hand_off()
        logger.debug(
            "sent attempt %s of project %s to %s", job.attempt_id, job.project_key, task.name
        )

    def shutdown(self, wait: bool = True) -> None:
        """Nothing to stop: the specs already sent belong to the workers."""


# ---------------------------------------------------------------------- the worker side


def register(
    app: Celery,
    runner_factory: Callable[[], RenderRunner[Any]],
    *,
    name: str = TASK_NAME,
    sweep: bool = True,
    grace: float | None = DEFAULT_GRACE,
    **options: Any,
) -> Task[Any, Any]:
    """Register the render task on ``app``; call it where your worker imports the app.

    Besides the task, each worker process (each prefork child, or the worker itself with
    the solo and threads pools) sweeps the ledger every half lease
    (:meth:`RenderRunner.sweep`), in turn with every other (one process of the fleet per
    interval, :meth:`Ledger.take_sweep_turn <renderstate.ledger.Ledger.take_sweep_turn>`):
    a render whose worker died is sent to its queue again once its lease expired (at once
    when that worker was a process of the sweeping process's machine), so it resumes on
    another worker within about one and a half leases, whatever the
    broker's redelivery delay; a render that no task queue holds and whose process died is
    failed. On a warm shutdown (``SIGTERM``), a render that cannot finish within
    ``grace`` seconds stops at its next frame and is handed back to its queue
    (:meth:`RenderRunner.hand_back`) instead of failing: another worker renders it.

    Args:
        app: Your Celery app.
        runner_factory: Builds the worker's :class:`~renderstate.RenderRunner`, with a
            ledger and a loader; called once per worker process, on its first task (or
            its first sweep).
        name: The task's name; the default :data:`TASK_NAME` is what
            :class:`CeleryExecutor` sends to.
        sweep: Whether this worker sweeps (``False``: the broker's redelivery, or your own
            :meth:`RenderRunner.sweep`, brings back a dead worker's renders).
        grace: Seconds a render may still take once a warm shutdown began; renders whose
            estimated time left is longer are handed back at once. Keep it below your
            process manager's own grace (Kubernetes ``terminationGracePeriodSeconds``,
            systemd ``TimeoutStopSec``). ``None``: renders always finish (Celery's own
            warm shutdown).
        options: Task options overriding :data:`TASK_OPTIONS` (``queue``,
            ``time_limit`` ...).

    Returns:
        The registered task. Its result is the :class:`Delivery` text.

    Raises:
        ValueError: ``grace`` is negative.
    """
    if grace is not None and not grace >= 0:
        msg = f"grace must be a number of seconds, at least 0, or None; got {grace!r}"
        raise ValueError(msg)
    runners = RunnerPerProcess(runner_factory)

    def send(spec: JobSpec, executor: str) -> None:
        """Send ``spec`` to the queue its attempt recorded (``celery:<queue>``).

        It goes under the task id recorded with it: the id the app stored
        (``task_id_field``, the attempt's ``task_id``) still names the task that renders
        it, for ``revoke`` and ``AsyncResult`` too.
        """
        queue, _, own_task = executor.partition(":")[2].partition(_TASK_MARK)
        sending: dict[str, Any] = {"ignore_result": True}
        if queue:
            sending["queue"] = queue
        recorded = _recorded_task_id(runners.get(), spec)
        if recorded is not None:
            sending["task_id"] = recorded
        own_task, _, own_args = own_task.partition(_TASK_MARK)
        if own_task and _send_to_own_task(
            app, runners.get(), own_task, spec, sending, own_args=own_args == _OWN_ARGS
        ):
            # Sent by CeleryExecutor(task=...): again through the app's own task.
            return
        app.send_task(name, args=(spec.to_dict(),), **sending)

    sweeper = Sweeper(runners.get, EXECUTOR, send)
    waiting = None if grace is None else Grace(runners.current, grace)

    _connect(runners, sweeper if sweep else None, waiting)

    _REGISTERED.setdefault(id(app), {})[name] = _Registration(runners, waiting, send)

    def render(task: Task[Any, Any], spec: dict[str, Any]) -> str:
        if waiting is not None:
            _give_grace_on_term(runners, waiting)
        outcome, job = deliver(runners.get(), JobSpec.from_dict(spec))
        return _settle(task, runners.get(), outcome, job, send)

    task: Task[Any, Any] = app.task(name=name, bind=True, **{**TASK_OPTIONS, **options})(render)
    return task


@dataclasses.dataclass(frozen=True)
class _Registration:
    """What :func:`register` set up on an app, for :func:`run_attempt` in the app's task."""

    runners: RunnerPerProcess
    waiting: Grace | None
    send: Callable[[JobSpec, str], None]


_REGISTERED: dict[int, dict[str, _Registration]] = {}
"""Each registered Celery app's worker sides, by the app's ``id``, then by the name of the
render task :func:`register` registered (one per kind of project)."""


def run_attempt(task: Task[Any, Any], key: object, *, registered: str | None = None) -> str:
    """Render the project's started attempt: the body of the app's own Celery task.

    The app keeps its task, sent by ``CeleryExecutor(app, task=...)`` with its own
    arguments; its body becomes one call::

        class TranscodeVideo(celery.Task):
            def run(self, video_id):
                return run_attempt(self, video_id)

    The attempt is the project's newest one in the ledger (or, with
    ``task_always_eager``, the job this process's runner started): rendered here by the
    worker process's runner (the factory given to :func:`register`, which must have run
    on ``task.app``), fenced by the attempt, its lease renewed, its progress written; a
    render another live worker owns (a duplicate delivery) is retried with ``task.retry``
    once that worker's lease would have run out (at most ``task.max_retries`` times); a
    warm shutdown hands it back through the same task. Call it after the start has
    committed (Django: ``transaction.on_commit``), as for any task that reads the row.

    Args:
        task: The app's bound task (``self`` in its body).
        key: The project's key, as the app's task receives it.
        registered: Which :func:`register` of ``task.app`` renders it, by the ``name``
            given there: needed only when the app registers several (one per kind of
            project, each with its own runner and ledger scope).

    Returns:
        What the delivery did (:class:`Delivery`'s text): ``"rendered"``, ``"not live"``
        (the attempt had ended), ``"owned"``, ``"handed back"``, or ``"no attempt"``
        (the project has no attempt: a task sent by code that does not start renders
        through renderstate).

    Raises:
        RuntimeError: :func:`register` was not called on ``task.app`` in this process.
        ValueError: ``task.app`` has several registrations and ``registered`` names none
            of them (or is left out); nothing was rendered.
        celery.exceptions.Retry: a duplicate delivery, looked at again later.
    """
    registration = _registration(task, registered)
    # Eager (task_always_eager): the job this process's runner started renders here,
    # under that runner's lease; the worker's runner is not even built.
    here = run_waiting(key, task=task.name)
    if here is not None:
        return str(Delivery.RENDERED)
    runners, waiting = registration.runners, registration.waiting
    if waiting is not None:
        _give_grace_on_term(runners, waiting)
    outcome, job = deliver_key(runners.get(), key, task=task.name)
    if outcome is Delivery.NO_ATTEMPT:
        logger.warning("project %s has no render attempt: task %s renders nothing", key, task.name)
    return _settle(task, runners.get(), outcome, job, registration.send)


def _registration(task: Task[Any, Any], registered: str | None) -> _Registration:
    """The worker side of :func:`register` that renders ``task``'s projects."""
    found = _REGISTERED.get(id(task.app))
    if not found:
        msg = (
            f"run_attempt() in task {task.name!r} needs the worker's runner: call "
            f"renderstate.runner.celery.register(app, make_runner) where the worker imports "
            f"the Celery app {task.app.main!r}"
        )
        raise RuntimeError(msg)
    if registered is None and len(found) == 1:
        return next(iter(found.values()))
    if registered is not None and registered in found:
        return found[registered]
    names = ", ".join(repr(name) for name in sorted(found))
    if registered is None:
        msg = (
            f"run_attempt() in task {task.name!r}: the Celery app {task.app.main!r} has "
            f"{len(found)} renderstate registrations ({names}), each with its own runner; "
            f"name the one whose runner renders this task's projects: "
            f"run_attempt(self, key, registered=<the name given to register()>). Nothing "
            f"was rendered"
        )
    else:
        msg = (
            f"run_attempt(registered={registered!r}) in task {task.name!r}: the Celery app "
            f"{task.app.main!r} has no such registration; its registrations are {names} "
            f"(the name= given to register()). Nothing was rendered"
        )
    raise ValueError(msg)


def _settle(
    task: Task[Any, Any],
    runner: RenderRunner[Any],
    outcome: Delivery,
    job: RenderJob[Any] | None,
    send: Callable[[JobSpec, str], None],
) -> str:
    """After a delivery: retry a duplicate, send a handed-back render again, log the end."""
    if outcome is Delivery.OWNED:
        assert job is not None
        owned = job.error
        assert isinstance(owned, AttemptOwnedError)
        # Neither render twice nor drop it yet: if the owner dies before its own
        # message is redelivered, this retry is what takes the attempt over.
        limit = task.max_retries
        if limit is None or task.request.retries < limit:
            countdown = owned.retry_after + _MARGIN
            logger.info(
                "attempt %s is rendered by %s: looking again in %.1f s",
                owned.attempt_id,
                owned.worker,
                countdown,
            )
            raise task.retry(countdown=countdown)
        logger.warning(
            "attempt %s is still rendered by %s after %s retries: dropping this delivery",
            owned.attempt_id,
            owned.worker,
            limit,
        )
    elif outcome is Delivery.HANDED_BACK:
        assert job is not None
        _send_back(runner, job, send)
    elif job is not None:
        logger.info(
            "attempt %s of project %s ended %s", job.attempt_id, job.project_key, job.status
        )
    return str(outcome)


def _send_to_own_task(
    app: Celery,
    runner: RenderRunner[Any],
    name: str,
    spec: JobSpec,
    sending: dict[str, Any],
    *,
    own_args: bool,
) -> bool:
    """Send ``spec``'s render again through the app's task ``name``, with its arguments.

    The arguments are what the worker runner's own ``CeleryExecutor(task=...)`` makes of
    the project, when it has one for that task; else the project's key as the ledger
    stores it (text), unless the app sent its own arguments (``own_args``): then nothing
    is sent and ``False`` returned, for the render task to render the attempt instead.
    """
    task = app.tasks[name]
    executor = runner._state.executor
    args: Sequence[Any] | None = None if own_args else (decode_key(spec.project_key),)
    if isinstance(executor, CeleryExecutor) and executor.task_name == name:
        loader = runner._loader
        project = None if loader is None else loader(spec.project_key)
        if project is not None:
            args = executor.args_of(project)
    if args is None:
        logger.warning(
            "attempt %s was sent to %s with the app's own arguments, which this worker "
            "cannot make: it goes to renderstate's render task instead. Build the worker's "
            "runner with the same CeleryExecutor(app, task=..., args=...) to send it "
            "through %s",
            spec.attempt_id,
            name,
            name,
        )
        return False
    sending.pop("ignore_result", None)
    task.apply_async(args=args, **sending)
    return True


def _connect(runners: RunnerPerProcess, sweeper: Sweeper | None, waiting: Grace | None) -> None:
    """Connect the worker's signals: start sweeping, a warm shutdown's grace, closing."""

    def process_started(**_: object) -> None:
        # Each process that renders (a prefork child; the worker with the solo pool).
        if sweeper is not None:
            sweeper.start()

    def worker_started(sender: Any = None, **_: object) -> None:
        # The threads pool sends no worker_process_init: the worker itself renders.
        if sweeper is not None and not _forks(sender):
            sweeper.start()

    def shutting_down(how: str = "Warm", **_: object) -> None:
        if how != "Warm" or waiting is None:
            return
        waiting.begin()  # the renders of this process (solo, threads)
        for child in _pool_children():
            # A prefork child gets the same grace (its handler counts it).
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGTERM)

    def stopped(**kwargs: object) -> None:
        if sweeper is not None:
            sweeper.stop()
        runners.close(**kwargs)

    worker_process_init.connect(process_started, weak=False)
    worker_ready.connect(worker_started, weak=False)
    worker_shutting_down.connect(shutting_down, weak=False)
    worker_process_shutdown.connect(stopped, weak=False)
    worker_shutdown.connect(stopped, weak=False)


def _primary_key(project: Any) -> Any:
    """The project's primary key, as its ORM has it (``pk``, else ``id``)."""
    for name in ("pk", "id"):
        key = getattr(project, name, None)
        if key is not None:
            return key
    msg = (
        f"CeleryExecutor(task=...) cannot tell the key of {project!r} (no pk or id): "
        "give args=lambda project: (...) the task's arguments"
    )
    raise TypeError(msg)


def _recorded_task_id(runner: RenderRunner[Any], spec: JobSpec) -> str | None:
    """The task id recorded on ``spec``'s attempt (None if none, or if it cannot be read)."""
    if runner.ledger is None or spec.attempt_id is None:
        return None
    try:
        attempt = runner.ledger.get(spec.attempt_id)
    except Exception:  # sent under a new id rather than not at all
        logger.warning("could not read attempt %s's task id", spec.attempt_id, exc_info=True)
        return None
    return None if attempt is None else attempt.task_id


def _send_back(
    runner: RenderRunner[Any], job: RenderJob[Any], send: Callable[[JobSpec, str], None]
) -> None:
    """Send a handed-back attempt to its queue again (this message is then acknowledged)."""
    attempt = job.attempt
    assert attempt is not None
    assert runner.ledger is not None
    spec = job.spec
    if spec.trace is None and attempt.traceparent is not None:
        # No SDK traces this worker: the request's trace context, as the start stored it.
        spec = dataclasses.replace(spec, trace=telemetry.carried(attempt))
    try:
        send(spec, attempt.executor or EXECUTOR)
    except Exception:
        # Queued with one lease: a worker's sweep sends it again once that has run out.
        logger.exception("could not send attempt %s again; a sweep will", attempt.id)
        return
    runner.ledger.hand_off(attempt)
    logger.warning(
        "attempt %s of project %s was handed back to the queue (the worker shuts down)",
        attempt.id,
        job.project_key,
    )


def _is_pool_child() -> bool:
    """Whether this process is a prefork pool's child (not the worker itself)."""
    return bool(current_process().name != "MainProcess")


def _forks(consumer: Any) -> bool:
    """Whether the worker's pool runs tasks in processes it forks (prefork), or inline."""
    pool = getattr(getattr(consumer, "controller", None), "pool", None)
    module = type(pool).__module__ if pool is not None else ""
    return module.endswith(("prefork", "solo"))  # both send worker_process_init


def _pool_children() -> list[int]:
    """The process ids of this process's prefork pool children."""
    return [child.pid for child in active_children() if child.pid is not None]


_TERM_HANDLED: dict[int, bool] = {}
"""The processes (by id) whose SIGTERM gives their render the shutdown's grace."""


def _give_grace_on_term(runners: RunnerPerProcess, waiting: Grace) -> None:
    """In a prefork child, on its first task: SIGTERM gives its render the grace.

    Billiard sets its own SIGTERM handler after the child's initialisation (it exits the
    child at once, which failed the render), hence here, in the task, in the main thread.
    """
    pid = os.getpid()
    if _TERM_HANDLED.get(pid) or not _is_pool_child():
        return
    _TERM_HANDLED[pid] = True
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        runner = runners.current()
        # A second SIGTERM (a cold shutdown), or one while idle: as before.
        signal.signal(signal.SIGTERM, previous)
        if runner is None or not rendering(runner):
            if callable(previous):
                previous(signum, frame)
            else:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
            return
        waiting.begin()

    signal.signal(signal.SIGTERM, handler)
