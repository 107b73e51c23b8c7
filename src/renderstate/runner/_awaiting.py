"""Jobs waiting for the app's own task to run them, in this process.

An executor that hands a job to the app's own task (:class:`AppTaskExecutor
<renderstate.runner.executors.AppTaskExecutor>`, ``CeleryExecutor(app, task=...)``) puts
the started job here before it calls the app's code; the app's task body, calling
:meth:`RenderRunner.run_attempt <renderstate.runner.RenderRunner.run_attempt>` with the
project's key, takes it back and runs it in its own thread. A task run in this very
process (the app's thread pool, Celery's ``task_always_eager``) so renders the job its
runner started, under the lease that runner keeps alive, with no hand-off through the
ledger; a task run in another process finds nothing here and goes through the ledger.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from renderstate._attempts import encode_key

if TYPE_CHECKING:
    from renderstate.runner._job import RenderJob

__all__ = ["forget", "take", "wait_for_task"]

_lock = threading.Lock()
_waiting: dict[str, list[tuple[weakref.ref[RenderJob[Any]], str | None]]] = {}
"""The waiting jobs by the ledger's text of their project key, oldest first, each with the
name of the task it waits for (``None``: any). Weak: a job nobody runs (its task was
lost, or mocked in a test) goes with its runner."""


def wait_for_task(job: RenderJob[Any], task: str | None = None) -> None:
    """Keep ``job`` until the app's task takes it (or :func:`forget` drops it).

    Args:
        job: The started job.
        task: The name of the task that will take it (a Celery task's), if it has one.
    """
    key = encode_key(job.project_key)
    with _lock:
        jobs = [entry for entry in _waiting.get(key, []) if _unfinished(entry)]
        jobs.append((weakref.ref(job), task))
        _waiting[key] = jobs


def take(
    key: object, *, scope: str | None = None, task: str | None = None
) -> RenderJob[Any] | None:
    """Return the oldest unfinished job waiting for the task of project ``key``, removed.

    Args:
        key: The project's key as the app's task has it (``7``, ``"7"``, a UUID or its
            text: compared as the ledger stores keys).
        scope: The caller's kind of project (its loader's scope), when it has one: a job
            of another kind with the same key is left alone.
        task: The name of the calling task, when it has one: a job waiting for another
            task is left alone.
    """
    text = encode_key(key)
    with _lock:
        entries = _waiting.get(text, [])
        for entry in entries:
            job, waits_for = entry[0](), entry[1]
            if job is None or job.done():
                continue
            if scope is not None and job.attempt is not None and job.attempt.scope != scope:
                continue
            if task is not None and waits_for is not None and waits_for != task:
                continue
            entries.remove(entry)
            _tidy(text)
            return job
        _tidy(text)
        return None


def forget(job: RenderJob[Any]) -> bool:
    """Stop keeping ``job``; whether it was still waiting (no task had taken it)."""
    text = encode_key(job.project_key)
    with _lock:
        entries = _waiting.get(text, [])
        for entry in entries:
            if entry[0]() is job:
                entries.remove(entry)
                _tidy(text)
                return True
        return False


def _unfinished(entry: tuple[weakref.ref[RenderJob[Any]], str | None]) -> bool:
    job = entry[0]()
    return job is not None and not job.done()


def _tidy(text: str) -> None:
    """Drop the key's finished or collected jobs, and the key when none is left."""
    kept = [entry for entry in _waiting.get(text, []) if _unfinished(entry)]
    if kept:
        _waiting[text] = kept
    else:
        _waiting.pop(text, None)
