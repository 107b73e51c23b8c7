"""RenderRunner: guarded start, the video file's lifecycle, failures of every kind, retries."""

from __future__ import annotations

import hashlib
import logging
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from renderstate import (
    Change,
    ProjectNotFoundError,
    RenderConflictError,
    RenderRunner,
    Status,
    TransitionRecord,
)
from renderstate.exceptions import InvalidOutputPathError, RenderInterruptedError
from renderstate.runner import Phase, RenderJob, RenderOutputError, _owning
from renderstate.testing import (
    FakeRenderer,
    InlineExecutor,
    MemoryAdapter,
    MemoryProject,
    RecordingObserver,
)
from renderstate.typing import ProgressSink


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name != "final.mp4"]


def inline_runner(renderer: Any, root: Path, **options: Any) -> RenderRunner[MemoryProject]:
    return RenderRunner(
        MemoryAdapter(), renderer, media_root=root, executor=InlineExecutor(), **options
    )


def test_a_successful_render_stores_the_video_and_completes(tmp_path: Path) -> None:
    """The video lands at projects/<key>/final.mp4 and the project is COMPLETED with that path."""
    project = MemoryProject()
    with inline_runner(FakeRenderer(frames=5), tmp_path) as runner:
        job = runner.submit(project)
        assert job.wait() is Status.COMPLETED
    final = tmp_path / "projects" / str(project.id) / "final.mp4"
    assert project.status == "COMPLETED"
    assert project.output_path == f"projects/{project.id}/final.mp4"
    assert final.read_bytes().count(b"frame ") == 5
    assert job.error is None
    assert job.progress.phase is Phase.DONE
    assert leftovers(tmp_path) == []


def test_the_renderer_gets_a_temporary_mp4_beside_the_final_file(tmp_path: Path) -> None:
    """target is a fresh .mp4 in a private directory in the final file's directory (named
    like it), never final.mp4 itself; the directory is gone afterwards."""
    fake = FakeRenderer(frames=1)
    private: list[Path] = []

    def renderer(project: object, target: Path, progress: ProgressSink) -> None:
        private.append(target.resolve().parent)  # the path leads there through a descriptor
        assert stat.S_IMODE(private[0].stat().st_mode) == 0o700
        fake(project, target, progress)

    project = MemoryProject()
    with inline_runner(renderer, tmp_path) as runner:
        runner.submit(project).wait()
    (target,) = fake.targets
    assert target.suffix == ".mp4"
    assert target.name != "final.mp4"
    folder = tmp_path / "projects" / str(project.id)
    assert private == [folder / target.name]
    assert not target.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["final.mp4"]


def test_the_final_video_is_readable_by_others(tmp_path: Path) -> None:
    """The moved file has mode 0644, not the 0600 of a temporary file."""
    project = MemoryProject()
    with inline_runner(FakeRenderer(frames=1), tmp_path) as runner:
        runner.submit(project).wait()
    assert (runner.file_path(project).stat().st_mode & 0o777) == 0o644


def test_a_re_render_replaces_the_video_at_the_same_path(tmp_path: Path) -> None:
    """COMPLETED -> PROCESSING -> COMPLETED writes the new video over final.mp4."""
    project = MemoryProject()
    with inline_runner(FakeRenderer(frames=2), tmp_path) as runner:
        runner.submit(project).wait()
        first = runner.file_path(project).read_bytes()
    with inline_runner(FakeRenderer(frames=7), tmp_path) as runner:
        assert runner.submit(project).wait() is Status.COMPLETED
        assert runner.file_path(project).read_bytes() != first
    assert project.output_path == f"projects/{project.id}/final.mp4"


