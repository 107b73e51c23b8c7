"""Executors run the render runner's jobs; each implements :class:`~renderstate.typing.Executor`.

- :class:`ThreadExecutor`: a bounded pool of worker threads in this process (the default).
- :class:`renderstate.testing.InlineExecutor`: runs each job in the caller's thread (tests).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from renderstate.typing import Job

__all__ = ["ThreadExecutor"]

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
