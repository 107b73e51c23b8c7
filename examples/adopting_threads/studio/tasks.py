"""The app's own background task manager and render task. Kept by the swap."""

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import close_old_connections

from .renders import get_runner


class TaskManager:
    """Runs functions in a pool of threads and remembers them by id."""

    def __init__(self, max_workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="studio")
        self._ids = itertools.count(1)
        self._tasks: dict[int, Future[None]] = {}
        self._lock = threading.Lock()

    def submit_task(self, function: Callable[[], object]) -> int:
        """Run ``function()`` in the background; return the task's id."""
        with self._lock:
            task_id = next(self._ids)
            self._tasks[task_id] = self._pool.submit(self._run, function)
        return task_id

    def wait(self, task_id: int) -> None:
        """Block until the task has ended."""
        self._tasks[task_id].exception()

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)

    @staticmethod
    def _run(function: Callable[[], object]) -> None:
        try:
            function()
        finally:
            close_old_connections()  # each worker thread has its own database connection


def render_task(project_id: int) -> None:
    """The app's render task, which the export view hands its task manager as before."""
    # The swap: the runner renders the job the view started, here, in this thread.
    get_runner().run_attempt(project_id)


task_manager = TaskManager()