@pytest.mark.parametrize(
    "exception",
    [RuntimeError("encoder crashed"), OSError("disk full"), KeyboardInterrupt, SystemExit],
    ids=["RuntimeError", "OSError", "KeyboardInterrupt", "SystemExit"],
)
def test_a_failing_re_render_keeps_the_old_video_and_leaves_no_temp_file(
    tmp_path: Path, exception: BaseException | type[BaseException]
) -> None:
    """Whatever the renderer raises mid-file, final.mp4 is byte-identical and nothing is left."""
    project = MemoryProject()
    with inline_runner(FakeRenderer(frames=3), tmp_path) as runner:
        runner.submit(project).wait()
    final = tmp_path / "projects" / str(project.id) / "final.mp4"
    before = digest(final)
    renderer = FakeRenderer(frames=10, fail_at_frame=4, exception=exception)
    runner = inline_runner(renderer, tmp_path)
    expected = exception if isinstance(exception, type) else type(exception)
    if issubclass(expected, Exception):
        runner.submit(project)
    else:
        # Interrupts are re-raised once the project is FAILED; inline, that is in submit().
        with pytest.raises(expected):
            runner.submit(project)
    job = runner.job(project)
    assert job is not None
    assert job.wait() is Status.FAILED
    assert project.status == "FAILED"
    assert project.output_path == f"projects/{project.id}/final.mp4"
    assert digest(final) == before
    assert leftovers(tmp_path) == []
    assert isinstance(job.error, expected)
    assert job.progress.phase is Phase.FAILED


def test_keyboard_interrupt_in_a_worker_thread_still_fails_the_project(tmp_path: Path) -> None:
    """With the thread executor, an interrupt raised by the renderer leaves the project FAILED."""
    project = MemoryProject()
    renderer = FakeRenderer(frames=5, fail_at_frame=2, exception=KeyboardInterrupt)
    with RenderRunner(MemoryAdapter(), renderer, media_root=tmp_path) as runner:
        job = runner.submit(project)
        assert job.wait() is Status.FAILED
    assert isinstance(job.error, KeyboardInterrupt)
    assert project.status == "FAILED"
    assert leftovers(tmp_path) == []


def test_a_renderer_that_writes_nothing_fails_the_render(tmp_path: Path) -> None:
    """Returning without writing the target is a failure: no empty final.mp4 is published."""
    project = MemoryProject()

    def lazy(project: object, target: Path, progress: ProgressSink) -> None:
        pass

    with inline_runner(lazy, tmp_path) as runner:
        job = runner.submit(project)
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, RenderOutputError)
    assert "empty" in str(job.error)
    assert not runner.file_path(project).exists()
    assert leftovers(tmp_path) == []


def test_a_renderer_that_deletes_its_target_fails_the_render(tmp_path: Path) -> None:
    """A missing target file is a failure, and the previous video stays."""
    project = MemoryProject()
    with inline_runner(FakeRenderer(frames=1), tmp_path) as runner:
        runner.submit(project).wait()
    before = digest(runner.file_path(project))

    def vanishing(project: object, target: Path, progress: ProgressSink) -> None:
        target.unlink()

    with inline_runner(vanishing, tmp_path) as runner:
        job = runner.submit(project)
    assert job.wait() is Status.FAILED
    assert "missing" in str(job.error)
    assert digest(runner.file_path(project)) == before


def test_a_failure_is_logged_with_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The renderer's exception is logged at ERROR with exc_info."""
    caplog.set_level(logging.ERROR, logger="renderstate.runner")
    with inline_runner(FakeRenderer(frames=3, fail_at_frame=1), tmp_path) as runner:
        runner.submit(MemoryProject())
    (record,) = [r for r in caplog.records if r.name == "renderstate.runner"]
    assert record.exc_info is not None
    assert "FakeRenderer failed at frame 1" in caplog.text


def test_a_second_start_is_refused_at_submit_with_409(tmp_path: Path) -> None:
    """submit() raises RenderConflictError at once while the first render runs."""
    release = threading.Event()
    started = threading.Event()

    def slow(project: object, target: Path, progress: ProgressSink) -> None:
        started.set()
        release.wait()
        target.write_bytes(b"video")

    project = MemoryProject()
    with RenderRunner(MemoryAdapter(), slow, media_root=tmp_path) as runner:
        job = runner.submit(project)
        started.wait()
        with pytest.raises(RenderConflictError) as info:
            runner.submit(project)
        assert info.value.status_code == 409
        assert runner.job(project) is job
        assert runner.progress(project) == job.progress
        release.set()
        assert job.wait() is Status.COMPLETED


def test_submit_is_guarded_before_anything_is_scheduled(tmp_path: Path) -> None:
    """A refused start schedules nothing and changes nothing."""
    executor = InlineExecutor()
    project = MemoryProject(status="PROCESSING")
    runner = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=executor)
    with pytest.raises(RenderConflictError):
        runner.submit(project)
    assert executor.scheduled == 0
    assert project.status == "PROCESSING"
    assert runner.progress(project) is None


