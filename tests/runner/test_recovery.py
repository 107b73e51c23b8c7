"""recover_interrupted: a render killed with its process is failed, cleaned up, nothing else."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from renderstate import RenderRunner, Status
from renderstate.runner import RenderInterruptedError
from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject

from .sqlite_store import Row, SQLiteStore

CHILD = Path(__file__).with_name("render_child.py")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_recover_after_the_rendering_process_was_sigkilled(tmp_path: Path) -> None:
    """A child SIGKILLed mid-render leaves PROCESSING; recovery fails it, keeps the old video."""
    store = SQLiteStore(tmp_path / "projects.sqlite3")
    media = tmp_path / "media"
    video = store.insert(Row("p1", "killed", "COMPLETED", "projects/p1/final.mp4"))
    done_meanwhile = store.insert(Row("p2", "finished", "COMPLETED", "projects/p2/final.mp4"))
    final = media / "projects" / "p1" / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"the previous, good video")
    before = hashlib.sha256(final.read_bytes()).hexdigest()

    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(store.path), str(media), video.id],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # the child is past frame 3 of a long render
        assert line.startswith("rendering"), line
        partial = Path(line.split(" ", 1)[1].strip())
        assert partial.exists()
        assert store.load("p1").status == "PROCESSING"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert store.load("p1").status == "PROCESSING"  # nobody is left to finish it

    stale = Row("p2", "finished", "PROCESSING", done_meanwhile.output_path)  # loaded earlier
    candidates = [*store.with_status("PROCESSING"), stale]
    runner = RenderRunner(store, FakeRenderer(), media_root=media, executor=InlineExecutor())
    records = runner.recover_interrupted(candidates)

    assert [(r.project_key, r.target) for r in records] == [("p1", Status.FAILED)]
    assert records[0].error is not None
    assert "process rendering it ended" in records[0].error
    assert store.load("p1").status == "FAILED"
    assert store.load("p1").output_path == "projects/p1/final.mp4"
    assert hashlib.sha256(final.read_bytes()).hexdigest() == before
    assert not partial.exists()
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    assert store.load("p2").status == "COMPLETED"  # completed meanwhile: untouched
    assert stale.status == "COMPLETED"
    # the recovered project can be rendered again
    assert runner.submit(store.load("p1")).wait() is Status.COMPLETED


def test_recovery_skips_what_is_not_processing(tmp_path: Path) -> None:
    """DRAFT, COMPLETED and FAILED projects are left as they are."""
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=InlineExecutor()
    )
    projects = [MemoryProject(status=s) for s in ("DRAFT", "COMPLETED", "FAILED")]
    assert runner.recover_interrupted(projects) == []
    assert [p.status for p in projects] == ["DRAFT", "COMPLETED", "FAILED"]


def test_recovery_never_fails_a_render_this_runner_is_running(tmp_path: Path) -> None:
    """A project whose render runs in this runner is skipped even though it is PROCESSING."""
    project = MemoryProject()
    seen: list[int] = []
    runner: RenderRunner[MemoryProject]

    def renderer(p: MemoryProject, target: Path, progress: object) -> None:
        seen.append(len(runner.recover_interrupted([p])))
        target.write_bytes(b"video")

    runner = RenderRunner(MemoryAdapter(), renderer, media_root=tmp_path, executor=InlineExecutor())
    assert runner.submit(project).wait() is Status.COMPLETED
    assert seen == [0]


def test_interrupted_error_says_what_to_do() -> None:
    """The recorded error names the project and how to retry, and pickles."""
    error = RenderInterruptedError(project_key=5, reason="its process died")
    assert "Project 5" in str(error)
    assert "Start the render again" in str(error)
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    # Nobody compared the video: the message claims nothing about it.
    assert "untouched" not in str(error)
    checked = RenderInterruptedError(project_key=5, reason="cancelled", untouched=True)
    assert "previous video, if any, is untouched (checked)" in str(checked)
    assert pickle.loads(pickle.dumps(checked)).untouched is True


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_moviepy_render_leaves_nothing_after_recovery(tmp_path: Path) -> None:
    """Killed mid-encode with its ffmpeg, a tone render leaves only final.mp4 once recovered."""
    pytest.importorskip("moviepy", reason="needs the render extra: renderstate[render]")
    store = SQLiteStore(tmp_path / "projects.sqlite3")
    media = tmp_path / "media"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    store.insert(Row("p1", "killed", "COMPLETED", "projects/p1/final.mp4"))
    final = media / "projects" / "p1" / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"the previous, good video")
    before = hashlib.sha256(final.read_bytes()).hexdigest()

    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(store.path), str(media), "p1", "moviepy"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        start_new_session=True,  # its own process group: ffmpeg dies with it, as in a crash
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # the soundtrack is written, frames are being encoded
        assert line.startswith("rendering"), line
        partial = Path(line.split(" ", 1)[1].strip())
        assert partial.exists()
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert store.load("p1").status == "PROCESSING"

    runner = RenderRunner(store, FakeRenderer(), media_root=media, executor=InlineExecutor())
    records = runner.recover_interrupted(store.with_status("PROCESSING"))

    assert [r.project_key for r in records] == ["p1"]
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    assert hashlib.sha256(final.read_bytes()).hexdigest() == before
    assert [p for p in scratch.rglob("*") if "renderstate" in p.name] == []


def test_recover_without_arguments_uses_the_runners_loader(tmp_path: Path) -> None:
    """recover_interrupted() with no projects asks find_processing for them."""
    store = SQLiteStore(tmp_path / "projects.sqlite3")
    store.insert(Row("p1", "stuck", "PROCESSING", None))
    store.insert(Row("p2", "done", "COMPLETED", "projects/p2/final.mp4"))
    runner = RenderRunner(
        store,
        FakeRenderer(),
        media_root=tmp_path / "media",
        executor=InlineExecutor(),
        find_processing=lambda: store.with_status("PROCESSING"),
    )
    assert [r.project_key for r in runner.recover_interrupted()] == ["p1"]
    assert store.load("p1").status == "FAILED"
    assert store.load("p2").status == "COMPLETED"


def test_recover_without_arguments_or_loader_says_what_to_pass(tmp_path: Path) -> None:
    """Without projects and without find_processing the error names both ways to fix it."""
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=InlineExecutor()
    )
    with pytest.raises(TypeError, match="find_processing=") as info:
        runner.recover_interrupted()
    assert "pass them" in str(info.value)
