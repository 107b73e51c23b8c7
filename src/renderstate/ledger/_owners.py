"""Who owns a render attempt: owner tokens, worker names, and whether an owner is gone.

An attempt's *owner token* (``Attempt.owner``) is a fresh random token that each start and
each begin records; it alone fences heartbeats, ends and takeovers, so two runners in one
process, or a task delivered twice to one worker, are told apart exactly as two machines
are. The *worker* (``host:pid``) is only for people to read, and for one question: may a
takeover remove the files the previous owner left? Only when that owner is really gone.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from typing import Final

from renderstate._attempts import Attempt

__all__ = ["holding", "new_owner", "owner_gone", "release", "this_worker"]

_TOKEN_BYTES: Final = 16
_MAX_PID: Final = 2**31 - 1  # pid_t is a C int

_live: set[str] = set()
_live_lock = threading.Lock()


def new_owner() -> str:
    """Return a fresh owner token (32 hex digits, 128 random bits)."""
    return secrets.token_hex(_TOKEN_BYTES)


def this_worker() -> str:
    """Return ``host:pid``, how the ledger names the process that renders an attempt."""
    return f"{socket.gethostname()}:{os.getpid()}"


def host_of(worker: str | None) -> str | None:
    """The host part of a ``host:pid`` worker name."""
    return None if worker is None else worker.rsplit(":", 1)[0]


def holding(token: str) -> None:
    """Note that a job of this process holds an attempt under ``token``."""
    with _live_lock:
        _live.add(token)


def release(token: str | None) -> None:
    """Note that no job of this process holds an attempt under ``token`` any more."""
    if token is None:
        return
    with _live_lock:
        _live.discard(token)


def owner_gone(attempt: Attempt) -> bool:
    """Whether the owner that held ``attempt`` is known to be gone from this machine.

    True only for an owner of this host whose process no longer exists, or that is this
    very process but holds the attempt no more (a runner of this process that stalled
    still holds it: its files are its own). An owner on another machine, or a process of
    this host that is still alive, is not known to be gone: a takeover leaves its files.
    """
    worker = attempt.worker
    if worker is None or host_of(worker) != socket.gethostname():
        return False
    pid = _pid_of(worker)
    if pid is None:
        return False
    if pid == os.getpid():
        with _live_lock:
            return attempt.owner is not None and attempt.owner not in _live
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        return False
    return False


def _pid_of(worker: str) -> int | None:
    """The pid of a ``host:pid`` worker name, ``None`` if it names no process."""
    try:
        pid = int(worker.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None
    # 0 and negative numbers name process groups to os.kill, and a number beyond a C int
    # overflows it: neither is a process that could be gone.
    return pid if 0 < pid <= _MAX_PID else None
