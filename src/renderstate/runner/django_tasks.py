"""Render on Django's tasks framework: an executor that enqueues job specs, and the task.

``django.tasks`` on Django 6, the ``django-tasks`` backport before it: the same code, on any
backend that implements the framework's API and can defer a task (``run_after``), such as
``django-tasks-db``'s database backend and its ``db_worker`` command. The web process's
runner does the guarded start (409 at once) and records the attempt in the ledger, then
:class:`DjangoTasksExecutor` enqueues the job's spec (JSON, never a closure) to the task
:data:`render`::

    from renderstate.runner.django_tasks import DjangoTasksExecutor

    runner = RenderRunner(DjangoAdapter(), renderer, media_root=settings.MEDIA_ROOT,
                          ledger=Ledger(store), loader=store.loader(Project),
                          executor=DjangoTasksExecutor())

In the worker, the task builds its runner once per process from the function the setting
``RENDERSTATE_RUNNER`` names (``"mysite.renders.make_runner"``), and renders each spec
through the runner's own code path (temporary file, fsync, atomic replace, heartbeats,
fenced end).

A database queue does not hand back a task whose worker died: it stays RUNNING. So each
live attempt is watched by its own deliveries: the executor enqueues the render and a first
look, deferred by one lease; every delivery that finds its attempt live first enqueues the
next look, a lease later, then begins the attempt in the ledger. A look finds the attempt
ended (nothing to do, the chain ends), rendered by a live worker (a duplicate: refused,
looks again later), or held by a worker whose lease expired: it takes the render over.
Delivery is at least once; the state effect is exactly once (the ledger's fence). See the
"Django tasks" page.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string

try:  # Django 6 ships the framework ...
    from django.tasks import TaskContext, task, task_backends
    from django.tasks.backends.immediate import ImmediateBackend
except ImportError:  # ... Django 5.2 has the backport
    try:
        from django_tasks import (  # type: ignore[assignment,no-redef,unused-ignore]
            TaskContext,
            task,
            task_backends,
        )
        from django_tasks.backends.immediate import (  # type: ignore[assignment,no-redef,unused-ignore]
            ImmediateBackend,
        )
    except ImportError as exc:  # pragma: no cover - exercised without the extra installed
        msg = (
            "renderstate.runner.django_tasks needs Django's tasks framework: Django 6, or "
            "on Django 5.2 the backport, pip install 'renderstate[django-tasks]'"
        )
        raise ImportError(msg) from exc

from renderstate._attempts import Attempt
from renderstate.ledger import DEFAULT_LEASE
from renderstate.runner import JobSpec, RenderJob, RenderRunner
from renderstate.runner._delivering import Delivery, RunnerPerProcess, deliver
from renderstate.typing import Job

__all__ = [
    "MAX_DELIVERIES",
    "RUNNER_SETTING",
    "Delivery",
    "DjangoTasksExecutor",
    "render",
]

logger = logging.getLogger("renderstate.runner.django_tasks")

RUNNER_SETTING: Final = "RENDERSTATE_RUNNER"
"""The setting naming the function (dotted path) that builds a worker's runner."""

MAX_DELIVERIES: Final = 720
"""How many looks one chain takes at a live attempt before it stops (six hours of render
at the default 30 s lease); recovery covers an owner that dies later."""

_MARGIN: Final = 0.5
"""Seconds added to a lease before the next look, so that it finds an expired one expired."""


