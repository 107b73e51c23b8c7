"""Which process a worker name names, and whether that process is gone from this machine.

A worker name is ``host:pid@start/machine``: ``host:pid`` for people to read, then the
process's start time (``/proc/<pid>/stat`` field 22, clock ticks since boot) and a short
digest of what makes process ids comparable (the boot, ``/proc/sys/kernel/random/boot_id``,
and the PID namespace, ``/proc/self/ns/pid``). Two containers that share a host name, or two
machines, have different digests; a process id reused after its process died has another
start time. Names without the suffix (``host:pid``, written by earlier versions or chosen by
an app) still read as before.

:func:`process_gone` answers only what it knows: ``True`` when the name's machine digest is
this process's own and that process id is free, a zombie, or another process's (another
start time). Anything else (another machine or namespace, a name without the suffix, a
``/proc`` that cannot be read or does not match this process's view) is *not* gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
from pathlib import Path
from typing import Final, NamedTuple

__all__ = ["WorkerName", "machine_id", "parse_worker", "process_gone", "start_time", "worker_name"]

_MAX_PID: Final = 2**31 - 1  # pid_t is a C int
_DIGEST_HEX: Final = 12
_START: Final = 19
"""Field 22 of ``/proc/<pid>/stat``, counted from field 3 (the first after the name)."""
_SUFFIX: Final = re.compile(r"@(?P<start>[0-9]{1,20})/(?P<machine>[0-9a-f]{12})")


class WorkerName(NamedTuple):
    """The parts of a worker name."""

    host: str
    """The host name the process had."""
    pid: int | None
    """Its process id; ``None`` if the name holds none that could be a process."""
    start: int | None
    """Its start time (clock ticks since boot), if the name records it."""
    machine: str | None
    """The digest of its boot and PID namespace, if the name records it."""


def parse_worker(worker: str) -> WorkerName:
    """Split a worker name (``host:pid@start/machine`` or ``host:pid``) into its parts."""
    start = machine = None
    found = _SUFFIX.search(worker)
    if found is not None and found.end() == len(worker):
        start, machine = int(found["start"]), found["machine"]
        worker = worker[: found.start()]
    host, colon, number = worker.rpartition(":")
    try:
        pid: int | None = int(number)
    except ValueError:
        pid = None
    # 0 and negative numbers name process groups to os.kill, and a number beyond a C int
    # overflows it: neither is a process that could be gone.
    if pid is not None and not 0 < pid <= _MAX_PID:
        pid = None
    return WorkerName(host if colon else worker, pid, start, machine)


def worker_name() -> str:
    """This process's worker name: ``host:pid@start/machine``, or ``host:pid`` without /proc."""
    pid = os.getpid()
    plain = f"{socket.gethostname()}:{pid}"
    machine = machine_id()
    start = start_time(pid)
    return plain if machine is None or start is None else f"{plain}@{start}/{machine}"


def machine_id() -> str | None:
    """A digest of this boot and PID namespace; ``None`` if this /proc cannot tell them."""
    try:
        # /proc shows the process ids of the namespace it was mounted for, which is not
        # necessarily this process's: then its numbers are not this process's to compare.
        if Path("/proc/self").readlink() != Path(str(os.getpid())):
            return None
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = Path("/proc/self/ns/pid").stat()
    except (OSError, ValueError):
        return None
    if not boot:
        return None
    text = f"{boot}|{namespace.st_dev}|{namespace.st_ino}"
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_HEX]


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (``/proc/<pid>/stat`` field 22), ``None`` if unknown."""
    fields = _stat(pid)
    if fields is None:
        return None
    with contextlib.suppress(IndexError, ValueError):
        return int(fields[_START])
    return None


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses.
    return text[text.rfind(b")") + 2 :].decode("ascii", "replace").split()


def process_gone(worker: str | None) -> bool:
    """Whether the process ``worker`` names is known to have ended, on this machine.

    ``True`` only for a name with this process's machine digest whose process id is
    free, a zombie, or held by a process with another start time. This process itself
    is never gone.
    """
    name = parse_worker(worker or "")
    here = machine_id()
    if name.pid is None or name.start is None or here is None or name.machine != here:
        return False
    if name.pid == os.getpid():
        return start_time(name.pid) != name.start  # another process with this id (a fork)
    fields = _stat(name.pid)
    if not fields:
        # Not in /proc: gone, unless /proc hides other users' processes (hidepid), which
        # the kernel itself would not.
        try:
            os.kill(name.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass
        return False
    # Ended but not yet collected by its parent (a zombie), or another process.
    return fields[0] in {"Z", "X"} or (len(fields) > _START and fields[_START] != str(name.start))