def test_an_unsaved_project_is_refused_before_anything_changes(tmp_path: Path) -> None:
    """A project without a key raises ProjectNotFoundError and stays DRAFT."""
    project = MemoryProject()
    project.id = None  # type: ignore[assignment]
    runner = inline_runner(FakeRenderer(), tmp_path)
    with pytest.raises(ProjectNotFoundError):
        runner.submit(project)
    assert project.status == "DRAFT"


@pytest.mark.parametrize("path", ["/etc/final.mp4", "../final.mp4", "a/../../b.mp4"])
def test_a_bad_output_path_is_refused_before_anything_changes(tmp_path: Path, path: str) -> None:
    """output_path_for must give a URL-relative path; otherwise nothing starts."""
    project = MemoryProject()
    runner = inline_runner(FakeRenderer(), tmp_path, output_path_for=lambda p: path)
    with pytest.raises(InvalidOutputPathError):
        runner.submit(project)
    assert project.status == "DRAFT"


def test_output_path_for_chooses_where_the_video_goes(tmp_path: Path) -> None:
    """A custom output_path_for is both the file's location and the stored path."""
    project = MemoryProject(title="intro")
    runner = inline_runner(
        FakeRenderer(frames=1), tmp_path, output_path_for=lambda p: f"videos/{p.title}.mp4"
    )
    assert runner.submit(project).wait() is Status.COMPLETED
    assert project.output_path == "videos/intro.mp4"
    assert (tmp_path / "videos" / "intro.mp4").is_file()


class MappedProject:
    """A model with other field names and literals."""

    def __init__(self) -> None:
        self.pk = 7
        self.state = "new"
        self.video = ""


def test_lifecycle_options_serve_mapped_models(tmp_path: Path) -> None:
    """status_field, output_field, values and observers reach every lifecycle."""
    observer = RecordingObserver()
    project = MappedProject()
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=1),
        media_root=tmp_path,
        executor=InlineExecutor(),
        status_field="state",
        output_field="video",
        values={
            Status.DRAFT: "new",
            Status.PROCESSING: "busy",
            Status.COMPLETED: "ok",
            Status.FAILED: "ko",
        },
        observers=[observer],
    )
    assert runner.submit(project).wait() is Status.COMPLETED
    assert (project.state, project.video) == ("ok", "projects/7/final.mp4")
    assert [str(r.edge) for r in observer.records] == ["render", "complete"]


def test_scheduling_failure_fails_the_project(tmp_path: Path) -> None:
    """If the executor refuses the job, the project does not stay PROCESSING."""
    executor = InlineExecutor()
    executor.shutdown()
    project = MemoryProject()
    runner = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=executor)
    with pytest.raises(RuntimeError, match="shut down"):
        runner.submit(project)
    assert project.status == "FAILED"
    job = runner.job(project)
    assert job is not None
    assert job.wait() is Status.FAILED


def test_a_shut_down_runner_refuses_new_work(tmp_path: Path) -> None:
    """submit() after shutdown() raises RuntimeError and changes nothing."""
    runner = inline_runner(FakeRenderer(), tmp_path)
    runner.shutdown()
    project = MemoryProject()
    with pytest.raises(RuntimeError, match="shut down"):
        runner.submit(project)
    assert project.status == "DRAFT"


def test_wait_times_out_with_timeout_error(tmp_path: Path) -> None:
    """wait(timeout) raises TimeoutError while the render runs; done() is False meanwhile."""
    release = threading.Event()

    def blocked(project: object, target: Path, progress: ProgressSink) -> None:
        release.wait()
        target.write_bytes(b"video")

    with RenderRunner(MemoryAdapter(), blocked, media_root=tmp_path) as runner:
        job = runner.submit(MemoryProject())
        with pytest.raises(TimeoutError):
            job.wait(timeout=0.01)
        assert not job.done()
        assert job.status is None
        release.set()
        assert job.wait() is Status.COMPLETED
        assert job.done()


