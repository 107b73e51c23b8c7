"""Progress: one attempt's figures, monotonic, throttled, and never mixed with the last attempt."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from renderstate import Progress, RenderRunner, Status
from renderstate._attempts import Attempt, AttemptState
from renderstate.runner import Phase, ProgressTracker, RenderJob
from renderstate.runner._heartbeat import progress_fields
from renderstate.runner.progress import progress_of
from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject
from renderstate.typing import Job, ProgressSink


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_monotonic_and_reaches_one(tmp_path: Path) -> None:
    """Every published fraction is in 0..1, never decreases, and the last one is 1.0 in done."""
    project = MemoryProject()
    seen: list[Progress] = []
    fake = FakeRenderer(frames=25, audio_chunks=4)
    runner: RenderRunner[MemoryProject]

    def watched(project: MemoryProject, target: Path, progress: ProgressSink) -> None:
        def sink(phase: str, done: int, total: int) -> None:
            progress(phase, done, total)
            latest = runner.progress(project)
            assert latest is not None
            seen.append(latest)

        fake(project, target, sink)

    runner = RenderRunner(
        MemoryAdapter(),
        watched,
        media_root=tmp_path,
        executor=InlineExecutor(),
        progress_interval=0.0,
    )
    job = runner.submit(project)
    assert job.wait() is Status.COMPLETED
    seen.append(job.progress)
    fractions = [p.fraction for p in seen]
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)
    assert [p.frames_done for p in seen] == sorted(p.frames_done for p in seen)
    assert all(p.frames_done <= p.frames_total for p in seen)
    assert seen[-1] == job.progress
    assert (job.progress.phase, job.progress.fraction) == (Phase.DONE, 1.0)
    assert (job.progress.frames_done, job.progress.frames_total) == (25, 25)
    assert job.progress.eta == 0.0
    assert job.progress.finished
    phases = [p.phase for p in seen]
    assert phases.index(Phase.WRITING_AUDIO) < phases.index(Phase.RENDERING)
    # audio chunks are not frames: the frame counts stay 0 while audio is written
    assert all(p.frames_done == 0 for p in seen if p.phase is Phase.WRITING_AUDIO)


def test_a_new_attempt_starts_at_zero_in_queued(tmp_path: Path) -> None:
    """After a finished render, a re-render reads queued 0/0, never the last attempt's 1.0."""
    blocker, project = MemoryProject(), MemoryProject()
    release = threading.Event()
    started = threading.Event()

    def renderer(p: MemoryProject, target: Path, progress: ProgressSink) -> None:
        if p is blocker:
            started.set()
            assert release.wait(30)
        FakeRenderer(frames=4)(p, target, progress)

    with RenderRunner(MemoryAdapter(), renderer, media_root=tmp_path, max_workers=1) as runner:
        # Whatever an assertion finds, the blocker is released: the runner's shutdown
        # waits for its worker, and a failure must fail now, not at pytest's timeout.
        try:
            assert runner.submit(project).wait(30) is Status.COMPLETED
            last = runner.progress(project)
            assert last is not None
            assert (last.phase, last.fraction) == (Phase.DONE, 1.0)
            runner.submit(blocker)
            assert started.wait(30)  # the only worker is busy: the next attempt must queue
            job = runner.submit(project)
            fresh = runner.progress(project)
            assert fresh is not None
            assert fresh.phase is Phase.QUEUED
            assert (fresh.fraction, fresh.frames_done, fresh.frames_total) == (0.0, 0, 0)
            assert fresh.eta is None
        finally:
            release.set()
        assert job.wait(30) is Status.COMPLETED


def test_a_retry_after_a_failure_starts_from_zero(tmp_path: Path) -> None:
    """A failed attempt keeps its figures in phase failed; the retry starts over with its own."""
    project = MemoryProject()
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=10, fail_at_frame=6),
        media_root=tmp_path,
        executor=InlineExecutor(),
        progress_interval=0.0,
    )
    failed = runner.submit(project)
    assert failed.wait() is Status.FAILED
    assert (failed.progress.phase, failed.progress.frames_done) == (Phase.FAILED, 6)
    assert failed.progress.fraction == pytest.approx(0.6)
    totals: list[int] = []

    def retry(p: MemoryProject, target: Path, progress: ProgressSink) -> None:
        at_start = runner.progress(p)
        assert at_start is not None
        assert at_start.phase is Phase.RENDERING
        totals.append(at_start.frames_total)
        assert at_start.frames_done == 0
        FakeRenderer(frames=3)(p, target, progress)

    runner._renderer = retry
    job = runner.submit(project)
    assert job.wait() is Status.COMPLETED
    assert totals == [0]
    assert (job.progress.frames_done, job.progress.frames_total) == (3, 3)
    assert failed.progress.phase is Phase.FAILED  # the old job's snapshot is its own


