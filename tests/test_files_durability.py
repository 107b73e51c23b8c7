"""A published file is fsynced before its rename, and its directory after it, as the system sees.

A crash of the process cannot show a missing fsync (the page cache survives it; only a power
loss would lose the file or the rename). So each test runs the publishing code in a child
process under ``strace`` and reads the order of the system calls themselves: fsync of the
new file, then the rename onto the final path, then fsync of the final path's directory.
Reading the calls, not spying on Python functions, keeps the check true however the code
reaches them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

STRACE = shutil.which("strace") or "/usr/bin/strace"

pytestmark = pytest.mark.skipif(
    not Path(STRACE).exists(), reason="strace is not installed (apt-get install strace)"
)

SCENARIOS = {
    "publishing": """
        from renderstate.files import publishing

        with publishing(final) as target:
            target.write_bytes(b"NEW VIDEO")
    """,
    "publish": """
        from renderstate.files import publish

        source = final.parent / "elsewhere.mp4"
        source.write_bytes(b"NEW VIDEO")
        publish(source, final)
    """,
    "runner": """
        from renderstate import RenderRunner, Status
        from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject

        project = MemoryProject()
        runner = RenderRunner(
            MemoryAdapter(), FakeRenderer(frames=3), media_root=final.parent,
            executor=InlineExecutor(),
        )
        job = runner.submit(project)
        assert job.wait(30) is Status.COMPLETED, job.error
        print("FINAL", runner.file_path(project), flush=True)
    """,
}


@dataclass(frozen=True)
class Call:
    name: str
    paths: tuple[str, ...]


# `fsync(3</tmp/x/.final.mp4.tmp>) = 0`; `rename("/a", "/b") = 0`;
# `renameat2(AT_FDCWD, "/a", AT_FDCWD, "/b", RENAME_NOREPLACE) = 0` (with -y, a directory
# fd argument is shown as `3</dir>`).
_LINE = re.compile(r"^(?:\d+\s+)?(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<result>-?\d+)")
_PATH = re.compile(r'<([^<>]*)>|"([^"]*)"')
# One side of renameat: `4</media/projects/1>, "final.mp4"` or `AT_FDCWD</cwd>, "/a/b"`.
_AT = re.compile(r'(?:\d+|AT_FDCWD)<([^<>]*)>, "([^"]*)"')


def traced_calls(tmp_path: Path, scenario: str, final: Path) -> tuple[list[Call], str]:
    """Run ``scenario`` in a child process under strace; its successful calls, in order."""
    log = tmp_path / "strace.log"
    body = "from pathlib import Path\nimport sys\nfinal = Path(sys.argv[1])\n"
    body += textwrap.dedent(SCENARIOS[scenario])
    done = subprocess.run(
        [
            STRACE,
            "-f",
            "-y",  # print the path behind each file descriptor
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
            "-o",
            str(log),
            sys.executable,
            "-c",
            body,
            str(final),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = []
    for line in log.read_text().splitlines():
        match = _LINE.match(line)
        if match is None or match["result"] != "0":
            continue
        args = match["args"]
        if match["name"] in ("renameat", "renameat2"):
            # Relative to directory descriptors: each side is the directory joined with the name.
            paths = tuple(
                str(Path(directory) / name) if directory else name
                for directory, name in _AT.findall(args)
            )
        else:
            paths = tuple(a or b for a, b in _PATH.findall(args))
        calls.append(Call(match["name"], paths))
    return calls, done.stdout


def assert_synced_around_the_rename(calls: list[Call], final: Path) -> None:
    """fsync(new file) < rename(new file -> final) < fsync(final's directory)."""
    renames = [
        i for i, c in enumerate(calls) if c.name.startswith("rename") and c.paths[-1] == str(final)
    ]
    assert renames, f"no rename onto {final}: {calls}"
    at = renames[-1]
    source = calls[at].paths[-2]
    synced_file = [
        i
        for i, c in enumerate(calls[:at])
        if c.name in ("fsync", "fdatasync") and source in c.paths
    ]
    assert synced_file, f"{source} was renamed onto {final} without an fsync before: {calls}"
    directory = str(final.parent)
    synced_dir = [
        i
        for i, c in enumerate(calls)
        if i > at and c.name in ("fsync", "fdatasync") and directory in c.paths
    ]
    assert synced_dir, f"{directory} was not fsynced after the rename onto {final}: {calls}"


@pytest.mark.parametrize("scenario", ["publishing", "publish"])
def test_a_published_file_is_fsynced_before_its_rename_and_its_directory_after(
    tmp_path: Path, scenario: str
) -> None:
    """publishing() and publish() fsync the new file, rename it onto the final path, then
    fsync the directory: a power loss leaves the old file or the whole new one, and the
    rename itself survives it."""
    final = tmp_path / "media" / "projects" / "1" / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"OLD VIDEO")
    calls, _ = traced_calls(tmp_path, scenario, final)
    assert_synced_around_the_rename(calls, final)
    assert final.read_bytes() == b"NEW VIDEO"


def test_a_render_through_the_runner_syncs_around_its_rename(tmp_path: Path) -> None:
    """A runner's render publishes its video with the same order of system calls."""
    media = tmp_path / "media"
    media.mkdir()
    calls, out = traced_calls(tmp_path, "runner", media / "unused")
    final = Path(out.split("FINAL ", 1)[1].strip())
    assert_synced_around_the_rename(calls, final)
    assert final.read_bytes().startswith(b"FAKE VIDEO")