class FlakyAdapter(MemoryAdapter):
    """Fails the next N writes of a given status with a database-down error."""

    def __init__(self, failures: int, status: str) -> None:
        super().__init__()
        self.failures = failures
        self.status = status
        self.calls = 0

    def apply(self, project: object, change: Change) -> bool:
        if change.values[change.status_field] == self.status:
            self.calls += 1
            if self.failures > 0:
                self.failures -= 1
                raise ConnectionError("database is down")
        return super().apply(project, change)


@pytest.mark.parametrize(
    ("status", "renderer"),
    [("COMPLETED", FakeRenderer(frames=2)), ("FAILED", FakeRenderer(frames=2, fail_at_frame=1))],
)
def test_saving_the_end_is_retried_until_the_store_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, status: str, renderer: FakeRenderer
) -> None:
    """A store that fails 3 times then works still ends COMPLETED/FAILED; each failure is logged."""
    adapter = FlakyAdapter(failures=3, status=status)
    project = MemoryProject()
    runner = RenderRunner(adapter, renderer, media_root=tmp_path, executor=InlineExecutor())
    runner._sleep = lambda seconds: None
    assert runner.submit(project).wait() is Status(status)
    assert adapter.calls == 4
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 3
    assert all(r.levelno == logging.ERROR and r.exc_info for r in retries)


def test_saving_gives_up_loudly_after_the_persist_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that stays down is retried for persist_timeout, then logged CRITICAL and reported."""
    adapter = FlakyAdapter(failures=10**9, status="COMPLETED")
    project = MemoryProject()
    runner = RenderRunner(
        adapter,
        FakeRenderer(frames=1),
        media_root=tmp_path,
        executor=InlineExecutor(),
        persist_timeout=0.0,
    )
    job = runner.submit(project)
    assert job.wait() is Status.PROCESSING
    assert isinstance(job.error, ConnectionError)
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)
    assert "recover_interrupted" in caplog.text


def test_shutdown_with_cancel_pending_fails_the_queued_projects(tmp_path: Path) -> None:
    """Queued renders that never started are FAILED, not left PROCESSING, on a cancelling exit."""
    release = threading.Event()
    started = threading.Event()

    def blocked(project: object, target: Path, progress: ProgressSink) -> None:
        started.set()
        release.wait()
        target.write_bytes(b"video")

    first, second = MemoryProject(), MemoryProject()
    runner = RenderRunner(MemoryAdapter(), blocked, media_root=tmp_path, max_workers=1)
    running = runner.submit(first)
    started.wait()
    queued = runner.submit(second)
    assert queued.progress.phase is Phase.QUEUED
    runner.shutdown(wait=False, cancel_pending=True)
    assert queued.wait() is Status.FAILED
    assert second.status == "FAILED"
    release.set()
    assert running.wait() is Status.COMPLETED
    runner.shutdown(wait=True)


def test_leaving_the_with_block_on_an_error_cancels_queued_renders(tmp_path: Path) -> None:
    """An exception in the with block (Ctrl-C) fails queued projects and waits for running ones."""
    release = threading.Event()
    started = threading.Event()

    def blocked(project: object, target: Path, progress: ProgressSink) -> None:
        started.set()
        release.wait()
        target.write_bytes(b"video")

    def release_on_failure(record: TransitionRecord) -> None:
        if record.target is Status.FAILED:
            release.set()  # the queued render was cancelled: let the running one end

    first, second = MemoryProject(), MemoryProject()
    runner = RenderRunner(
        MemoryAdapter(),
        blocked,
        media_root=tmp_path,
        max_workers=1,
        observers=[release_on_failure],
    )

    def interrupted_session() -> None:
        with runner:
            runner.submit(first)
            started.wait()
            runner.submit(second)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_session()
    assert second.status == "FAILED"
    assert first.status == "COMPLETED"


def test_a_long_lived_runner_forgets_old_finished_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the most recent finished jobs are kept; the latest attempt is always there."""
    monkeypatch.setattr(_owning, "KEEP_FINISHED_JOBS", 3)
    runner = inline_runner(FakeRenderer(frames=1), tmp_path)
    projects = [MemoryProject() for _ in range(5)]
    for project in projects:
        runner.submit(project).wait()
    runner.submit(projects[0]).wait()  # a re-render makes project 0 the most recent
    kept = [runner.job(p) is not None for p in projects]
    assert kept == [True, False, False, True, True]


