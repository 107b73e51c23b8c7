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

import datetime
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from adapters import databases
from crashpoints import FILE_CALLS, NETWORK_CALLS, CrashPoint, child_env, strace_available, sweep
from renderstate.cli._store import ATTEMPTS, Project, Store

CHILD = Path(__file__).with_name("crash_child.py")
OLD = b"the previous, good video; " * 200
NEW = b"the new video, " * 300  # what crash_child.py writes
T0 = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)

# A sweep runs two processes per crash point; a loaded machine makes that a few seconds.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def strace() -> None:
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
    """A project COMPLETED with its previous video, reset before every run."""

    def __init__(self, url: str, media: Path, mode: str | None = None) -> None:
        self.url = url
        self.media = media
        self.mode = mode
        self.store = Store(url)
        self.key = self.store.create("crash", {}).id
        self.final = media / "projects" / self.key / "final.mp4"

    def prepare(self) -> None:
        store = self.store
        with store.sessions.begin() as session:
            session.execute(
                update(Project)
                .where(Project.id == self.key)
                .values(
                    status="COMPLETED",
                    output_path=f"projects/{self.key}/final.mp4",
                    updated_at=T0,
                )
            )
            session.execute(delete(ATTEMPTS))
        store.engine.dispose()  # no connection of ours open while the child runs
        shutil.rmtree(self.final.parent, ignore_errors=True)
        self.final.parent.mkdir(parents=True)
        self.final.write_bytes(OLD)

    def check(self, point: CrashPoint | None) -> str:
        recover = ["recover"] if self.mode is None else ["runner-recover"]
        args = [] if self.mode is None else [self.mode]
        run = subprocess.run(
            [sys.executable, str(CHILD), *recover, self.url, str(self.media), self.key, *args],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        found = json.loads(run.stdout)
        assert found["listing"] == ["final.mp4"], f"left beside the video: {found['listing']}"
        updated = datetime.datetime.fromisoformat(found["updated_at"])
        # SQLite gives the stored time back without its time zone (UTC).
        unchanged = updated.replace(tzinfo=updated.tzinfo or datetime.timezone.utc) == T0
        if found["status"] == "COMPLETED" and not unchanged:
            assert found["final"] == sha(NEW), "COMPLETED without the new video"
            outcome = "completed"
        elif found["status"] == "FAILED":
            assert found["final"] == sha(OLD), "FAILED without the previous video"
            outcome = "failed"
        else:
            assert (found["status"], unchanged) == ("COMPLETED", True), found
            assert found["final"] == sha(OLD), "unchanged without the previous video"
            outcome = "unchanged"
        assert found["output_path"] == f"projects/{self.key}/final.mp4"
        if point is None:
            assert outcome == "completed"
        return outcome


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
