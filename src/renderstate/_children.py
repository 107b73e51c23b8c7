"""Child processes that die with the render that started them (Linux ``PR_SET_PDEATHSIG``).

A render killed with SIGKILL runs no ``finally``: without help, the ffmpeg processes it
started keep running (an encoder keeps writing its output until its input ends). Every
ffmpeg the library starts is started through :func:`popen` or :func:`run`, whose child
asks the kernel, before it runs ffmpeg, to be sent SIGKILL when its parent goes
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``), then checks that the parent has not gone already
(between the fork and that request), as prctl(2) advises.

The kernel sends that signal when the *thread* that started the child ends, not only the
process: each caller here waits for (or kills) its child before it returns, in the thread
that started it, so a child never outlives its thread while the render lives.

moviepy starts its own ffmpeg processes (its readers and writers, ``subprocess.Popen``
through the module alias ``sp``). :func:`guard_modules` gives those modules a
``subprocess`` of their own whose ``Popen`` does the same, but only in a thread inside
:func:`dying_with_this_thread` (the moviepy renderer's call): an app's own use of moviepy
elsewhere, whose clips may be read from other threads later, is unchanged.

Elsewhere than Linux, nothing is asked: children are started as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any, Final, ParamSpec, TypeVar

__all__ = ["die_with_parent", "dying_with_this_thread", "guard_modules", "popen", "run"]

_PR_SET_PDEATHSIG: Final = 1
_SIGKILL: Final = int(signal.SIGKILL) if hasattr(signal, "SIGKILL") else 9

P = ParamSpec("P")
R = TypeVar("R")


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None
    prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
    prctl.restype = ctypes.c_int
    return prctl


_prctl: Final = _load_prctl()


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child die when the calling thread ends.

    ``None`` where that cannot be asked (not Linux): pass it to ``Popen`` all the same.
    It runs in the child between fork and exec, so it only calls what was prepared here
    (no import, no allocation worth a lock).
    """
    prctl = _prctl
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
        # The parent may have died between the fork and the prctl: then no signal will
        # come, and the child has been handed to another process already.
        if os.getppid() != parent:
            os.kill(os.getpid(), _SIGKILL)

    return preexec


def _guarded(start: Callable[..., R], *args: Any, **options: Any) -> R:
    """``start(*args, preexec_fn=..., **options)``, or without it where it is refused."""
    try:
        return start(*args, preexec_fn=die_with_parent(), **options)
    except RuntimeError as exc:
        # A subinterpreter (mod_wsgi's default) refuses any preexec_fn, before forking:
        # start the child unguarded rather than not at all.
        if "preexec_fn" not in str(exc):
            raise
        return start(*args, **options)


def popen(command: list[str], **options: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(command, **options)``, its child dying with this thread."""
    return _guarded(subprocess.Popen, command, **options)


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run(command, **options)``, its child dying with this thread."""
    return _guarded(subprocess.run, command, **options)


_inside = threading.local()


@contextlib.contextmanager
def guarding() -> Iterator[None]:
    """Within this block, this thread's moviepy children die with it (:func:`guard_modules`)."""
    depth = getattr(_inside, "depth", 0)
    _inside.depth = depth + 1
    try:
        yield
    finally:
        _inside.depth = depth


def dying_with_this_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` inside :func:`guarding`: moviepy's children die with the thread."""

    @functools.wraps(function)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        with guarding():
            return function(*args, **kwargs)

    return guarded


class _Popen(subprocess.Popen[Any]):
    """``Popen`` for moviepy's modules: inside :func:`guarding`, the child dies with us."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if getattr(_inside, "depth", 0) and kwargs.get("preexec_fn") is None:
            _guarded(super().__init__, *args, **kwargs)
        else:
            super().__init__(*args, **kwargs)


def guard_modules(*modules: types.ModuleType) -> None:
    """Give each module (one that calls ``sp.Popen``) a ``subprocess`` whose ``Popen`` guards.

    Only the module's own name ``sp`` is rebound, to a copy of :mod:`subprocess` with
    :class:`_Popen`: :mod:`subprocess` itself, and every other module, are unchanged.
    """
    guarded = types.ModuleType("subprocess", subprocess.__doc__)
    guarded.__dict__.update({k: v for k, v in vars(subprocess).items() if not k.startswith("__")})
    guarded.Popen = _Popen  # type: ignore[attr-defined]
    for module in modules:
        if getattr(module, "sp", None) is subprocess:
            module.sp = guarded  # type: ignore[attr-defined]