class GatedRenderer:
    """Each call waits for its own gate, then writes "attempt N" (or raises if told to)."""

    def __init__(self, *, raise_on: frozenset[int] = frozenset()) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.started = [threading.Event() for _ in range(4)]
        self.release = [threading.Event() for _ in range(4)]
        self.targets: list[Path] = []
        self.raise_on = raise_on

    def __call__(self, project: object, target: Path, progress: ProgressSink) -> None:
        with self._lock:
            n = self.calls
            self.calls += 1
            self.targets.append(target)
        target.write_bytes(f"attempt {n}".encode())
        self.started[n].set()
        self.release[n].wait()
        if n in self.raise_on:
            raise RuntimeError(f"attempt {n} crashed")

    def release_all(self) -> None:
        """Let every call end: a failing test must not hang on a gate."""
        for gate in self.release:
            gate.set()


@pytest.mark.parametrize("late_outcome", ["succeeds", "raises"])
def test_a_late_worker_of_a_superseded_attempt_neither_replaces_the_video_nor_saves(
    tmp_path: Path, late_outcome: str
) -> None:
    """Failed and re-submitted meanwhile, the old job leaves final.mp4 and the new attempt alone."""
    renderer = GatedRenderer(raise_on=frozenset({0}) if late_outcome == "raises" else frozenset())
    project = MemoryProject()
    runner = RenderRunner(MemoryAdapter(), renderer, media_root=tmp_path)
    try:
        old = runner.submit(project)
        renderer.started[0].wait()
        runner.lifecycle(project).fail("an operator gave up on it")
        new = runner.submit(project)
        renderer.started[1].wait()

        renderer.release[0].set()
        old.wait()
        assert isinstance(
            old.error, RenderInterruptedError if late_outcome == "succeeds" else RuntimeError
        )
        if late_outcome == "succeeds":
            assert "superseded by a newer render attempt" in str(old.error)
        assert project.status == "PROCESSING"
        assert not runner.file_path(project).exists()
        assert not renderer.targets[0].exists()
        assert runner.job(project) is new
        assert old.progress.phase is Phase.FAILED
        assert new.progress.phase is Phase.RENDERING

        renderer.release[1].set()
        assert new.wait() is Status.COMPLETED
    finally:
        renderer.release_all()
        runner.shutdown()
    assert runner.file_path(project).read_bytes() == b"attempt 1"
    assert project.status == "COMPLETED"
    assert leftovers(tmp_path) == []


def test_a_reader_never_sees_the_previous_attempts_figures_once_the_new_start_succeeded(
    tmp_path: Path,
) -> None:
    """Right after the new start is saved, another thread's progress() is queued at 0 frames."""
    project = MemoryProject()
    runner: RenderRunner[MemoryProject]
    seen: list[Any] = []
    starts = 0

    def read_from_another_thread(record: TransitionRecord) -> None:
        nonlocal starts
        if record.target is not Status.PROCESSING:
            return
        starts += 1
        if starts == 2:  # the re-render's start_render() has just been saved
            reader = threading.Thread(target=lambda: seen.append(runner.progress(project)))
            reader.start()
            reader.join()

    runner = inline_runner(FakeRenderer(frames=5), tmp_path, observers=[read_from_another_thread])
    first = runner.submit(project)
    assert first.wait() is Status.COMPLETED
    assert first.progress.frames_done == 5
    second = runner.submit(project)
    assert second.wait() is Status.COMPLETED
    (progress,) = seen
    assert progress is not None
    assert (progress.phase, progress.frames_done, progress.fraction) == (Phase.QUEUED, 0, 0.0)