class DjangoTasksExecutor:
    """Enqueues each job's spec to :data:`render`; nothing renders in this process.

    Args:
        backend: The ``TASKS`` alias to enqueue on; by default the task's (``"default"``).
        queue_name: The queue to enqueue on (``db_worker --queue-name``); by default the
            task's (``"default"``).
        priority: The tasks' priority (-100 to 100); by default the task's (0).

    Raises:
        ValueError: the backend cannot defer a task (``run_after``) and is not the
            ``ImmediateBackend``.
        django_tasks.exceptions.InvalidTaskError: a queue the backend does not list in
            its ``QUEUES``, or a priority out of range (``django.tasks.exceptions`` on
            Django 6).

    Enqueueing is synchronous: if the backend refuses (its database is down, a queue it
    does not know), :meth:`schedule` raises and the runner fails the attempt and the project
    with that reason before re-raising to the caller, so no claim is left orphaned. With
    the database backend the enqueued rows are written in the caller's transaction: a view
    under ``ATOMIC_REQUESTS`` that rolls back leaves neither a start nor a task.

    With the ``ImmediateBackend`` (Django's default, and an app's test settings), nothing is
    enqueued: each job runs in the caller's thread, before ``submit()`` returns (see "Tests
    of an app").
    """

    def __init__(
        self,
        *,
        backend: str | None = None,
        queue_name: str | None = None,
        priority: int | None = None,
    ) -> None:
        self.task = render.using(backend=backend, queue_name=queue_name, priority=priority)
        """The task the specs are enqueued to, with this executor's backend and queue."""
        chosen = task_backends[self.task.backend]
        if not chosen.supports_defer and not isinstance(chosen, ImmediateBackend):
            msg = (
                f"the tasks backend {self.task.backend!r} ({type(chosen).__name__}) cannot "
                f"defer a task (run_after), which DjangoTasksExecutor needs to take over the "
                f"render of a worker that died: use django_tasks_db.DatabaseBackend, or "
                f"another backend whose supports_defer is true"
            )
            raise ValueError(msg)

    def __repr__(self) -> str:
        task = self.task
        return (
            f"<DjangoTasksExecutor backend={task.backend!r} queue={task.queue_name!r} "
            f"priority={task.priority!r}>"
        )

    @property
    def route(self) -> str:
        """What the ledger records as the attempt's executor: ``django-tasks``.

        A Celery worker's sweep leaves such attempts alone: this executor's own chain of
        deferred looks takes a dead worker's render over.
        """
        return "django-tasks"

    @property
    def runs_in_caller(self) -> bool:
        """Whether jobs run in the caller's thread: the backend is the ``ImmediateBackend``."""
        return isinstance(task_backends[self.task.backend], ImmediateBackend)

    def schedule(self, job: Job, /) -> None:
        """Enqueue the render of ``job.spec`` and a first look at it, deferred by one lease.

        With the ``ImmediateBackend``, run the job here instead, before returning. Then the
        job is handed off (:meth:`RenderJob.hand_off`): this process follows its attempt in
        the ledger, which records the render task's id (``Attempt.task_id``; the backend
        makes it as it queues the task, after the start) and writes it to the app's
        ``task_id_field`` while the attempt is live and the project PROCESSING.

        Raises:
            TypeError: ``job`` is not a :class:`~renderstate.RenderJob` of a runner with a
                ledger.
        """
        if not isinstance(job, RenderJob):
            msg = f"DjangoTasksExecutor schedules the RenderJobs of a RenderRunner, got {job!r}"
            raise TypeError(msg)
        if self.runs_in_caller:
            job.run()
            return
        attempt = job.attempt
        if attempt is None:
            msg = (
                "DjangoTasksExecutor needs a RenderRunner with a ledger: a job rendered in "
                "another process is fenced by its attempt (create the runner with "
                "ledger=Ledger(store) and loader=store.loader(Project))"
            )
            raise TypeError(msg)
        spec = job.spec.to_dict()
        # The look first: a backend that cannot defer refuses it before anything is queued.
        look = self.task.using(run_after=_after(_lease_of(attempt)))
        look.enqueue(spec, delivery=1)
        # The backend names the task as it queues it: recorded on the attempt by hand_off.
        job.task_id = str(self.task.enqueue(spec, delivery=1).id)
        # Only once both are queued: if enqueueing raised, the runner fails the attempt.
        job.hand_off()
        logger.debug("enqueued attempt %s of project %s", attempt.id, job.project_key)

    def shutdown(self, wait: bool = True) -> None:
        """Nothing to stop: the tasks already enqueued belong to the workers."""


# ---------------------------------------------------------------------- the worker side


def _make_runner() -> RenderRunner[Any]:
    path = getattr(settings, RUNNER_SETTING, None)
    if not isinstance(path, str) or not path:
        msg = (
            f"a Django tasks worker builds its RenderRunner with the function that the "
            f"setting {RUNNER_SETTING} names: set {RUNNER_SETTING} = "
            f'"yourproject.renders.make_runner" (a function returning a RenderRunner with a '
            f"ledger and a loader); it is {path!r}"
        )
        raise ImproperlyConfigured(msg)
    factory = import_string(path)
    runner = factory()
    if not isinstance(runner, RenderRunner) or runner.ledger is None:
        msg = (
            f"{RUNNER_SETTING} = {path!r} returned {runner!r}: it must return a RenderRunner "
            f"with a ledger and a loader (ledger=Ledger(store), loader=store.loader(Project))"
        )
        raise ImproperlyConfigured(msg)
    return runner


_runners = RunnerPerProcess(_make_runner)


@task(takes_context=True)
def render(context: TaskContext[..., str], spec: dict[str, Any], delivery: int = 1) -> str:
    """Render the attempt a spec names, unless it is not this delivery's to render.

    Enqueued by :class:`DjangoTasksExecutor`; each delivery that finds the attempt live
    first enqueues the next look at it (a lease later, at most :data:`MAX_DELIVERIES` in a
    chain), then :func:`~renderstate.runner.celery.deliver` s it.

    Returns:
        The :class:`Delivery` text: ``"rendered"``, ``"not live"`` or ``"owned"``.
    """
    runner = _runners.get()
    ledger = runner.ledger
    assert ledger is not None  # _make_runner checked it
    job_spec = JobSpec.from_dict(spec)
    if job_spec.attempt_id is not None:
        seen = ledger.get(job_spec.attempt_id)
        if seen is not None and not seen.active:
            return str(Delivery.NOT_LIVE)
        # An attempt not in the ledger yet: the first delivery may come before its start
        # committed (deliver() waits for it), a later look never does, so the chain ends.
        if (seen is not None or delivery == 1) and delivery < MAX_DELIVERIES:
            # Before the render: if this worker dies in it, the next look takes it over.
            task = context.task_result.task
            task.using(run_after=_after(ledger.lease)).enqueue(spec, delivery=delivery + 1)
        elif delivery >= MAX_DELIVERIES:
            logger.warning(
                "attempt %s: %s looks taken, this one is the last of its chain",
                job_spec.attempt_id,
                delivery,
            )
    outcome, job = deliver(runner, job_spec)
    if job is not None:
        logger.info(
            "attempt %s of project %s: %s (%s)",
            job_spec.attempt_id,
            job.project_key,
            outcome,
            job.error if outcome is Delivery.OWNED else job.status,
        )
    return str(outcome)


def _lease_of(attempt: Attempt) -> float:
    """The lease the ledger gave ``attempt`` when it started it."""
    if attempt.lease_expires_at is None:  # pragma: no cover - a started attempt has one
        return DEFAULT_LEASE
    return max(attempt.lease_expires_at - attempt.created_at, 0.0)


def _after(lease: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=lease + _MARGIN)
