"""RenderRunner under the conditions a concurrency review found: interrupts while saving,
observers that submit, look-alike file names, superseded queued jobs, paths that move."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from renderstate import ProjectLifecycle, RenderRunner, Status, TransitionRecord
from renderstate.exceptions import RenderInterruptedError
from renderstate.runner import ThreadExecutor
from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject
from renderstate.typing import ProgressSink

from .sqlite_store import Row, SQLiteStore


class InterruptedSave(MemoryAdapter):
    """An adapter whose COMPLETED save is cut short by Ctrl-C."""

    def apply(self, project: object, change: Any) -> bool:
        if change.values[change.status_field] == "COMPLETED":
            raise KeyboardInterrupt
        return super().apply(project, change)


def test_an_interrupt_while_saving_still_ends_the_job(tmp_path: Path) -> None:
    """Ctrl-C during complete(): wait() returns, and recovery can repair the project."""
    project = MemoryProject()
    runner = RenderRunner(
        InterruptedSave(), FakeRenderer(), media_root=tmp_path, executor=InlineExecutor()
    )
    with pytest.raises(KeyboardInterrupt):
        runner.submit(project)
    job = runner.job(project)
    assert job is not None
    assert job.done()
    assert job.wait(timeout=1) is Status.PROCESSING
    assert isinstance(job.error, KeyboardInterrupt)
    (record,) = runner.recover_interrupted([project])
    assert record.target is Status.FAILED


def test_observers_that_submit_each_other_do_not_deadlock(tmp_path: Path) -> None:
    """Two renders completing at once, each observer re-rendering the other project."""
    a, b = MemoryProject(title="a"), MemoryProject(title="b")
    both_completing = threading.Barrier(2, timeout=10)
    resubmitted: list[Any] = []
    runner: RenderRunner[MemoryProject]

    def observer(record: TransitionRecord) -> None:
        if record.target is not Status.COMPLETED or len(resubmitted) >= 2:
            return
        both_completing.wait()  # both saves are done and both observers run now
        other = b if record.project_key == a.id else a
        resubmitted.append(runner.submit(other))

    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(),
        media_root=tmp_path,
        executor=ThreadExecutor(4),
        observers=[observer],
    )
    first = [runner.submit(a), runner.submit(b)]
    try:
        for job in first:
            assert job.wait(timeout=20) is Status.COMPLETED
        assert len(resubmitted) == 2
        for job in resubmitted:
            assert job.wait(timeout=20) is Status.COMPLETED
    finally:
        both_completing.abort()
        runner.shutdown(wait=False)


def test_recovery_spares_the_partials_of_a_look_alike_name(tmp_path: Path) -> None:
    """Recovering "intro" removes its own partial files, not those of "intro-v2"."""
    store = SQLiteStore(tmp_path / "projects.sqlite3")
    store.insert(Row("intro", "stuck", "PROCESSING", None))
    folder = tmp_path / "media" / "videos"
    folder.mkdir(parents=True)
    own = folder / ".intro-0123456789abcdef.partial.mp4"
    own_scratch = folder / ".intro-0123456789abcdef.partial.mp4.soundtrack.wav"
    sibling = folder / ".intro-v2-fedcba9876543210.partial.mp4"
    for path in (own, own_scratch, sibling):
        path.write_bytes(b"x")
    runner = RenderRunner(
        store,
        FakeRenderer(),
        media_root=tmp_path / "media",
        executor=InlineExecutor(),
        output_path_for=lambda row: f"videos/{row.id}.mp4",
    )
    assert len(runner.recover_interrupted([store.load("intro")])) == 1
    assert sorted(p.name for p in folder.iterdir()) == [sibling.name]


def test_a_superseded_queued_job_does_not_render(tmp_path: Path) -> None:
    """A queued attempt failed and restarted meanwhile never runs its renderer."""
    release = threading.Event()
    calls: list[str] = []

    def renderer(project: MemoryProject, target: Path, progress: ProgressSink) -> None:
        calls.append(project.title)
        if project.title == "blocker":
            release.wait(timeout=10)
        target.write_bytes(b"video")

    blocker, project = MemoryProject(title="blocker"), MemoryProject(title="p")
    runner = RenderRunner(MemoryAdapter(), renderer, media_root=tmp_path, max_workers=1)
    try:
        runner.submit(blocker)
        old = runner.submit(project)  # queued behind the blocker
        ProjectLifecycle(project).fail("an operator gave up on it")
        new = runner.submit(project)
        release.set()
        assert new.wait(timeout=10) is Status.COMPLETED
        old.wait(timeout=10)
        assert isinstance(old.error, RenderInterruptedError)
        assert calls == ["blocker", "p"]
    finally:
        release.set()
        runner.shutdown()


def test_the_video_is_written_where_the_saved_path_says(tmp_path: Path) -> None:
    """output_path_for is read once, at submit: the file and output_path always agree."""
    release = threading.Event()

    def renderer(project: MemoryProject, target: Path, progress: ProgressSink) -> None:
        if project.title == "blocker":
            release.wait(timeout=10)
        target.write_bytes(b"video")

    blocker, project = MemoryProject(title="blocker"), MemoryProject(title="old-name")
    runner = RenderRunner(
        MemoryAdapter(),
        renderer,
        media_root=tmp_path,
        max_workers=1,
        output_path_for=lambda p: f"videos/{p.title}.mp4",
    )
    try:
        runner.submit(blocker)
        job = runner.submit(project)  # queued behind the blocker
        project.title = "new-name"  # renamed while the render waits
        release.set()
        assert job.wait(timeout=10) is Status.COMPLETED
    finally:
        release.set()
        runner.shutdown()
    assert project.output_path == "videos/old-name.mp4"
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == [
        "blocker.mp4",
        "old-name.mp4",
    ]
