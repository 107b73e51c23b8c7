"""Cancel from any process, through the ledger, on a SQLite file, PostgreSQL and MariaDB: a
second server process cancels a render running in another (a real process), which ends
FAILED as cancelled at its next heartbeat, its temporary file removed and the previous video
byte-identical; both processes answer the same."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from renderstate import RenderRunner, Status
from renderstate.cli._store import Project, Store
from renderstate.ledger import AttemptState, Ledger
from renderstate.testing import FakeRenderer

from .cli_stores import db_targets, digest, store, url

__all__ = ["db_targets", "digest", "store", "url"]

CHILD = Path(__file__).with_name("ledger_child.py")

pytestmark = pytest.mark.slow


def test_a_cancel_in_another_process_stops_the_render_there(
    tmp_path: Path, url: str, store: Store
) -> None:
    """Process B (this one, no job of the project) cancels the re-render that process A
    runs: True, and A's render ends FAILED as cancelled with B's reason, its partial
    file gone, the previous video byte-identical and still the project's; once it has
    ended, a cancel answers False in B as it would in A."""
    media = tmp_path / "media"
    project = store.create("cancel me", {})
    ledger = Ledger(store.ledger.store, lease=5.0, progress_interval=0.2)
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter, FakeRenderer(), media_root=media, ledger=ledger, loader=store.loader
    )
    try:
        assert runner.submit(project).wait(60) is Status.COMPLETED
        final = runner.file_path(project)
        before = digest(final)
        output = store.get(project.id).output_path
        assert runner.cancel(store.get(project.id)) is False, "nothing renders yet"

        rendering = subprocess.Popen(
            [
                *(sys.executable, str(CHILD), "render", url, str(media), project.id),
                *("5.0", "0.2", "100000", "0.01"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert rendering.stdout is not None
        line = rendering.stdout.readline()
        assert line.startswith("rendering"), line + (
            rendering.stderr.read() if rendering.stderr else ""
        )
        partial = Path(line.split(" ", 1)[1].strip())
        assert partial.exists()
        assert runner.job(project) is not None
        assert runner.cancel(store.get(project.id), "stopped from the other server") is True
        out, err = rendering.communicate(timeout=120)
        assert rendering.returncode == 0, err
        assert "status FAILED" in out, out + err

        row = store.get(project.id)
        assert row.status == Status.FAILED.value
        assert row.output_path == output
        assert digest(final) == before
        assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
        attempt = store.current_attempt(row)
        assert attempt is not None
        assert attempt.state is AttemptState.FAILED
        assert attempt.cancel_reason == "stopped from the other server"
        assert attempt.error is not None
        assert "RenderCancelledError" in attempt.error
        assert "cancelled: stopped from the other server" in attempt.error
        assert runner.error(row) == attempt.error.splitlines()[0]
        assert runner.cancel(row) is False, "it has ended: nothing to cancel, here as there"
    finally:
        runner.shutdown()
