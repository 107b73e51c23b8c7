"""What the crash-point tests of a re-render share: the project, its reset and its verdict.

A re-render of a COMPLETED project (its previous output: a file, or a directory) is killed
at every file and sync system call (:mod:`crashpoints`), then recovered in a fresh process
by a child script that prints the project's row and its output's state as JSON (forked by
:class:`Zygote` from a process that has only imported). The test side (:class:`Rerender`,
the ``strace`` and ``database`` fixtures) resets the row and the output before every run
and judges each recovery; the child side (``crash_store.ChildStore``) opens the same tables
without the command line's start-up queries.
"""

from __future__ import annotations

import atexit
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import delete, update

from adapters import databases
from crashpoints import CrashPoint, child_env, strace_available
from renderstate.cli._store import ATTEMPTS, Project, Store

__all__ = ["T0", "Rerender", "Zygote", "database", "strace"]

T0 = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
"""The previous render's ``updated_at``: a row still holding it was never written."""


@pytest.fixture(scope="module")
def strace() -> None:
    """Skip where strace cannot inject a SIGKILL (fails under ``CI=true``, see conftest)."""
    why = strace_available()
    if why is not None:
        pytest.skip(why)


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], scope="module"
)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database's SQLAlchemy URL."""
    backend: str = request.param
    try:
        target = databases.create(backend, tmp_path_factory.mktemp("crash-db"), "crash")
    except Exception as exc:
        pytest.skip(f"{backend} is not reachable: {exc}")
    try:
        yield target.sqlalchemy_url()
    finally:
        databases.drop(target)


class Rerender:
    """A project COMPLETED with its previous output, reset before every run, judged after.

    A subclass names its child script, its output's name beside ``projects/<key>/``, the
    previous and new outputs' digests, the key of the child's JSON that holds the output's
    digest, and how the previous output is written.
    """

    script: ClassVar[Path]
    output_name: ClassVar[str]
    digest_key: ClassVar[str]
    old: ClassVar[object]
    new: ClassVar[object]

    def __init__(self, url: str, media: Path, mode: str | None = None) -> None:
        self.url = url
        self.media = media
        self.mode = mode
        self.store = Store(url)
        self.key = self.store.create("crash", {}).id
        self.output = media / "projects" / self.key / self.output_name
        self.output_path = f"projects/{self.key}/{self.output_name}"

    def write_old(self) -> None:
        """Write the previous output at :attr:`output` (its folder exists, empty)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """The row COMPLETED at :data:`T0` with the previous output, and no attempt."""
        with self.store.sessions.begin() as session:
            session.execute(
                update(Project)
                .where(Project.id == self.key)
                .values(status="COMPLETED", output_path=self.output_path, updated_at=T0)
            )
            session.execute(delete(ATTEMPTS))
        self.store.engine.dispose()  # no connection of ours open while the child runs
        shutil.rmtree(self.output.parent, ignore_errors=True)
        self.output.parent.mkdir(parents=True)
        self.write_old()

    def child(self, command: str, *extra: str) -> dict[str, Any]:
        """Run the child's ``command`` in a fresh process (forked by :class:`Zygote`, which
        has only imported); return the JSON it prints last."""
        argv = [str(self.script), command, self.url, str(self.media), self.key, *extra]
        run = Zygote.shared().run(argv)
        assert run.returncode == 0, run.stderr
        found: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
        return found

    def judge(self, found: dict[str, Any], point: CrashPoint | None) -> str:
        """One recovery's outcome: ``completed`` (the new output whole), ``failed`` (the
        previous one whole) or ``unchanged`` (the start never committed: the previous
        one); nothing but the output beside it, and its stored path unchanged."""
        name = self.output_name
        assert found["listing"] == [name], f"left beside the output: {found['listing']}"
        updated = datetime.datetime.fromisoformat(str(found["updated_at"]))
        # SQLite gives the stored time back without its time zone (UTC).
        unchanged = updated.replace(tzinfo=updated.tzinfo or datetime.timezone.utc) == T0
        output = found[self.digest_key]
        if found["status"] == "COMPLETED" and not unchanged:
            assert output == self.new, "COMPLETED without the new output"
            outcome = "completed"
        elif found["status"] == "FAILED":
            assert output == self.old, "FAILED without the previous output"
            outcome = "failed"
        else:
            assert (found["status"], unchanged) == ("COMPLETED", True), found
            assert output == self.old, "unchanged without the previous output"
            outcome = "unchanged"
        assert found["output_path"] == self.output_path
        if point is None:
            assert outcome == "completed"
        return outcome


class Zygote:
    """``crash_zygote.py``, running: a child script's run, forked from a process that has
    imported what it needs, instead of a ``python script ...`` that imports it all again.
    One per test process, started at its first use."""

    _shared: ClassVar[Zygote | None] = None

    def __init__(self) -> None:
        self.scratch = tempfile.TemporaryDirectory(prefix="crash-zygote-")
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("crash_zygote.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        atexit.register(self.close)

    @classmethod
    def shared(cls) -> Zygote:
        if cls._shared is None or cls._shared.process.poll() is not None:
            cls._shared = cls()
        return cls._shared

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """``python *argv``, forked: its exit status and output, as subprocess.run gives them."""
        out, err = Path(self.scratch.name, "stdout"), Path(self.scratch.name, "stderr")
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        request = {"argv": argv, "stdout": str(out), "stderr": str(err)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"the zygote ended ({self.process.poll()})"
        returncode: int = json.loads(answer)["returncode"]
        return subprocess.CompletedProcess(
            [sys.executable, *argv], returncode, out.read_text(), err.read_text()
        )

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=60)
        self.scratch.cleanup()
