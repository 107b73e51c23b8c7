"""Kill a real process at each of its file and sync system calls in turn, with strace.

A crash-point sweep runs a child once under ``strace -f`` to count, per system call of a
set (link, rename, unlink, fsync, ...), how many times it enters it; then, for every
system call name and every N from 1 to that count, runs it again with
``-e inject=<name>:signal=KILL:when=N``: the kernel delivers SIGKILL as the child enters
its N-th call of that name, before the call does anything. Nothing in the library is
patched: the child does what it always does and dies where the system says.

strace counts per tracee (thread); the count of a name is the largest count of any one
thread, so every call of every thread is a crash point (where two threads reach their
N-th call, the first one to get there dies, which is a crash point as real as the other).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

STRACE = shutil.which("strace") or "/usr/bin/strace"

FILE_CALLS = (
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "fsync",
    "fdatasync",
    "ftruncate",
)
"""The file and sync system calls every sweep kills at: the journal's and SQLite's commit."""

NETWORK_CALLS = ("sendto",)
"""Added for a database across a socket: each statement sent (COMMIT included)."""

_LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<name>[a-z0-9_]+)\(")
_KILLED = (-9, 128 + 9)


@dataclasses.dataclass(frozen=True)
class CrashPoint:
    """The N-th entry into one system call."""

    syscall: str
    n: int

    def __str__(self) -> str:
        return f"{self.syscall}#{self.n}"


def strace_available() -> str | None:
    """Return why a sweep cannot run here, or ``None`` if strace can inject a SIGKILL."""
    if not Path(STRACE).exists():
        return "strace is not installed"
    probe = subprocess.run(
        [
            STRACE,
            "-f",
            "-qq",
            "-o",
            os.devnull,
            "-e",
            "trace=getppid",
            "-e",
            "inject=getppid:signal=KILL:when=1",
            sys.executable,
            "-c",
            "import os; os.getppid(); print('survived')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if not was_killed(probe) or "survived" in probe.stdout:
        return f"strace cannot inject signals here: {probe.returncode} {probe.stderr.strip()}"
    return None


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: no bytecode writes (their renames would be crash points)."""
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("COVERAGE_PROCESS_START", None)
    if extra:
        env.update(extra)
    return env


def count_calls(
    argv: Sequence[str], syscalls: Iterable[str], *, env: Mapping[str, str], timeout: float = 60
) -> tuple[dict[str, int], subprocess.CompletedProcess[str]]:
    """Run ``argv`` to its end under strace; return each system call's count and the run."""
    names = tuple(syscalls)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "strace.log"
        run = subprocess.run(
            [STRACE, "-f", "-qq", "-o", str(log), "-e", f"trace={','.join(names)}", *list(argv)],
            capture_output=True,
            text=True,
            env=dict(env),
            timeout=timeout,
            check=False,
        )
        per_thread: collections.Counter[tuple[str, str]] = collections.Counter()
        for line in log.read_text().splitlines():
            found = _LINE.match(line)
            if found is not None and found["name"] in names:
                per_thread[found["pid"], found["name"]] += 1
    counts = dict.fromkeys(names, 0)
    for (_, name), n in per_thread.items():
        counts[name] = max(counts[name], n)
    return counts, run


def crash_points(counts: Mapping[str, int]) -> list[CrashPoint]:
    """Every crash point of a run whose system calls were counted."""
    return [CrashPoint(name, n) for name, count in counts.items() for n in range(1, count + 1)]


def run_killed(
    argv: Sequence[str],
    point: CrashPoint,
    syscalls: Iterable[str],
    *,
    env: Mapping[str, str],
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` under strace, SIGKILLed as it enters ``point``; return the run."""
    return subprocess.run(
        [
            STRACE,
            "-f",
            "-qq",
            "-o",
            os.devnull,
            "-e",
            f"trace={','.join(syscalls)}",
            "-e",
            f"inject={point.syscall}:signal=KILL:when={point.n}",
            *list(argv),
        ],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
        check=False,
    )


def was_killed(run: subprocess.CompletedProcess[str]) -> bool:
    """Whether the run ended by SIGKILL (strace exits as its tracee did)."""
    return run.returncode in _KILLED


@dataclasses.dataclass
class Sweep:
    """What a sweep did: the crash points, how each ended, and how long it took."""

    name: str
    counts: dict[str, int]
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    points: int = 0
    killed: int = 0
    seconds: float = 0.0

    def report(self) -> str:
        calls = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        ends = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"{self.name}: {self.points} crash points ({calls}); {self.killed} killed; "
            f"outcomes after recovery: {ends}; {self.seconds:.1f} s"
        )


def sweep(
    name: str,
    argv: Sequence[str],
    syscalls: Iterable[str],
    *,
    prepare: Callable[[], None],
    check: Callable[[CrashPoint | None], str],
    env: Mapping[str, str],
) -> Sweep:
    """Count ``argv``'s calls, then kill it at each one; ``check`` recovers and judges.

    ``prepare`` resets the state (database row, files) before every run; ``check`` runs
    after every run (``None`` for the run that was not killed), recovers in a fresh
    process, asserts the outcome, and returns its name (``"completed"``, ``"failed"``,
    ``"unchanged"``).
    """
    names = tuple(syscalls)
    started = time.monotonic()
    prepare()
    counts, run = count_calls(argv, names, env=env)
    assert run.returncode == 0, f"the uninterrupted run failed:\n{run.stdout}\n{run.stderr}"
    result = Sweep(name, counts)
    result.outcomes[f"uninterrupted {check(None)}"] += 1
    for point in crash_points(counts):
        prepare()
        killed = run_killed(argv, point, names, env=env)
        # Every run must die there: a run that never reached its N-th call would mean the
        # counted run and this one took different paths, and the point went untested.
        assert was_killed(killed), f"{point}: not killed ({killed.returncode}):\n{killed.stderr}"
        result.killed += 1
        try:
            result.outcomes[check(point)] += 1
        except AssertionError as exc:
            msg = f"crash at {point}: {exc}"
            raise AssertionError(msg) from exc
        result.points += 1
    result.seconds = time.monotonic() - started
    print(result.report())
    return result
