"""Ctrl-C on a real ``renderstate render`` process, in each phase of a real render.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group: the command and
the ffmpeg processes it runs. Whichever of them notices first, the reason stored on the
project's attempt is the user's, in public words.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from renderstate.cli._store import Store, StoreError

# Ten minutes of one still and a tone: each phase lasts seconds (the soundtrack's AAC
# encoding most), and the frames are few and tiny.
TIMELINE = {
    "width": 64,
    "height": 36,
    "fps": 1,
    "scenes": [{"duration": 600, "title": "a long render"}],
    "soundtrack": {"tone": 220},
}


def phase_of_the_render(store: Store) -> str | None:
    """The phase the ledger records for the only project's attempt, if it has begun."""
    try:
        projects = store.all()
        attempt = store.current_attempt(projects[0]) if projects else None
    except SQLAlchemyError:  # the render holds the SQLite file's write lock: ask again
        return None
    return None if attempt is None else attempt.phase


def writing_audio(media: Path) -> bool:
    """Whether the render is computing its soundtrack: its scratch WAV file is being written.

    The file appears when the "writing audio" phase starts, and grows through it; the ledger
    records phases at its heartbeat's pace, which can miss a phase of two seconds.
    """
    try:
        return any(
            p.name.endswith(".soundtrack.wav") and p.stat().st_size > 0 for p in media.rglob("*")
        )
    except OSError:  # a file came or went while listing
        return False


def opened(url: str) -> Store | None:
    """The render's database, once the render has created it."""
    try:
        return Store(url, create=False)
    except (StoreError, SQLAlchemyError):
        return None


def interrupted_in(tmp_path: Path, phase: str) -> tuple[subprocess.CompletedProcess[str], Store]:
    """Run `renderstate render` and press Ctrl-C once the ledger shows ``phase``."""
    timeline = tmp_path / "timeline.json"
    timeline.write_text(json.dumps(TIMELINE))
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    argv = ["render", str(timeline), "--db", url, "--media", str(tmp_path / "m")]
    child = subprocess.Popen(
        [sys.executable, "-m", "renderstate", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        process_group=0,  # its own group, as a terminal's foreground job has
    )
    store: Store | None = None
    try:
        deadline = time.monotonic() + 120
        seen = None
        while seen != phase:
            if phase == "writing audio" and writing_audio(tmp_path / "m"):
                break  # a phase of seconds: the ledger's heartbeat may never show it
            if child.poll() is not None:
                out, err = child.communicate()
                pytest.fail(f"the render ended before {phase!r} (last {seen!r}): {out}{err}")
            assert time.monotonic() < deadline, f"no {phase!r} phase within 120 s"
            time.sleep(0.02)
            store = store or opened(url)
            seen = None if store is None else phase_of_the_render(store)
        os.killpg(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if store is not None:
            store.close()
        if child.poll() is None:
            child.kill()
            child.communicate()
    result = subprocess.CompletedProcess(child.args, child.returncode, out, err)
    return result, Store(url, create=False)


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["writing audio", "rendering"])
def test_ctrl_c_stores_the_users_reason_in_every_phase(tmp_path: Path, phase: str) -> None:
    """Ctrl-C mid-render exits 130; the stored reason says Ctrl-C cancelled it, publicly."""
    result, store = interrupted_in(tmp_path, phase)
    try:
        (project,) = store.all()
        attempt = store.current_attempt(project)
    finally:
        store.close()
    assert result.returncode == 130, result.stdout + result.stderr
    assert project.status == "FAILED"
    assert attempt is not None
    assert attempt.error is not None
    assert "cancelled with Ctrl-C" in attempt.error, attempt.error
    assert attempt.error.startswith("RenderCancelledError: "), attempt.error
    assert "ffmpeg" not in attempt.error
    assert "exit status" not in attempt.error
    assert "_Cancelled" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "renderstate: interrupted and the render cancelled" in result.stderr, result.stderr
    assert not [p for p in (tmp_path / "m").rglob("*") if p.is_file()]