def test_updates_are_throttled_within_a_phase() -> None:
    """Reports closer together than the interval publish nothing new; the next one does."""
    clock = FakeClock()
    tracker = ProgressTracker(interval=0.1, clock=clock)
    tracker("rendering", 1, 1000)  # a phase change publishes at once
    first = tracker.latest
    assert first.frames_done == 1
    for frame in range(2, 500):
        tracker("rendering", frame, 1000)
    assert tracker.latest is first
    clock.now += 0.25
    tracker("rendering", 500, 1000)
    assert tracker.latest.frames_done == 500


def test_phase_changes_and_the_end_are_always_published() -> None:
    """A new phase and the final value are published however soon they come."""
    clock = FakeClock()
    tracker = ProgressTracker(interval=10.0, clock=clock)
    tracker("writing audio", 1, 3)
    assert tracker.latest.phase is Phase.WRITING_AUDIO
    tracker("rendering", 1, 8)
    assert tracker.latest.phase is Phase.RENDERING
    tracker("rendering", 7, 8)
    assert tracker.latest.frames_done == 1
    tracker.enter(Phase.FINALIZING)
    assert (tracker.latest.phase, tracker.latest.frames_done) == (Phase.FINALIZING, 7)
    tracker.enter(Phase.DONE)
    assert (tracker.latest.fraction, tracker.latest.frames_done) == (1.0, 8)


def test_eta_comes_from_the_time_spent_rendering() -> None:
    """ETA is None before the first frame, then remaining share x time per share."""
    clock = FakeClock()
    tracker = ProgressTracker(interval=0.0, clock=clock)
    clock.now += 5  # queued time counts in elapsed, not in the ETA
    tracker("rendering", 0, 100)
    assert tracker.latest.eta is None
    clock.now += 10
    tracker("rendering", 50, 100)
    assert tracker.latest.eta == pytest.approx(10.0)
    assert tracker.latest.elapsed == pytest.approx(15.0)


def test_counts_are_clamped_and_never_go_back() -> None:
    """done beyond total is total; a smaller done later does not lower the figures."""
    tracker = ProgressTracker(interval=0.0, clock=FakeClock())
    tracker("rendering", 15, 10)
    assert (tracker.latest.frames_done, tracker.latest.fraction) == (10, 1.0)
    tracker("rendering", 3, 10)
    assert (tracker.latest.frames_done, tracker.latest.fraction) == (10, 1.0)
    tracker("rendering", -4, 0)  # no total yet: nothing to count
    assert tracker.latest.frames_done == 10


def test_a_finished_attempt_ignores_late_reports() -> None:
    """A renderer thread that outlives its attempt cannot change its published figures."""
    tracker = ProgressTracker(interval=0.0, clock=FakeClock())
    tracker("rendering", 2, 10)
    final = tracker.enter(Phase.FAILED)
    tracker("rendering", 9, 10)
    assert tracker.enter(Phase.DONE) is final
    assert tracker.latest is final


@pytest.mark.parametrize("name", ["done", "queued", "", "x" * 33])
def test_a_reserved_or_unusable_phase_name_fails_the_render(tmp_path: Path, name: str) -> None:
    """A renderer reporting one of the runner's own phases, an empty or an overlong name
    gets a ValueError that says what to report, which fails the render."""

    def confused(project: object, target: Path, progress: ProgressSink) -> None:
        target.write_bytes(b"video")
        progress(name, 1, 2)

    runner = RenderRunner(MemoryAdapter(), confused, media_root=tmp_path, executor=InlineExecutor())
    job = runner.submit(MemoryProject())
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, ValueError)
    assert "'rendering'" in str(job.error)
    assert not list(tmp_path.rglob("final.mp4"))


def test_renderers_name_their_own_phases(tmp_path: Path) -> None:
    """Steps of the renderer's own (fetch assets, tts, compose, then frames as 'rendering')
    are published as Progress.step with their own units; fraction counts only frames."""
    jobs: list[RenderJob[Any]] = []
    seen: list[tuple[str, str, int, int, float]] = []

    class Keeping(InlineExecutor):
        def schedule(self, job: Job, /) -> None:
            jobs.append(job)  # type: ignore[arg-type]
            super().schedule(job)

    def renderer(project: object, target: Path, progress: ProgressSink) -> None:
        for step, total in (("fetch assets", 3), ("tts", 2), ("compose", 1)):
            for done in range(1, total + 1):
                progress(step, done, total)
                now = jobs[0].progress
                seen.append(
                    (now.phase.value, now.step, now.step_done, now.step_total, now.fraction)
                )
        for frame in range(1, 5):
            progress("rendering", frame, 4)
        target.write_bytes(b"video")

    runner = RenderRunner(
        MemoryAdapter(), renderer, media_root=tmp_path, executor=Keeping(), progress_interval=0.0
    )
    job = runner.submit(MemoryProject())
    assert job.wait() is Status.COMPLETED
    assert seen == [
        ("rendering", "fetch assets", 1, 3, 0.0),
        ("rendering", "fetch assets", 2, 3, 0.0),
        ("rendering", "fetch assets", 3, 3, 0.0),
        ("rendering", "tts", 1, 2, 0.0),
        ("rendering", "tts", 2, 2, 0.0),
        ("rendering", "compose", 1, 1, 0.0),
    ]
    end = job.progress
    assert (end.phase, end.step, end.fraction, end.frames_done, end.frames_total) == (
        Phase.DONE,
        "done",
        1.0,
        4,
        4,
    )


