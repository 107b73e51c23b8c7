"""Immediate mode: every render runs in the caller's thread, before ``submit()`` returns.

For an app's test suite (and one-off scripts): no executor, no broker, no thread that
outlives the call, no heartbeat thread writing beside the caller's transaction. It is on
when, in this order of precedence:

1. :func:`renderstate.testing.immediate_renders` is active (a test that cannot change how
   the app built its runner);
2. the runner was built with ``immediate=True`` (an app passes its setting:
   ``RenderRunner(..., immediate=settings.RENDERSTATE_IMMEDIATE)``);
3. the environment variable ``RENDERSTATE_IMMEDIATE`` is ``1``, ``true``, ``yes`` or ``on``.

A Celery executor honours Celery's own ``task_always_eager`` the same way
(:class:`~renderstate.runner.celery.CeleryExecutor`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["ENVIRONMENT_VARIABLE", "RUNNERS", "forced", "is_immediate", "running", "running_states"]

RUNNERS: Final[weakref.WeakSet[Any]] = weakref.WeakSet()
"""Every :class:`~renderstate.runner.RenderRunner` of this process, for
:func:`renderstate.testing.stop_all_jobs` (a test stops the jobs of runners it never saw)."""

_running_lock = threading.Lock()
_running: dict[int, tuple[object, int]] = {}
"""The state of each runner with a job running, by ``id``, and how many it runs.

Held strongly, unlike :data:`RUNNERS`: an app that dropped its runner while a render
runs (the runner is garbage-collected, its job is not) still has that job stopped by
:func:`renderstate.testing.stop_all_jobs`. Each entry goes when its last job ends."""

ENVIRONMENT_VARIABLE: Final = "RENDERSTATE_IMMEDIATE"

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})

_lock = threading.Lock()
_forced: list[tuple[object, bool]] = []  # the latest immediate_renders() still open decides


def is_immediate(configured: bool | None, executor: object = None) -> bool:
    """Whether a render submitted now runs in the caller's thread.

    ``executor`` counts when it runs each job in the caller anyway (its
    ``runs_in_caller`` is true: Celery's ``task_always_eager``).

    Raises:
        ValueError: ``RENDERSTATE_IMMEDIATE`` holds something that is not a yes or a no.
    """
    with _lock:
        if _forced:
            return _forced[-1][1]
    if configured is not None:
        return configured
    if getattr(executor, "runs_in_caller", False):
        return True
    text = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    msg = (
        f"the environment variable {ENVIRONMENT_VARIABLE}={os.environ[ENVIRONMENT_VARIABLE]!r} "
        f"is neither a yes nor a no: set it to 1 (renders run in the caller's thread) or "
        f"0 (renders run in the executor), or unset it"
    )
    raise ValueError(msg)


@contextlib.contextmanager
def forced(enabled: bool) -> Iterator[None]:
    """Within the block, every runner of this process renders immediately (or never)."""
    token = object()
    with _lock:
        _forced.append((token, enabled))
    try:
        yield
    finally:
        with _lock:
            _forced[:] = [entry for entry in _forced if entry[0] is not token]


@contextlib.contextmanager
def running(state: object) -> Iterator[None]:
    """Keep ``state`` (a runner's) reachable for :func:`running_states` while a job runs."""
    key = id(state)
    with _running_lock:
        _, count = _running.get(key, (state, 0))
        _running[key] = (state, count + 1)
    try:
        yield
    finally:
        with _running_lock:
            _, count = _running[key]
            if count == 1:
                del _running[key]
            else:
                _running[key] = (state, count - 1)


def running_states() -> list[object]:
    """The states of the runners that have a job running now, collected or not."""
    with _running_lock:
        return [state for state, _ in _running.values()]
