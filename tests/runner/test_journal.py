"""The runner's publish journal: what recovery and the next attempt do with leftover backups.

A killed process is what leaves them (``tests/test_crashpoints.py`` kills one at every
system call); here each leftover is laid down as that process would have left it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from renderstate import RenderRunner, Status
from renderstate.files import backup_path, backups, create_temporary, scratch_path
from renderstate.ledger import Attempt, AttemptState, Ledger, new_owner
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.recovery import clean_up_attempt
from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject

OLD = b"the previous video"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def runner_for(
    tmp_path: Path, attempts: MemoryAttemptStore, project: MemoryProject, **options: object
) -> RenderRunner[MemoryProject]:
    return RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=2, **options),  # type: ignore[arg-type]
        media_root=tmp_path,
        executor=InlineExecutor(),
        ledger=Ledger(attempts),
        loader=attempts.loader([project]),
    )


def final_of(media: Path, runner: RenderRunner[MemoryProject], project: MemoryProject) -> Path:
    return media.joinpath(*runner.output_path(project).split("/"))


def leave_backup(final: Path, tag: int) -> Path:
    """A backup of the previous video, as a process killed after its rename leaves it."""
    path = backup_path(final, tag)
    path.write_bytes(OLD)
    return path


def test_recovery_drops_the_backup_of_a_completed_attempt(tmp_path: Path) -> None:
    """A process killed after its completion committed left its backup: no lease brings it
    back, yet recover_interrupted() removes it and keeps the new video."""
    attempts, project = MemoryAttemptStore(), MemoryProject()
    runner = runner_for(tmp_path, attempts, project)
    job = runner.submit(project)
    assert job.wait() is Status.COMPLETED
    assert job.attempt_id is not None
    final = final_of(tmp_path, runner, project)
    new = final.read_bytes()
    leave_backup(final, job.attempt_id)
    assert runner.recover_interrupted() == []
    assert backups(final) == {}
    assert final.read_bytes() == new
    runner.shutdown()


def test_recovery_puts_back_the_backup_of_an_attempt_that_ended_without_committing(
    tmp_path: Path,
) -> None:
    """The newest attempt ended, not COMPLETED: its backup is the video before it, put back."""
    attempts, project = MemoryAttemptStore(), MemoryProject()
    runner = runner_for(tmp_path, attempts, project, fail_at_frame=1)
    job = runner.submit(project)
    assert job.wait() is Status.FAILED
    assert job.attempt_id is not None
    final = final_of(tmp_path, runner, project)
    final.write_bytes(b"a video that never committed")
    leave_backup(final, job.attempt_id)
    runner.recover_interrupted()
    assert backups(final) == {}
    assert final.read_bytes() == OLD
    runner.shutdown()


def test_recovery_leaves_the_backups_of_a_project_whose_newest_attempt_is_live(
    tmp_path: Path,
) -> None:
    """An older attempt's backup is not settled while a newer attempt of the project is
    live (its begin settles it); nor is the live attempt's own."""
    attempts, project = MemoryAttemptStore(), MemoryProject()
    runner = runner_for(tmp_path, attempts, project)
    first = runner.submit(project)
    assert first.wait() is Status.COMPLETED
    assert first.attempt_id is not None
    ledger = runner.ledger
    assert ledger is not None
    _, live = ledger.start(runner.lifecycle(project), output_path=first.output_path)
    final = final_of(tmp_path, runner, project)
    new = final.read_bytes()
    older, own = leave_backup(final, first.attempt_id), leave_backup(final, live.id)
    runner.recover_interrupted()
    assert older.exists()
    assert own.exists()
    assert final.read_bytes() == new
    runner.shutdown()


def test_recovery_after_the_lease_puts_back_the_dead_attempt_s_backup(tmp_path: Path) -> None:
    """An attempt killed between its rename and its commit: once its lease expired,
    recover_interrupted() puts the previous video back and fails the project."""
    clock, attempts, project = Clock(), MemoryAttemptStore(), MemoryProject()
    dead = Ledger(attempts, clock=clock)
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(),
        media_root=tmp_path,
        ledger=Ledger(attempts, clock=clock),
        loader=attempts.loader([project]),
    )
    _, attempt = dead.start(runner.lifecycle(project), output_path="projects/x/final.mp4")
    final = tmp_path / "projects" / "x" / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"the dead attempt's video")
    leave_backup(final, attempt.id)
    clock.now += 3600
    assert [r.target for r in runner.recover_interrupted()] == [Status.FAILED]
    assert final.read_bytes() == OLD
    assert backups(final) == {}
    found = dead.get(attempt.id)
    assert found is not None
    assert found.state is AttemptState.INTERRUPTED
    runner.shutdown()


