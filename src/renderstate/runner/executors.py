"""Executors run the render runner's jobs; each implements :class:`~renderstate.typing.Executor`.

- :class:`ThreadExecutor`: a bounded pool of worker threads in this process (the default).
- :class:`AppTaskExecutor`: the app's own task (its thread task manager, its own queue)
  renders each job, by calling :meth:`RenderRunner.run_attempt
  <renderstate.runner.RenderRunner.run_attempt>`.
- :class:`renderstate.testing.InlineExecutor`: runs each job in the caller's thread (tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from renderstate.runner import _awaiting
from renderstate.runner._job import RenderJob
from renderstate.typing import Job

__all__ = ["AppTaskExecutor", "ThreadExecutor"]

logger = logging.getLogger("renderstate.runner")


class ThreadExecutor:
    """Runs jobs on at most ``max_workers`` threads; further jobs wait in a FIFO queue.

    Args:
        max_workers: How many renders run at once.
        thread_name_prefix: Names the worker threads, for logs and debuggers.

    Raises:
        ValueError: ``max_workers`` is less than 1.
    """

    def __init__(self, max_workers: int = 2, *, thread_name_prefix: str = "renderstate") -> None:
        if max_workers < 1:
            msg = f"max_workers must be at least 1, got {max_workers}"
            raise ValueError(msg)
        self.max_workers = max_workers
        """How many jobs run at once."""
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix=thread_name_prefix)

    def schedule(self, job: Job, /) -> None:
        """Queue ``job``; a worker thread calls ``job.run()`` as soon as it is free.

        Raises:
            RuntimeError: the executor was shut down.
        """
        future = self._pool.submit(job.run)
        future.add_done_callback(_report)

    def shutdown(self, wait: bool = True) -> None:
        """Accept no more jobs; queued jobs still run. With ``wait``, block until all have."""
        self._pool.shutdown(wait=wait)


class AppTaskExecutor:
    """Leaves each job to the app's own task, which renders it with ``runner.run_attempt(key)``.

    For an app that keeps its own way of running work in the background (a thread task
    manager, a queue of its own) and its own task function, called with its own
    arguments, as its tests expect: the runner does the guarded start, and the app's code
    calls its task as before; the task's body calls :meth:`RenderRunner.run_attempt
    <renderstate.runner.RenderRunner.run_attempt>` with the project's key, which renders
    the started job in the task's thread, with every guarantee of the runner's own
    threads (the lease kept alive meanwhile, the fenced end, the file published or left
    untouched, cancel, progress).

    Args:
        send: Called with each started job (``job.project_key``, ``job.attempt_id``) to
            hand it to the app's task (``lambda job: task_manager.submit_task(...)``). If
            it raises, the runner fails the project with that error and re-raises it to
            ``submit()``'s caller: nothing is left PROCESSING. ``None``: the app's own
            code hands the task over itself, after ``submit()`` returns, as it always did.

    A job waits in this process until its task runs it (a job nobody runs, its task
    lost or mocked in a test, is ended by :meth:`RenderRunner.stop_jobs
    <renderstate.runner.RenderRunner.stop_jobs>`, a cancel, shutdown or, after the
    process died, recovery). In immediate mode (an app's tests) the runner renders the
    job in ``submit()``, and the app's task then finds it ended.
    """

    def __init__(self, send: Callable[[RenderJob[Any]], object] | None = None) -> None:
        self.send = send
        """What hands a started job to the app's task (``None``: the app's own code)."""

    def __repr__(self) -> str:
        return f"<AppTaskExecutor send={self.send!r}>"

    def schedule(self, job: Job, /) -> None:
        """Keep ``job`` for the app's task, then call :attr:`send` with it.

        Raises:
            TypeError: ``job`` is not a :class:`~renderstate.RenderJob` of a runner.
            Exception: whatever :attr:`send` raised (the runner fails the project).
        """
        if not isinstance(job, RenderJob):
            msg = f"AppTaskExecutor schedules the RenderJobs of a RenderRunner, got {job!r}"
            raise TypeError(msg)
        _awaiting.wait_for_task(job)
        if self.send is None:
            return
        try:
            self.send(job)
        except BaseException:
            _awaiting.forget(job)
            raise

    def shutdown(self, wait: bool = True) -> None:
        """Nothing to stop: the runner's shutdown ends the jobs no task has taken."""


def _report(future: Future[None]) -> None:
    # The runner's jobs handle their own errors; only a KeyboardInterrupt or SystemExit
    # that a job re-raised after failing its project gets here. A worker thread cannot
    # stop the process, so say so instead of letting the future swallow it.
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        logger.warning(
            "a render job in a worker thread ended with %s; the project was marked FAILED "
            "and the process keeps running",
            type(error).__name__,
            exc_info=error,
        )
