"""Who owns a render attempt: owner tokens, worker names, and whether an owner is gone.

An attempt's *owner token* (``Attempt.owner``) is a fresh random token that each start and
each begin records; it alone fences heartbeats, ends and takeovers, so two runners in one
process, or a task delivered twice to one worker, are told apart exactly as two machines
are. The *worker* (``host:pid@start/machine``, see :mod:`renderstate.ledger._identity`) is
for people to read, and for two questions: may a takeover remove the files the previous
owner left (only when that owner is really gone), and may recovery or a takeover end an
attempt before its lease runs out (only when its process, on this machine, is known to be
gone: :func:`dead_owner`)?
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from typing import TYPE_CHECKING, Final

from renderstate._attempts import Attempt, AttemptState, DatabaseTime
from renderstate.ledger._identity import parse_worker, process_gone, worker_name

if TYPE_CHECKING:
    from renderstate.typing import AttemptStore

__all__ = [
    "dead_owner",
    "expire_dead_owner",
    "holding",
    "host_of",
    "new_owner",
    "owner_gone",
    "release",
    "this_worker",
    "worker_label",
]

_TOKEN_BYTES: Final = 16
_ENDED: Final = -1.0
"""Where a dead owner's lease is set, from now: in the past, so it reads as expired."""

_live: set[str] = set()
_live_lock = threading.Lock()


def new_owner() -> str:
    """Return a fresh owner token (32 hex digits, 128 random bits)."""
    return secrets.token_hex(_TOKEN_BYTES)


def this_worker() -> str:
    """Return how the ledger names this process: ``host:pid@start/machine``.

    ``host:pid`` is for people to read; ``start`` (the process's start time) and
    ``machine`` (a digest of this boot and PID namespace) let any process of this machine
    tell whether that process is gone, so a reused process id or a container that shares
    the host name is never mistaken for it. Where ``/proc`` cannot tell them (not Linux),
    just ``host:pid``.
    """
    return worker_name()


def host_of(worker: str | None) -> str | None:
    """The host part of a worker name."""
    return None if worker is None else parse_worker(worker).host


def worker_label(worker: str) -> str:
    """A worker name as people read it: ``host:pid``, without the identity suffix."""
    name = parse_worker(worker)
    return worker if name.start is None else f"{name.host}:{name.pid}"


def dead_owner(attempt: Attempt) -> bool:
    """Whether ``attempt`` is rendering under a process of this machine that is gone.

    Such an attempt's lease will never be renewed: recovery and a takeover may treat it
    as expired at once. Only a worker name that records its process's identity (see
    :func:`this_worker`) can say so; any doubt is "not gone".
    """
    return (
        attempt.state is AttemptState.RENDERING
        and attempt.owner is not None
        and process_gone(attempt.worker)
    )


def expire_dead_owner(store: AttemptStore, attempt: Attempt, now: float | DatabaseTime) -> bool:
    """End the lease of ``attempt`` now if its owner is a process of this machine that is gone.

    One ``UPDATE``, only while it is rendering under the same owner token and worker as
    ``attempt`` says: a takeover since then (a live owner) is left alone. Returns whether
    the lease was ended; a takeover then takes the attempt as it takes any expired one.
    """
    if not dead_owner(attempt):
        return False
    return store.update(
        attempt.id,
        {"lease_expires_at": now + _ENDED},
        states={AttemptState.RENDERING},
        owner=attempt.owner,
        worker=attempt.worker,
    )


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


def held_here() -> frozenset[str]:
    """The owner tokens the jobs of this process hold attempts under, now."""
    with _live_lock:
        return frozenset(_live)


def owner_gone(attempt: Attempt) -> bool:
    """Whether the owner that held ``attempt`` is known to be gone from this machine.

    True only for an owner of this host whose process no longer exists, or that is this
    very process but holds the attempt no more (a runner of this process that stalled
    still holds it: its files are its own). An owner on another machine, or a process of
    this host that is still alive, is not known to be gone: a takeover leaves its files.
    """
    worker = attempt.worker
    name = parse_worker(worker or "")
    if worker is not None and name.start is not None:
        return _not_held(attempt) if worker == this_worker() else process_gone(worker)
    # A name without the process's identity (an earlier version's, or an app's own): by
    # its host name and process id, as before.
    if name.pid is None or name.host != socket.gethostname():
        return False
    if name.pid == os.getpid():
        return _not_held(attempt)
    try:
        os.kill(name.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        pass
    return False


def _not_held(attempt: Attempt) -> bool:
    """Whether no job of this process holds ``attempt`` (under its owner token) any more."""
    with _live_lock:
        return attempt.owner is not None and attempt.owner not in _live
