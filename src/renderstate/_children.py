"""Child processes that die with the render that started them (Linux ``PR_SET_PDEATHSIG``).

A render killed with SIGKILL runs no ``finally``: without help, the ffmpeg processes it
started keep running (an encoder keeps writing its output until its input ends). Every
ffmpeg the library starts is started through :func:`popen` or :func:`run`, whose child
asks the kernel, before it runs ffmpeg, to be sent SIGKILL when its parent goes
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``), then checks that the parent has not gone already
(between the start and that request), as prctl(2) advises.

Where util-linux's ``setpriv`` can ask it (``--pdeathsig``, util-linux 2.33 and later), the
child is started as ``setpriv --pdeathsig KILL -- /bin/sh -c <check> <parent> ffmpeg ...``:
one process that execs three programs in turn (setpriv makes the request, the shell compares
its parent with the one expected and execs ffmpeg), so Python can start it with ``vfork``.
A ``preexec_fn`` (the fallback, where there is no such ``setpriv``) makes Python ``fork``
instead, copying the page tables of a render process holding frames: about 10 ms per child
on a loaded machine, measured at 7-13 % of a short render's CPU time
(``benchmarks/bench_against.py``).

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
import shutil
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
_SHELL: Final = "/bin/sh"
# $0 is the parent expected, $1 a pipe's write end, then the command. A shell whose parent
# is another process (ours died before setpriv's request) kills itself rather than run the
# command unwatched; otherwise it says on the pipe that the request is made and becomes the
# command. (dash redirects descriptors 0-9 only: the pipe is written through /proc and stays
# open, unused, in the command, whose end closes it.)
_CHECK: Final = (
    '[ "$PPID" = "$0" ] || kill -KILL $$; printf . > "/proc/self/fd/$1"; shift; exec "$@"'
)

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


def _find_setpriv() -> str | None:
    """util-linux's ``setpriv``, if it has ``--pdeathsig`` and ``/bin/sh`` is there."""
    if _prctl is None or not os.access(_SHELL, os.X_OK):
        return None
    found = shutil.which("setpriv")
    if found is None:
        return None
    try:
        usage = subprocess.run(  # noqa: S603 - a fixed command, once per process
            [found, "--help"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):  # pragma: no cover - a broken setpriv
        return None
    return found if "--pdeathsig" in usage else None


@functools.cache
def _wrapper() -> str | None:
    """The ``setpriv`` to start children through, looked for once (None: use preexec_fn)."""
    return _find_setpriv()


def wrapped(command: list[str], ready: int, *, parent: int | None = None) -> list[str] | None:
    """``command`` as an exec chain that dies with this thread, or None where it cannot be.

    ``ready`` is the write end of a pipe, passed to the child (``pass_fds``): one byte
    arrives on it once the kernel's request is made, and the caller waits for it before
    it lets its thread go on (a thread that ended before the request would not be
    watched). ``parent`` is the process the child must find as its parent (this one).
    """
    setpriv = _wrapper()
    if setpriv is None:
        return None
    expected = os.getpid() if parent is None else parent
    return [
        setpriv,
        "--pdeathsig",
        "KILL",
        "--",
        _SHELL,
        "-c",
        _CHECK,
        str(expected),
        str(ready),
        *command,
    ]


def _start_wrapped(
    start: Callable[..., R], command: list[str], rest: tuple[Any, ...], options: dict[str, Any]
) -> tuple[bool, R | None]:
    """Start ``command`` through :func:`wrapped`: (False, None) where it cannot be."""
    if _wrapper() is None:
        return False, None
    readable, ready = os.pipe()
    try:
        chain = wrapped(command, ready)
        assert chain is not None
        passed = (*options.pop("pass_fds", ()), ready)
        started = start(chain, *rest, pass_fds=passed, **options)
        os.close(ready)
        ready = -1
        # One byte once setpriv's request is made, or nothing (end of file) if the chain
        # ended first: either way, from here on the child dies with this thread.
        os.read(readable, 1)
        return True, started
    finally:
        os.close(readable)
        if ready != -1:
            os.close(ready)


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
    """``start(command, **options)`` whose child dies with this thread.

    Through :func:`wrapped` where it can be (a list of arguments whose program is found,
    no ``shell`` and no ``executable``); else with ``preexec_fn=``; else, where a
    ``preexec_fn`` is refused, unguarded.
    """
    command = _wrappable(args, options)
    if command is not None:
        done, started = _start_wrapped(start, command, args[1:], dict(options))
        if done:
            return started  # type: ignore[return-value]
    try:
        return start(*args, preexec_fn=die_with_parent(), **options)
    except RuntimeError as exc:
        # A subinterpreter (mod_wsgi's default) refuses any preexec_fn, before forking
        # (where there is no setpriv, whose exec chain needs none):
        # start the child unguarded rather than not at all.
        if "preexec_fn" not in str(exc):
            raise
        return start(*args, **options)


def _wrappable(args: tuple[Any, ...], options: dict[str, Any]) -> list[str] | None:
    """The command as a list to wrap, with its program resolved; None if it cannot be.

    A program not found is left to ``start`` itself, so that it raises as it always did
    (``FileNotFoundError``) rather than a shell reporting it with exit status 127.
    """
    if not args or options.get("shell") or options.get("executable") is not None:
        return None
    command = args[0]
    if not isinstance(command, (list, tuple)) or not command:
        return None
    if not all(isinstance(part, str) for part in command):
        return None
    program = command[0]
    if "/" not in program:
        env = options.get("env")
        search = (env if env is not None else os.environ).get("PATH", os.defpath)
        found = shutil.which(program, path=search)
        if found is None:
            return None
        program = found
    elif not os.access(program, os.X_OK):
        return None
    return [program, *command[1:]]


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
