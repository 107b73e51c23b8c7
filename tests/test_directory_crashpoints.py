"""A directory output survives a crash at any system call: killed for real, at every one.

A re-render of a COMPLETED project whose output is a directory (an HLS playlist and its
segments) by a RenderRunner with ``own_path(..., output="directory")``, with an attempt
ledger and without one, is killed by strace at each of its file and sync system calls
(``renameat2`` of the swap, every ``fsync``, ``rename``, ``unlink``...; and where the
system cannot exchange, the two renames that replace it), then recovered in a fresh
process through the public recovery alone. After every one, exactly one of: COMPLETED
with the new directory whole, FAILED with the previous directory file for file and byte
for byte, or the row unchanged with the previous directory; and nothing but the output
directory beside it (no staging directory, no scratch file, no previous version).

A killed render taken over by a redelivered task (a fresh process, ``runner.execute``)
finds the previous directory whole at the output path and writes only into its own
staging directory, never into the live directory in place.
"""

from __future__ import annotations

import subprocess
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
from directory_child import NEW, OLD, read_tree, tree_digest

CHILD = Path(__file__).with_name("directory_child.py")
__all__ = ["database", "strace"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


class Rerender(crash_rerender.Rerender):
    """A project COMPLETED with its previous output directory."""

    script = CHILD
    output_name = "hls"
    digest_key = "tree"
    old = tree_digest(OLD)
    new = tree_digest(NEW)

    def write_old(self) -> None:
        self.output.mkdir()
        for name, data in OLD.items():
            (self.output / name).write_bytes(data)

    def check(self, point: CrashPoint | None) -> str:
        assert self.mode is not None
        return self.judge(self.child("recover", self.mode), point)

    def argv(self) -> list[str]:
        return [
            sys.executable,
            str(CHILD),
            "runner",
            self.url,
            str(self.media),
            self.key,
            self.mode,
        ]


@pytest.mark.parametrize(
    ("database", "mode"),
    [
        ("sqlite", "ledger"),
        pytest.param("postgres", "ledger", marks=pytest.mark.postgres),
        ("sqlite", "plain"),
        ("sqlite", "fallback"),
    ],
    indirect=["database"],
)
def test_a_directory_output_survives_a_crash_at_every_system_call(
    strace: None, database: str, tmp_path: Path, mode: str
) -> None:
    """Killed at every file and sync call (the swap's renameat2 included), then recovered:
    the new directory whole and COMPLETED, or the previous one whole; nothing beside it."""
    project = Rerender(database, tmp_path / "media", mode)
    calls = FILE_CALLS + (NETWORK_CALLS if database.startswith("postgresql") else ())
    result = sweep(
        f"directory output ({mode}) on {database.split(':', maxsplit=1)[0]}",
        project.argv(),
        calls,
        prepare=project.prepare,
        check=project.check,
        env=child_env(),
    )
    # The swap itself was a crash point: the exchange, or the fallback's two renames.
    assert result.counts["renameat2" if mode != "fallback" else "renameat"] >= 1
    assert result.outcomes["completed"]
    assert result.outcomes["failed"]


@pytest.mark.parametrize("crash_at", ["renameat2", "after the swap"])
def test_a_takeover_never_writes_into_the_live_directory(
    strace: None, tmp_path: Path, crash_at: str
) -> None:
    """A worker killed at its swap (or just after it, before its commit) is taken over by a
    redelivered task: the previous directory is back, whole, at the output path before the
    new owner renders, which writes only into its own staging directory."""
    url = f"sqlite:///{tmp_path / 'takeover.sqlite'}"
    project = Rerender(url, tmp_path / "media", "ledger")
    project.prepare()
    # The swap's exchange is the first renameat2; the journal's fsync of the private
    # directory after it is the one that follows it: count them on an uninterrupted run.
    point = CrashPoint("renameat2", 1)
    if crash_at == "after the swap":
        point = CrashPoint("fsync", _fsyncs_through_the_swap(project) + 1)
        project.prepare()
    killed = run_killed(project.argv(), point, FILE_CALLS, env=child_env())
    assert was_killed(killed), killed.stderr
    # What the dead worker left at the output path: its swap done (the new directory,
    # uncommitted) or not yet (the previous one).
    left = NEW if crash_at == "after the swap" else OLD
    assert read_tree(project.output) == tree_digest(left)
    found = project.child("takeover")
    seen = found["seen"]
    assert isinstance(seen, dict)
    assert seen["at_begin"] == tree_digest(OLD)  # put back before the new owner rendered
    assert seen["live_after_writing"] == tree_digest(OLD)  # not written in place
    assert seen["target_is_live"] is False
    assert found["job"] == "COMPLETED"
    assert found["tree"] == tree_digest(NEW)
    assert found["listing"] == ["hls"]


def _fsyncs_through_the_swap(project: Rerender) -> int:
    """How many fsyncs an uninterrupted run makes before its swap's renameat2 returns."""
    import tempfile  # noqa: PLC0415 - only this helper needs it

    from crashpoints import STRACE  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "trace"
        subprocess.run(
            [STRACE, "-f", "-qq", "-o", str(log), "-e", "trace=fsync,renameat2", *project.argv()],
            capture_output=True,
            env=child_env(),
            timeout=120,
            check=True,
        )
        lines = [line for line in log.read_text().splitlines() if "(" in line]
    swap = next(i for i, line in enumerate(lines) if "renameat2(" in line)
    return sum(1 for line in lines[:swap] if "fsync(" in line) + 1


@pytest.mark.parametrize("mode", ["ledger", "plain"])
def test_the_next_render_settles_what_a_worker_killed_after_its_commit_left(
    strace: None, tmp_path: Path, mode: str
) -> None:
    """Killed after its completion committed, as it began removing the previous directory
    (its staging directory's rename to ``.done``): with no recovery run, the next render
    of the project removes it at its start (with a ledger: its begin asks the ledger; without
    one: the start reads the COMPLETED status), and nothing is left beside the output."""
    url = f"sqlite:///{tmp_path / 'next.sqlite'}"
    project = Rerender(url, tmp_path / "media", mode)
    project.prepare()
    killed = run_killed(project.argv(), CrashPoint("renameat", 1), FILE_CALLS, env=child_env())
    assert was_killed(killed), killed.stderr
    assert read_tree(project.output) == tree_digest(NEW)
    listing = sorted(p.name for p in project.output.parent.iterdir())
    assert len(listing) == 2, listing  # the output and the dead worker's staging directory
    again = subprocess.run(
        project.argv(), capture_output=True, text=True, env=child_env(), check=False
    )
    assert again.returncode == 0, again.stderr
    assert read_tree(project.output) == tree_digest(NEW)
    assert sorted(p.name for p in project.output.parent.iterdir()) == ["hls"]


@pytest.mark.parametrize("mode", ["ledger", "plain"])
@pytest.mark.parametrize("crash_at", ["renameat2", "after the swap"])
def test_recover_interrupted_without_a_runner_puts_the_previous_directory_back(
    strace: None, tmp_path: Path, mode: str, crash_at: str
) -> None:
    """A worker killed at its swap, or just after it before its commit, is recovered by
    ``renderstate.recovery.recover_interrupted`` alone (an app with no runner): FAILED with
    the previous directory whole, and no staging directory or scratch file beside it."""
    url = f"sqlite:///{tmp_path / 'standalone.sqlite'}"
    project = Rerender(url, tmp_path / "media", mode)
    project.prepare()
    point = CrashPoint("renameat2", 1)
    if crash_at == "after the swap":
        point = CrashPoint("fsync", _fsyncs_through_the_swap(project) + 1)
        project.prepare()
    killed = run_killed(project.argv(), point, FILE_CALLS, env=child_env())
    assert was_killed(killed), killed.stderr
    left = NEW if crash_at == "after the swap" else OLD
    assert read_tree(project.output) == tree_digest(left)
    assert len(list(project.output.parent.iterdir())) == 2  # the output and the staging
    found = project.child("standalone", mode)
    assert found["status"] == "FAILED"
    assert found["tree"] == tree_digest(OLD)
    assert found["listing"] == ["hls"]


@pytest.mark.parametrize("mode", ["plain", "ledger"])
def test_recover_interrupted_without_a_runner_settles_a_render_killed_after_its_commit(
    strace: None, tmp_path: Path, mode: str
) -> None:
    """Killed after its completion committed, as it began removing the previous directory:
    ``renderstate.recovery.recover_interrupted`` given the (COMPLETED) project, or with a
    ledger (whose attempt COMPLETED: no lease brings it to recovery), keeps the new
    directory and removes the staging directory with the previous one."""
    url = f"sqlite:///{tmp_path / 'committed.sqlite'}"
    project = Rerender(url, tmp_path / "media", mode)
    project.prepare()
    killed = run_killed(project.argv(), CrashPoint("renameat", 1), FILE_CALLS, env=child_env())
    assert was_killed(killed), killed.stderr
    assert len(list(project.output.parent.iterdir())) == 2  # the output and the staging
    found = project.child("standalone", mode)
    assert found["status"] == "COMPLETED"
    assert found["tree"] == tree_digest(NEW)
    assert found["listing"] == ["hls"]