def test_the_next_attempt_puts_back_a_superseded_attempt_s_backup_before_it_renders(
    tmp_path: Path,
) -> None:
    """A backup of an attempt superseded before it committed is put back by the next
    attempt's begin: a failing next render leaves the previous video, not the superseded
    one's."""
    attempts, project = MemoryAttemptStore(), MemoryProject()
    runner = runner_for(tmp_path, attempts, project, fail_at_frame=1)
    ledger = runner.ledger
    assert ledger is not None
    lifecycle = runner.lifecycle(project)
    _, stale = ledger.start(lifecycle, output_path=runner.output_path(project))
    lifecycle.fail("stopped")
    final = final_of(tmp_path, runner, project)
    final.parent.mkdir(parents=True)
    final.write_bytes(b"the stale attempt's video")
    leave_backup(final, stale.id)
    assert runner.submit(project).wait() is Status.FAILED
    assert final.read_bytes() == OLD
    assert backups(final) == {}
    runner.shutdown()


def test_a_cleanup_removes_only_the_temporary_files_of_the_owner_that_is_gone(
    tmp_path: Path,
) -> None:
    """Two owners' temporary files beside one final file: the clean-up of one owner's
    attempt (recovery, takeover) removes its files and scratch files, and leaves the
    other's; an attempt recorded without an owner token removes them all, as before."""
    gone, alive = new_owner(), new_owner()
    final = tmp_path / "final.mp4"
    final.write_bytes(OLD)
    mine = create_temporary(final, token=gone[:16])
    scratch_path(mine, "soundtrack.wav").write_bytes(b"scratch")
    theirs = create_temporary(final, token=alive[:16])
    scratch = scratch_path(theirs, "soundtrack.wav")
    scratch.write_bytes(b"scratch")
    attempt = Attempt(1, "MemoryProject", "p", AttemptState.INTERRUPTED, owner=gone)
    clean_up_attempt(attempt, final, by_owner=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["final.mp4", theirs.name, scratch.name]
    )
    clean_up_attempt(dataclasses.replace(attempt, owner=None), final, by_owner=True)
    assert [p.name for p in tmp_path.iterdir()] == ["final.mp4"]


def test_recovery_after_the_lease_leaves_a_live_owner_s_temporary_file(tmp_path: Path) -> None:
    """The runner names its temporary file by its owner token; recovering a dead attempt
    of the project removes the dead owner's and leaves one another writer is filling."""
    clock, attempts, project = Clock(), MemoryAttemptStore(), MemoryProject()
    dead = Ledger(attempts, clock=clock)
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(),
        media_root=tmp_path,
        ledger=Ledger(attempts, clock=clock),
        loader=attempts.loader([project]),
    )
    _, attempt = dead.start(runner.lifecycle(project), output_path="projects/x/final.mp4")
    attempt = dead.begin(attempt)
    assert attempt.owner is not None
    final = tmp_path / "projects" / "x" / "final.mp4"
    final.parent.mkdir(parents=True)
    left = create_temporary(final, token=attempt.owner[:16])
    writing = create_temporary(final, token=new_owner()[:16])
    clock.now += 3600
    assert [r.target for r in runner.recover_interrupted()] == [Status.FAILED]
    assert not left.exists()
    assert writing.exists()
    runner.shutdown()


def test_the_runner_names_its_temporary_file_by_its_owner(tmp_path: Path) -> None:
    """The target a renderer is given carries the first 16 hex digits of the job's owner
    token (the one that holds the attempt), with a ledger and without."""
    seen: list[str] = []

    def render(project: MemoryProject, target: Path, progress: object) -> None:
        seen.append(target.name)
        target.write_bytes(b"NEW")

    for ledger in (Ledger(MemoryAttemptStore()), None):
        runner = RenderRunner(
            MemoryAdapter(),
            render,  # type: ignore[arg-type]
            media_root=tmp_path,
            executor=InlineExecutor(),
            ledger=ledger,
        )
        job = runner.submit(MemoryProject())
        assert job.wait() is Status.COMPLETED
        assert seen[-1] == f".final-{job.owner[:16]}.partial.mp4"
        if ledger is not None:
            assert job.attempt_id is not None
            attempt = ledger.get(job.attempt_id)
            assert attempt is not None
            assert attempt.owner == job.owner
        runner.shutdown()
