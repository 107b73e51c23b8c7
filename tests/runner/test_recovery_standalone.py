"""Recovery without a runner (renderstate.recovery), and the scratch files it removes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from renderstate import ProjectLifecycle, Status
from renderstate.files import create_temporary
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.recovery import recover_interrupted
from renderstate.testing import MemoryAdapter, MemoryProject, RecordingObserver

from .sqlite_store import Row, SQLiteStore


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leave_a_killed_render(final: Path) -> list[Path]:
    """What a render killed mid-way leaves beside final: its temporary file, a scratch file
    named after it, and moviepy's soundtrack written beside it in both recipes."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = create_temporary(final)
    partial.write_bytes(b"8 KB of a fragment")
    stem = partial.name.removesuffix(".mp4")
    left = [
        partial,
        partial.with_name(f"{partial.name}.soundtrack.wav"),
        partial.with_name(f"{partial.name}.TEMP_MPY_wvf_snd.m4a"),  # temp_audiofile=...
        partial.with_name(f"{stem}TEMP_MPY_wvf_snd.mp4"),  # temp_audiofile_path=dir
    ]
    for scratch in left[1:]:
        scratch.write_bytes(b"scratch")
    return left


def test_recover_from_an_adapter_and_candidates_alone(tmp_path: Path) -> None:
    """An app using ProjectLifecycle only: the PROCESSING project is failed (retryable), a
    project that completed meanwhile is left alone, the killed render's files are removed,
    final.mp4 is not touched, and nothing claims it was checked."""
    store = SQLiteStore(tmp_path / "db.sqlite3")
    media = tmp_path / "media"
    store.insert(Row("p1", "killed", "PROCESSING", "projects/p1/final.mp4"))
    store.insert(Row("p2", "done", "COMPLETED", "projects/p2/final.mp4"))
    final = media / "projects" / "p1" / "final.mp4"
    left = leave_a_killed_render(final)
    final.write_bytes(b"the previous video")
    before = digest(final)
    other = media / "projects" / "p1" / "final-v2.mp4"
    other.write_bytes(b"not ours")
    observer = RecordingObserver()
    stale = Row("p2", "done", "PROCESSING", "projects/p2/final.mp4")  # loaded before it completed

    records = recover_interrupted(
        store,
        [store.load("p1"), stale],
        final_file=lambda p: media / "projects" / p.id / "final.mp4",
        observers=[observer],
    )

    assert [(r.project_key, r.target) for r in records] == [("p1", Status.FAILED)]
    assert observer.records == records
    assert store.load("p1").status == "FAILED"
    assert store.load("p1").output_path == "projects/p1/final.mp4"
    assert store.load("p2").status == "COMPLETED"
    assert not any(p.exists() for p in left)
    assert sorted(p.name for p in final.parent.iterdir()) == ["final-v2.mp4", "final.mp4"]
    assert digest(final) == before
    error = records[0].error
    assert error is not None
    assert error.startswith("RenderInterruptedError: Project p1 was not rendered to the end")
    assert "untouched" not in error  # recovery cannot know: it does not claim it
    project = store.load("p1")
    ProjectLifecycle(project, store).start_render()  # retryable
    assert store.load("p1").status == "PROCESSING"


def test_recovery_needs_its_candidates_or_a_ledger_and_loader(tmp_path: Path) -> None:
    """Without candidates or with a ledger but no loader: a TypeError saying what to pass."""
    with pytest.raises(TypeError, match=r"filter\(status='PROCESSING'\)"):
        recover_interrupted(MemoryAdapter())
    with pytest.raises(TypeError, match=r"loader=store.loader\(Project\)"):
        recover_interrupted(MemoryAdapter(), ledger=Ledger(MemoryAttemptStore()))
    with pytest.raises(TypeError, match="no projects"):
        recover_interrupted(MemoryAdapter(), [], ledger=Ledger(MemoryAttemptStore()))


def test_with_a_ledger_it_is_the_ledgers_recovery(tmp_path: Path) -> None:
    """With a ledger and a loader, the expired attempt's project is failed and its files
    removed; the attempt is marked interrupted."""
    now = [1_800_000_000.0]
    attempts = MemoryAttemptStore()
    ledger = Ledger(attempts, lease=5, clock=lambda: now[0])
    project = MemoryProject(id=5)  # type: ignore[arg-type]
    adapter = MemoryAdapter()
    _, attempt = ledger.start(
        ProjectLifecycle(project, adapter), output_path="projects/5/final.mp4"
    )
    final = tmp_path / "projects" / "5" / "final.mp4"
    left = leave_a_killed_render(final)
    now[0] += 6
    records = recover_interrupted(
        adapter,
        ledger=ledger,
        loader=attempts.loader([project]),
        final_file=lambda p: tmp_path / "projects" / str(p.id) / "final.mp4",
    )
    assert [r.target for r in records] == [Status.FAILED]
    assert project.status == "FAILED"
    assert not any(p.exists() for p in left)
    recorded = ledger.get(attempt.id)
    assert recorded is not None
    assert recorded.state is AttemptState.INTERRUPTED


@pytest.mark.parametrize("with_ledger", [False, True])
def test_recovery_writes_the_reason_to_the_app_s_error_field(with_ledger: bool) -> None:
    """recover_interrupted(error_field=): each project it fails gets the reason in the
    app's own column, with or without a ledger."""
    now = [1_800_000_000.0]
    attempts = MemoryAttemptStore()
    ledger = Ledger(attempts, lease=5, clock=lambda: now[0])
    adapter = MemoryAdapter()
    project = MemoryProject(id=6)  # type: ignore[arg-type]
    if with_ledger:
        ledger.start(ProjectLifecycle(project, adapter))
        now[0] += 6
        recover_interrupted(
            adapter, ledger=ledger, loader=attempts.loader([project]), error_field="title"
        )
    else:
        project.status = "PROCESSING"
        recover_interrupted(adapter, [project], error_field="title")
    assert project.status == "FAILED"
    assert project.title.startswith("RenderInterruptedError: Project 6 was not rendered")
