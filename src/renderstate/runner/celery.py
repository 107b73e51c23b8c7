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

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

try:
    from celery import Celery, Task
    from celery.signals import worker_process_shutdown, worker_shutdown
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    msg = "renderstate.runner.celery needs Celery: pip install 'renderstate[celery]'"
    raise ImportError(msg) from exc

from renderstate.exceptions import AttemptOwnedError
from renderstate.runner import JobSpec, RenderJob, RenderRunner
from renderstate.runner._delivering import Delivery, RunnerPerProcess, deliver
from renderstate.typing import Job

__all__ = ["TASK_NAME", "TASK_OPTIONS", "CeleryExecutor", "Delivery", "deliver", "register"]

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
            in the ledger).

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
    ) -> None:
        self.app = app
        """The Celery app the specs are sent through."""
        self.queue = queue
        """The queue the specs are sent to (``None``: Celery's routing decides)."""
        self.task_name = task_name
        """The task the specs are sent to."""
        self._options = dict(options or {})

    def __repr__(self) -> str:
        return (
            f"<CeleryExecutor app={self.app.main!r} task={self.task_name!r} queue={self.queue!r}>"
        )

    @property
    def runs_in_caller(self) -> bool:
        """Whether jobs run in the caller's thread: the app's ``task_always_eager``."""
        return bool(self.app.conf.task_always_eager)

    def schedule(self, job: Job, /) -> None:
        """Send ``job.spec`` to the render task; return once the broker has accepted it.

        With ``task_always_eager``, run the job here instead, before returning.

        Then the job is handed off (:meth:`RenderJob.hand_off`): this process follows its
        attempt in the ledger.

        Raises:
            TypeError: ``job`` is not a :class:`~renderstate.RenderJob` of a runner.
            kombu.exceptions.OperationalError: the broker cannot be reached.
            kombu.exceptions.EncodeError: the app's serializer refused the spec.
        """
        if not isinstance(job, RenderJob):
            msg = f"CeleryExecutor schedules the RenderJobs of a RenderRunner, got {job!r}"
            raise TypeError(msg)
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
        self.app.send_task(self.task_name, args=(spec.to_dict(),), **options)
        # Only once the broker has it: if sending raised, the runner fails the attempt.
        job.hand_off()
        logger.debug("sent attempt %s of project %s", spec.attempt_id, spec.project_key)

    def shutdown(self, wait: bool = True) -> None:
        """Nothing to stop: the specs already sent belong to the workers."""


# ---------------------------------------------------------------------- the worker side


def register(
    app: Celery,
    runner_factory: Callable[[], RenderRunner[Any]],
    *,
    name: str = TASK_NAME,
    **options: Any,
) -> Task[Any, Any]:
    """Register the render task on ``app``; call it where your worker imports the app.

    Args:
        app: Your Celery app.
        runner_factory: Builds the worker's :class:`~renderstate.RenderRunner`, with a
            ledger and a loader; called once per worker process, on its first task.
        name: The task's name; the default :data:`TASK_NAME` is what
            :class:`CeleryExecutor` sends to.
        options: Task options overriding :data:`TASK_OPTIONS` (``queue``,
            ``time_limit`` ...).

    Returns:
        The registered task. Its result is the :class:`Delivery` text.
    """
    runners = RunnerPerProcess(runner_factory)
    worker_process_shutdown.connect(runners.close, weak=False)
    worker_shutdown.connect(runners.close, weak=False)

    def render(task: Task[Any, Any], spec: dict[str, Any]) -> str:
        outcome, job = deliver(runners.get(), JobSpec.from_dict(spec))
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
        elif job is not None:
            logger.info(
                "attempt %s of project %s ended %s",
                spec.get("attempt_id"),
                job.project_key,
                job.status,
            )
        return str(outcome)

    task: Task[Any, Any] = app.task(name=name, bind=True, **{**TASK_OPTIONS, **options})(render)
    return task
