"""Delivering a job spec in a task queue's worker: what the Celery and Django tasks share.

A task queue delivers each spec at least once; :func:`deliver` renders it only when it is
this delivery's to render (the ledger's :meth:`~renderstate.ledger.Ledger.begin` decides),
and :class:`RunnerPerProcess` builds the worker process's runner on first use.
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from renderstate._attempts import encode_key
from renderstate._jobs import JobSpec
from renderstate.exceptions import AttemptOwnedError, RenderHandedBackError
from renderstate.runner import _awaiting
from renderstate.runner._requeuing import spec_of
from renderstate.runner.executors import AppTaskExecutor

if TYPE_CHECKING:
    from renderstate.runner._job import RenderJob
    from renderstate.runner._runner import RenderRunner

__all__ = ["Delivery", "RunnerPerProcess", "deliver", "deliver_key", "run_waiting"]


class Delivery(str, enum.Enum):
    """What one delivery of the render task did; its value is the task's result."""

    RENDERED = "rendered"
    """The attempt was rendered here (the project's status says how it ended)."""
    NOT_LIVE = "not live"
    """The attempt had already ended (completed, failed, superseded, recovered): nothing
    was done."""
    OWNED = "owned"
    """Another live worker renders the attempt (a duplicate delivery): nothing was done.
    The task queue's integration delivers it again after that worker's lease (Celery's
    retry, a deferred Django task): if the worker died meanwhile, that delivery takes the
    attempt over and renders it."""

    NO_ATTEMPT = "no attempt"
    """The project has no attempt in the ledger, and no job of this process waits for
    the task: a task sent by code that does not start renders through renderstate (the
    app's code before the swap, in a queue during the deploy)."""

    HANDED_BACK = "handed back"
    """The render began here and was handed back to the queue before its end (the
    worker's warm shutdown, :meth:`RenderRunner.hand_back`): the attempt is queued again
    for another worker; nothing was saved."""

    def __str__(self) -> str:
        return self.value


def deliver(runner: RenderRunner[Any], spec: JobSpec) -> tuple[Delivery, RenderJob[Any] | None]:
    """Render one delivered spec in this process, unless it is not this delivery's to render.

    What the render task does: :meth:`RenderRunner.execute` the spec, whose
    :meth:`Ledger.begin <renderstate.ledger.Ledger.begin>` makes the attempt this
    process's render: a queued attempt, or one whose worker died (its lease expired; the
    temporary files it left on this machine are removed first). An attempt that ended
    renders nothing (:attr:`Delivery.NOT_LIVE`); one that a live worker renders is a
    duplicate delivery (:attr:`Delivery.OWNED`, the job's error an
    :class:`~renderstate.AttemptOwnedError` saying when that worker's lease runs out).
    The body of the Celery task and of the Django task, usable from any other task queue
    alike.

    Returns:
        What happened, and the ended job (``None`` when the attempt had already ended).

    Raises:
        TypeError: the runner has no ledger (a worker cannot fence without one).
        ValueError: the spec names no attempt.
    """
    ledger = runner.ledger
    if ledger is None:
        msg = (
            "a task worker's RenderRunner needs a ledger: create it with "
            "ledger=Ledger(store) and loader=store.loader(Project)"
        )
        raise TypeError(msg)
    if spec.attempt_id is None:
        msg = f"this job spec names no attempt ({spec!r}): send it from a runner with a ledger"
        raise ValueError(msg)
    seen = ledger.get(spec.attempt_id)
    if seen is not None and not seen.active:
        return Delivery.NOT_LIVE, None
    job = runner.execute(spec)
    if isinstance(job.error, AttemptOwnedError):
        return Delivery.OWNED, job
    if isinstance(job.error, RenderHandedBackError) and job.attempt is not None:
        back = ledger.get(job.attempt.id)
        if back is not None and back.owner == job.attempt.owner and back.active:
            return Delivery.HANDED_BACK, job
    return Delivery.RENDERED, job


