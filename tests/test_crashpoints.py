"""Publishing survives a crash at any system call: killed for real, at every one in turn.

A re-render of a COMPLETED project (its previous video in final.mp4), by publishing() alone
or by a RenderRunner (with a ledger, with an own_path renderer, without a ledger), is
killed by strace at each of its file and sync system calls (link, rename, unlink, fsync,
fdatasync, ftruncate; on PostgreSQL each statement sent too), then recovered in a fresh
process through the public recovery alone (the runner's: recover_interrupted(), with a
ledger once the lease has expired). After every one,
exactly one of: COMPLETED with the new video whole, FAILED with the previous video byte for
byte, or the row unchanged (the start never committed) with the previous video; and nothing
but final.mp4 in its directory (no temporary, scratch or backup file).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

import crash_rerender
from crash_rerender import database, strace
from crashpoints import (
    FILE_CALLS,
    NETWORK_CALLS,
    CrashPoint,
    child_env,
    run_killed,
    sweep,
    was_killed,
)

CHILD = Path(__file__).with_name("crash_child.py")
OLD = b"the previous, good video; " * 200
NEW = b"the new video, " * 300  # what crash_child.py writes
__all__ = ["database", "strace"]

# A sweep runs two processes per crash point; a loaded machine makes that a few seconds.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Rerender(crash_rerender.Rerender):
    """A project COMPLETED with its previous video in final.mp4."""

    script = CHILD
    output_name = "final.mp4"
    digest_key = "final"
    old = sha(OLD)
    new = sha(NEW)

    def write_old(self) -> None:
        self.output.write_bytes(OLD)

    def check(self, point: CrashPoint | None) -> str:
        if self.mode is None:
            return self.judge(self.child("recover"), point)
        return self.judge(self.child("runner-recover", self.mode), point)


def test_publishing_alone_survives_a_crash_at_every_system_call(
    strace: None, database: str, tmp_path: Path
) -> None:
    """publishing(final, commit=lifecycle.complete) with claim_render: every crash consistent."""
    project = Rerender(database, tmp_path / "media")
    calls = FILE_CALLS + (NETWORK_CALLS if database.startswith("postgresql") else ())
    result = sweep(
        f"publishing alone on {database.split(':', maxsplit=1)[0]}",
        [sys.executable, str(CHILD), "publishing", database, str(project.media), project.key],
        calls,
        prepare=project.prepare,
        check=project.check,
        env=child_env(),
    )
    assert result.points >= 8  # at least the journal's own: link, renames, unlinks, fsyncs
    assert result.outcomes["completed"]
    assert result.outcomes["failed"]


# The runner with a ledger on both databases (on PostgreSQL every statement sent is a crash
# point too); its own_path and ledger-less variants differ from it only in the file half,
# which no database changes, so they run on SQLite alone (a sweep costs two processes per
# crash point: CI's time goes where the coverage is).
@pytest.mark.parametrize(
    ("database", "mode"),
    [
        ("sqlite", "ledger"),
        pytest.param("postgres", "ledger", marks=pytest.mark.postgres),
        ("sqlite", "own-path"),
        ("sqlite", "plain"),
    ],
    indirect=["database"],
)
def test_the_runner_survives_a_crash_at_every_system_call(
    strace: None, database: str, tmp_path: Path, mode: str
) -> None:
    """A RenderRunner re-render (ledger, own_path renderer, no ledger): every crash consistent."""
    project = Rerender(database, tmp_path / "media", mode)
    calls = FILE_CALLS + (NETWORK_CALLS if database.startswith("postgresql") else ())
    result = sweep(
        f"runner ({mode}) on {database.split(':', maxsplit=1)[0]}",
        [sys.executable, str(CHILD), "runner", database, str(project.media), project.key, mode],
        calls,
        prepare=project.prepare,
        check=project.check,
        env=child_env(),
    )
    assert result.points >= 8
    assert result.outcomes["completed"]
    assert result.outcomes["failed"]


def test_recover_interrupted_without_a_runner_settles_a_backup_left_after_the_commit(
    strace: None, tmp_path: Path
) -> None:
    """A render with a ledger killed after its completion committed, as it removed the
    previous video's backup: ``renderstate.recovery.recover_interrupted`` with the ledger
    (the attempt COMPLETED: no lease brings it to recovery) keeps the new video and
    removes the backup."""
    url = f"sqlite:///{tmp_path / 'committed.sqlite'}"
    project = Rerender(url, tmp_path / "media", "ledger")
    argv = [sys.executable, str(CHILD), "runner", url, str(project.media), project.key, "ledger"]
    project.prepare()
    point = _backup_removal(argv)
    project.prepare()
    killed = run_killed(argv, point, FILE_CALLS, env=child_env())
    assert was_killed(killed), killed.stderr
    left = sorted(p.name for p in project.output.parent.iterdir())
    assert len(left) == 2, left  # the new video and the previous one's backup
    assert any(".backup" in name for name in left), left
    found = project.child("standalone")
    assert found["status"] == "COMPLETED"
    assert found["final"] == sha(NEW)
    assert found["listing"] == ["final.mp4"]


def _backup_removal(argv: list[str]) -> CrashPoint:
    """The call an uninterrupted run removes the previous video's backup with."""
    import subprocess  # noqa: PLC0415 - only this helper needs it
    import tempfile  # noqa: PLC0415

    from crashpoints import STRACE  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "trace"
        subprocess.run(
            [STRACE, "-f", "-qq", "-o", str(log), "-e", "trace=unlink,unlinkat", *argv],
            capture_output=True,
            env=child_env(),
            timeout=120,
            check=True,
        )
        lines = [line for line in log.read_text().splitlines() if "(" in line]
    seen = {"unlink": 0, "unlinkat": 0}
    for line in lines:
        name = "unlinkat" if "unlinkat(" in line else "unlink"
        seen[name] += 1
        if ".backup" in line:
            return CrashPoint(name, seen[name])
    msg = f"no backup removed in {lines}"
    raise AssertionError(msg)