def test_a_new_attempt_is_published_even_if_the_previous_job_has_not_finished_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Previous job saved COMPLETED but not yet done: the new one is shown, and stays shown."""
    finishing = threading.Event()
    may_finish = threading.Event()
    original_finish = RenderJob._finish
    gated_once = False

    def gated_finish(job: RenderJob[Any], status: Status, error: BaseException | None) -> None:
        nonlocal gated_once
        if not gated_once:
            gated_once = True
            finishing.set()
            may_finish.wait()
        original_finish(job, status, error)

    monkeypatch.setattr(RenderJob, "_finish", gated_finish)
    renderer = GatedRenderer()
    renderer.release[0].set()
    project = MemoryProject()
    # One worker: it is held by the old job's end, so the new job stays queued.
    runner = RenderRunner(MemoryAdapter(), renderer, media_root=tmp_path, max_workers=1)
    try:
        old = runner.submit(project)
        finishing.wait()
        assert project.status == "COMPLETED"
        assert not old.done()

        new = runner.submit(project)
        assert runner.job(project) is new
        progress = runner.progress(project)
        assert progress is not None
        assert (progress.phase, progress.frames_done) == (Phase.QUEUED, 0)

        may_finish.set()
        assert old.wait() is Status.COMPLETED  # what it saved, not the new attempt's PROCESSING
        assert old.progress.phase is Phase.DONE
        assert runner.job(project) is new
        assert runner.progress(project) == new.progress
        assert new.progress.phase is not Phase.DONE
        renderer.release[1].set()
        assert new.wait() is Status.COMPLETED
    finally:
        may_finish.set()
        renderer.release_all()
        runner.shutdown()
    assert runner.file_path(project).read_bytes() == b"attempt 1"


class OneSlowStartAdapter(MemoryAdapter):
    """Holds the start of one project until the start of another one has been saved."""

    def __init__(self, slow: MemoryProject) -> None:
        super().__init__()
        self.slow = slow
        self.slow_start_entered = threading.Event()
        self.other_start_saved = threading.Event()
        self.starts: list[object] = []

    def apply(self, project: object, change: Change) -> bool:
        starting = change.values[change.status_field] == "PROCESSING"
        if starting and project is self.slow:
            self.slow_start_entered.set()
            # A deadlock breaker, not a timing: the ordering assertion below is the test.
            self.other_start_saved.wait(timeout=10)
        applied = super().apply(project, change)
        if starting:
            self.starts.append(project)
            if project is not self.slow:
                self.other_start_saved.set()
        return applied


def test_submits_of_different_projects_do_not_queue_behind_one_slow_database_call(
    tmp_path: Path,
) -> None:
    """While one project's start waits on the database, another project's submit completes."""
    slow, fast = MemoryProject(title="slow"), MemoryProject(title="fast")
    adapter = OneSlowStartAdapter(slow)
    runner = RenderRunner(adapter, FakeRenderer(frames=1), media_root=tmp_path)
    jobs: list[RenderJob[MemoryProject]] = []
    submitter = threading.Thread(target=lambda: jobs.append(runner.submit(slow)))
    submitter.start()
    adapter.slow_start_entered.wait()
    fast_job = runner.submit(fast)
    submitter.join()
    assert adapter.starts == [fast, slow]
    assert fast_job.wait() is Status.COMPLETED
    assert jobs[0].wait() is Status.COMPLETED
    runner.shutdown()


@pytest.mark.parametrize("outcome", ["raises", "returns"])
def test_scratch_files_named_after_the_target_are_removed(tmp_path: Path, outcome: str) -> None:
    """Whether the render fails or not, files named <target name>* beside it do not stay."""
    project = MemoryProject()

    def messy(project: object, target: Path, progress: ProgressSink) -> None:
        target.with_name(f"{target.name}.soundtrack.wav").write_bytes(b"RIFF")
        target.write_bytes(b"video")
        if outcome == "raises":
            raise RuntimeError("the encoder crashed")

    with inline_runner(messy, tmp_path) as runner:
        job = runner.submit(project)
    assert job.wait() is (Status.FAILED if outcome == "raises" else Status.COMPLETED)
    assert leftovers(tmp_path) == []


def test_a_failed_render_writes_its_reason_to_the_app_s_error_field(tmp_path: Path) -> None:
    """RenderRunner(error_field=): a render that raises leaves its reason in the app's
    own column; the next render's start empties it (no task id without a task queue)."""
    project = MemoryProject()
    renderer = FakeRenderer(frames=10, fail_at_frame=4)
    with inline_runner(renderer, tmp_path, error_field="title") as runner:
        assert runner.submit(project).wait() is Status.FAILED
    assert project.title.startswith("RuntimeError")
    with inline_runner(FakeRenderer(frames=2), tmp_path, error_field="title") as runner:
        job = runner.submit(project)
        assert project.title is None, "the start emptied it"
        assert job.wait() is Status.COMPLETED
    assert project.title is None