def run_waiting(
    key: object, *, scope: str | None = None, task: str | None = None
) -> RenderJob[Any] | None:
    """Run the job of this process waiting for the app's task of project ``key``, if any.

    Returns:
        The job, ended; ``None`` if no job of this process waits for that task.
    """
    if key is None:
        msg = "run_attempt() needs the project's key (the argument the app's task was sent)"
        raise TypeError(msg)
    waiting = _awaiting.take(key, scope=scope, task=task)
    if waiting is not None:
        waiting.run()
    return waiting


def deliver_key(
    runner: RenderRunner[Any], key: object, *, task: str | None = None
) -> tuple[Delivery, RenderJob[Any] | None]:
    """Render the project's started attempt in this thread: the body of the app's own task.

    The app's task is given the project's key, as the app's code always sent it; the
    attempt is found from it. A job that a runner of this process started and handed to
    the app's task (:mod:`renderstate.runner._awaiting`: a thread task manager, Celery's
    eager mode) runs here under that runner's lease. Otherwise, with a ledger, the
    project's newest attempt is read: a live one is delivered exactly as a spec naming it
    would be (:func:`deliver`: begun here, or refused as another live worker's), an ended
    one renders nothing (:attr:`Delivery.NOT_LIVE`), and a project without attempts is
    :attr:`Delivery.NO_ATTEMPT`.

    Raises:
        TypeError: the key is ``None``, or a task in another process has no job here
            and the runner has no ledger and loader to find its attempt.
    """
    loader = runner._loader
    waiting = run_waiting(key, scope=None if loader is None else loader.scope, task=task)
    if waiting is not None:
        return Delivery.RENDERED, waiting
    ledger = runner.ledger
    in_process = isinstance(runner._state.executor, AppTaskExecutor)
    if ledger is None or loader is None or in_process:
        # An app task of this process (a thread task manager) comes for a job of this
        # process only: none waiting means it ended here (cancelled, or rendered in
        # immediate mode before its task ran), and the database is not asked.
        if _has_job(runner, key):
            # This runner's job of the project ended before its task ran (cancelled, or
            # rendered already: a second call of the task): nothing to run.
            return Delivery.NOT_LIVE, None
        if in_process and ledger is not None and loader is not None:
            return Delivery.NO_ATTEMPT, None
        msg = (
            "run_attempt() found no job of this process waiting for this task, and the "
            "runner has no ledger to find the attempt in another process: create it with "
            "ledger=Ledger(store) and loader=store.loader(Project)"
        )
        raise TypeError(msg)
    attempt = ledger.current(loader.scope, key)
    if attempt is None:
        return Delivery.NO_ATTEMPT, None
    if not attempt.active:
        return Delivery.NOT_LIVE, None
    return deliver(runner, spec_of(runner._state, attempt))


def _has_job(runner: RenderRunner[Any], key: object) -> bool:
    """Whether ``runner`` holds a job (ended or not) of the project with that key."""
    text = encode_key(key)
    registry = runner._state.registry
    with registry.lock:
        return any(encode_key(job.project_key) == text for job in registry.jobs.values())


class RunnerPerProcess:
    """The worker process's runner, built on first use: after the fork, never before."""

    def __init__(self, factory: Callable[[], RenderRunner[Any]]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._runner: RenderRunner[Any] | None = None
        self._pid = 0

    def get(self) -> RenderRunner[Any]:
        with self._lock:
            if self._runner is None or self._pid != os.getpid():
                # A forked child must not reuse its parent's connections or threads.
                self._runner = self._factory()
                self._pid = os.getpid()
            return self._runner

    def current(self) -> RenderRunner[Any] | None:
        """This process's runner if it was built here, else ``None`` (nothing is built)."""
        with self._lock:
            return self._runner if self._pid == os.getpid() else None

    def close(self, **_: object) -> None:
        with self._lock:
            runner, self._runner = self._runner, None
            mine = self._pid == os.getpid()
        if runner is not None and mine:
            runner.shutdown(wait=True)