def test_progress_of_an_unknown_project_is_none(tmp_path: Path) -> None:
    """A project this runner never rendered has no progress."""
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=InlineExecutor()
    )
    assert runner.progress(MemoryProject()) is None
    assert runner.job(MemoryProject()) is None


LEASE = 30.0
RENEWED = 1_000_000.0
"""The database's time of the worker's last renewal (its lease runs to RENEWED + LEASE)."""


@pytest.mark.parametrize("since", [0.0, LEASE / 3])
@pytest.mark.parametrize("skew", [-3 * LEASE, 0.0, LEASE / 2, 2 * LEASE / 3 - 0.01, LEASE])
def test_a_readers_skew_shifts_live_and_age_by_the_skew_and_no_more(
    since: float, skew: float
) -> None:
    """The bound docs/several-processes.md states: a lease is on the database's clock, a
    reader compares it with its own. ``since`` seconds after a renewal (the runner renews
    every lease / 3, so at most that), a reader ``skew`` seconds ahead shows the live
    render live while skew < lease - since (always below 2/3 of the lease, never from one
    lease on), and an age of since + skew (never below 0)."""
    attempt = Attempt(
        id=1,
        scope="s",
        project_key="1",
        state=AttemptState.RENDERING,
        lease_expires_at=RENEWED + LEASE,
        phase="rendering",
    )
    shown = progress_of(attempt, RENEWED + since + skew, LEASE)
    assert shown.live is (skew < LEASE - since)
    assert shown.age == pytest.approx(max(since + skew, 0.0))
    if skew < 2 * LEASE / 3:
        assert shown.live
    if skew >= LEASE:
        assert not shown.live


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("Encoding video", "Encoding video"),
        ("x" * 255, "x" * 255),
        ("x" * 256, "x" * 254 + "\u2026"),
        ("y" * 10_000_000, "y" * 254 + "\u2026"),
        ("Enc\x00oding", "Enc\ufffdoding"),
        ("clip-\udcff.mp4", "clip-?.mp4"),
    ],
    ids=["plain", "255", "256", "ten-million", "nul", "lone-surrogate"],
)
def test_a_label_is_kept_as_the_ledger_holds_it(given: str, kept: str) -> None:
    """A renderer's description never fails its render: one longer than the ledger's 255
    characters is cut to 255 ending in an ellipsis, and what no database stores in text
    (a NUL, a lone surrogate) is replaced, so the heartbeat can always write it."""
    tracker = ProgressTracker()
    tracker("encode", 1, 4, given)
    assert tracker.latest.label == kept
    assert len(kept) <= 255


@pytest.mark.parametrize("given", [b"Encoding", 42, ["Encoding"]], ids=["bytes", "int", "list"])
def test_a_label_that_is_no_text_is_a_type_error_naming_it(given: object) -> None:
    """A label that is neither text nor None is a TypeError naming its type (never its
    value, which may be anything) and the fix; nothing is recorded."""
    tracker = ProgressTracker()
    tracker("encode", 1, 4, "Encoding video")
    before = tracker.latest
    with pytest.raises(TypeError, match=r"label must be a text or None, got (bytes|int|list)"):
        tracker("encode", 2, 4, given)  # type: ignore[arg-type]
    assert tracker.latest == before


def test_progress_read_from_the_ledger_has_the_label_until_the_attempt_ends() -> None:
    """A live attempt's recorded label is its progress's label; an ended attempt has none,
    as the runner's own job shows none once it is done or failed."""
    running = Attempt(
        id=1,
        scope="s",
        project_key="1",
        state=AttemptState.RENDERING,
        lease_expires_at=RENEWED + LEASE,
        phase="encode",
        done=2,
        total=4,
        label="Encoding video",
    )
    assert progress_of(running, RENEWED, LEASE).label == "Encoding video"
    for ended in (AttemptState.COMPLETED, AttemptState.FAILED, AttemptState.INTERRUPTED):
        finished = dataclasses.replace(running, state=ended, finished_at=RENEWED)
        assert progress_of(finished, RENEWED, LEASE).label is None


def test_the_heartbeat_writes_the_label_with_the_figures() -> None:
    """The heartbeat's progress columns carry the label (``None`` when there is none)."""
    tracker = ProgressTracker()
    tracker("encode", 1, 4, "Encoding video")
    assert progress_fields(tracker.latest)["label"] == "Encoding video"
    tracker("tts", 1, 4)
    assert progress_fields(tracker.latest)["label"] is None
