"""status_body: one JSON shape for every framework, fed by real runner renders."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from renderstate import (
    Change,
    Progress,
    ProjectLifecycle,
    RenderJob,
    RenderRunner,
    Status,
    TransitionRecord,
    UnknownStatusError,
)
from renderstate.ledger import Ledger
from renderstate.ledger._recovery import INTERRUPTED as LEDGER_INTERRUPTED
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.recovery import INTERRUPTED
from renderstate.runner import Phase
from renderstate.testing import FakeRenderer, MemoryAdapter, MemoryProject
from renderstate.typing import ProgressSink, ProgressSource
from renderstate.web import StatusBody, status_body


class GatedRenderer:
    """FakeRenderer that stops after ``pause_at`` frames until ``release`` is set."""

    def __init__(self, frames: int = 10, pause_at: int = 0, **fake: object) -> None:
        self.frames = frames
        self.pause_at = pause_at
        self.paused = threading.Event()
        self.release = threading.Event()
        self.fake = FakeRenderer(frames, **fake)

    def __call__(self, project: object, target: Path, progress: ProgressSink) -> None:
        def sink(phase: str, done: int, total: int) -> None:
            progress(phase, done, total)
            if done == self.pause_at and not self.release.is_set():
                self.paused.set()
                assert self.release.wait(30)

        if self.pause_at == 0:
            self.paused.set()
            assert self.release.wait(30)
        self.fake(project, target, sink)


def runner_for(
    tmp_path: Path, renderer: object, adapter: MemoryAdapter | None = None, **options: object
) -> RenderRunner[MemoryProject]:
    return RenderRunner(
        MemoryAdapter() if adapter is None else adapter,
        renderer,
        media_root=tmp_path,
        progress_interval=0.0,
        **options,
    )


def ledger_options(with_ledger: bool) -> dict[str, object]:
    """The runner options of a runner with its own attempt ledger, or without one."""
    return {"ledger": Ledger(MemoryAttemptStore())} if with_ledger else {}


def finished_body(project: MemoryProject, status: Status, error: str | None = None) -> StatusBody:
    """The whole body of a project whose first render ended in ``status``: no progress."""
    output = f"projects/{project.id}/final.mp4" if status is Status.COMPLETED else None
    return {
        "id": str(project.id),
        "status": status.value,
        "output_path": output,
        "progress": None,
        "error": error,
    }


LEDGERS = [pytest.param(False, id="no-ledger"), pytest.param(True, id="ledger")]
QUEUED_BODY = {
    "phase": "queued",
    "fraction": 0.0,
    "done": 0,
    "total": 0,
    "eta_seconds": None,
    "live": True,
    "age_seconds": 0.0,
    "label": None,
}


def test_a_draft_project_has_no_progress(tmp_path: Path) -> None:
    """Before any render: DRAFT, no video, null progress, no error; the body is JSON."""
    project = MemoryProject()
    with runner_for(tmp_path, FakeRenderer()) as runner:
        body = status_body(project, runner)
    assert body == {
        "id": str(project.id),
        "status": "DRAFT",
        "output_path": None,
        "progress": None,
        "error": None,
    }
    assert json.loads(json.dumps(body)) == body


def test_a_running_render_shows_its_own_figures(tmp_path: Path) -> None:
    """While rendering, progress is the attempt's phase, frames, fraction and ETA."""
    project = MemoryProject()
    renderer = GatedRenderer(frames=10, pause_at=4)
    with runner_for(tmp_path, renderer) as runner:
        job = runner.submit(project)
        assert renderer.paused.wait(30)
        body = status_body(project, runner)
        renderer.release.set()
        job.wait(30)
    assert body["status"] == "PROCESSING"
    assert body["progress"] is not None
    progress = body["progress"]
    assert (progress["phase"], progress["done"], progress["total"]) == ("rendering", 4, 10)
    assert progress["fraction"] == pytest.approx(0.4)
    assert progress["eta_seconds"] is not None
    assert progress["eta_seconds"] >= 0.0
    assert body["error"] is None
    assert json.loads(json.dumps(body)) == body


def test_a_queued_render_shows_queued_at_zero(tmp_path: Path) -> None:
    """A submitted render waiting for a worker shows phase queued at 0 of 0."""
    blocker, project = MemoryProject(), MemoryProject()
    renderer = GatedRenderer(frames=5)
    with runner_for(tmp_path, renderer, max_workers=1) as runner:
        first = runner.submit(blocker)
        assert renderer.paused.wait(30)
        runner.submit(project)
        body = status_body(project, runner)
        renderer.release.set()
        first.wait(30)
    assert body["status"] == "PROCESSING"
    assert body["progress"] == QUEUED_BODY


@pytest.mark.parametrize("with_ledger", LEDGERS)
def test_completed_shows_the_video_and_no_progress(tmp_path: Path, with_ledger: bool) -> None:
    """After a render: COMPLETED, the output path, and null progress (nothing runs)."""
    project = MemoryProject()
    options = ledger_options(with_ledger)
    with runner_for(tmp_path, FakeRenderer(frames=3), **options) as runner:
        assert runner.submit(project).wait(30) is Status.COMPLETED
        body = status_body(project, runner)
    assert body == finished_body(project, Status.COMPLETED)


@pytest.mark.parametrize(
    "reader",
    [
        pytest.param("renderer", id="no-ledger"),
        pytest.param("renderer with ledger", id="ledger"),
        # Another process's failure: this runner shares the ledger and never rendered it.
        pytest.param("other runner", id="ledger-other-runner"),
    ],
)
def test_failed_shows_the_reason_and_no_progress(tmp_path: Path, reader: str) -> None:
    """A failed render: FAILED, the reason of that attempt, null progress, for any reader."""
    project = MemoryProject()
    renderer = FakeRenderer(frames=5, fail_at_frame=2, exception=RuntimeError("disk full"))
    store = MemoryAttemptStore()

    def options() -> dict[str, object]:  # a ledger of its own over the one store
        return {} if reader == "renderer" else {"ledger": Ledger(store)}

    worker = runner_for(tmp_path, renderer, **options())
    web = runner_for(tmp_path, FakeRenderer(), **options()) if reader == "other runner" else worker
    with worker, contextlib.nullcontext() if web is worker else web:
        assert worker.submit(project).wait(30) is Status.FAILED
        body = status_body(project, web)
        assert web.error(project) == "RuntimeError: disk full"
    assert body == finished_body(project, Status.FAILED, "RuntimeError: disk full")


def test_a_retry_hides_the_last_error_and_a_success_clears_it(tmp_path: Path) -> None:
    """While a retry runs the old error is not shown; after it succeeds there is none."""
    project = MemoryProject()
    failing = FakeRenderer(frames=5, fail_at_frame=1, exception=RuntimeError("boom"))
    with runner_for(tmp_path, failing) as runner:
        runner.submit(project).wait(30)
    renderer = GatedRenderer(frames=5, pause_at=2)
    with runner_for(tmp_path, renderer) as runner:
        assert runner.error(project) is None  # this runner never saw the failure
        job = runner.submit(project)
        assert renderer.paused.wait(30)
        during = status_body(project, runner)
        renderer.release.set()
        job.wait(30)
        after = status_body(project, runner)
        assert runner.error(project) is None
    assert (during["status"], during["error"]) == ("PROCESSING", None)
    assert (after["status"], after["error"]) == ("COMPLETED", None)


def test_a_rerenders_first_polls_never_show_the_previous_attempts_figures(
    tmp_path: Path,
) -> None:
    """Polling while a re-render is submitted never shows the last attempt's 100 %."""
    project = MemoryProject()
    renderer = GatedRenderer(frames=10, pause_at=2)
    renderer.release.set()  # the first render runs through
    bodies: list[dict[str, object]] = []
    stop = threading.Event()

    with runner_for(tmp_path, renderer) as runner:
        runner.submit(project).wait(30)
        assert status_body(project, runner)["status"] == "COMPLETED"
        renderer.release.clear()
        renderer.paused.clear()

        def poll() -> None:
            while not stop.is_set():
                bodies.append(dict(status_body(project, runner)))

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            job = runner.submit(project)
            assert renderer.paused.wait(30)  # the new attempt is held at frame 2 of 10
            held = status_body(project, runner)
        finally:
            stop.set()
            poller.join(30)
        renderer.release.set()
        job.wait(30)

    processing = [b for b in [*bodies, held] if b["status"] == "PROCESSING"]
    assert processing, "the poller never saw the re-render running"
    for body in processing:
        progress = body["progress"]
        assert progress is not None, body  # this runner knows the attempt at once
        assert isinstance(progress, dict)
        assert progress["phase"] in {"queued", "rendering"}, body
        assert progress["fraction"] <= 0.2, body
        assert progress["done"] <= 2, body
    progress = held["progress"]
    assert progress is not None
    assert (progress["phase"], progress["done"], progress["total"]) == ("rendering", 2, 10)
    assert progress["fraction"] == pytest.approx(0.2)
    # The video of the first render stays reachable while the second runs.
    assert {b["output_path"] for b in processing} == {f"projects/{project.id}/final.mp4"}


@dataclasses.dataclass
class Clip:
    """A model with other names, integer literals and a NOT NULL output."""

    pk: int
    state: int = 10
    video: str = ""


INTEGERS = {Status.DRAFT: 10, Status.PROCESSING: 20, Status.COMPLETED: 30, Status.FAILED: 40}


def test_other_field_names_and_literals(tmp_path: Path) -> None:
    """status_field/output_field/values read the model as the lifecycle does; '' is no video."""
    clip = Clip(pk=7)
    options = {"status_field": "state", "output_field": "video", "values": INTEGERS}
    with runner_for(tmp_path, FakeRenderer(frames=2), **options) as runner:
        before = status_body(clip, runner, **options)
        runner.submit(clip).wait(30)
        after = status_body(clip, runner, **options)
    assert (before["id"], before["status"], before["output_path"]) == (7, "DRAFT", None)
    assert (after["status"], after["output_path"]) == ("COMPLETED", "projects/7/final.mp4")


def test_an_unknown_stored_status_is_an_error(tmp_path: Path) -> None:
    """A value outside the (mapped) literals raises UnknownStatusError, as the lifecycle does."""
    project = MemoryProject(status="ARCHIVED")
    with runner_for(tmp_path, FakeRenderer()) as runner, pytest.raises(UnknownStatusError):
        status_body(project, runner)


def test_none_instead_of_a_project_says_to_answer_404_first(tmp_path: Path) -> None:
    """`status_body(None, runner)` (a lookup that found nothing) is a TypeError naming the fix."""
    with runner_for(tmp_path, FakeRenderer()) as runner, pytest.raises(TypeError) as raised:
        status_body(None, runner)  # type: ignore[type-var]
    message = str(raised.value)
    assert "got None instead of a project" in message
    assert "ProjectNotFoundError(project_key=" in message
    assert "404" in message
    assert "status_field" not in message  # the field names are not the problem


def test_key_can_be_given(tmp_path: Path) -> None:
    """key= replaces the id read from the object."""
    with runner_for(tmp_path, FakeRenderer()) as runner:
        assert status_body(MemoryProject(), runner, key="abc")["id"] == "abc"


class LedgerLike:
    """Another ProgressSource: what a database-backed ledger will answer."""

    def __init__(self, progress: Progress | None, error: str | None) -> None:
        self._progress = progress
        self._error = error

    def progress(self, project: object) -> Progress | None:
        return self._progress

    def error(self, project: object) -> str | None:
        return self._error


def test_any_progress_source_works_and_finished_figures_are_hidden() -> None:
    """A source's finished attempt never shows as progress, even on a PROCESSING row."""
    done = Progress(Phase.DONE, 1.0, 10, 10, 3.0, 0.0)
    source: ProgressSource[MemoryProject] = LedgerLike(done, "RuntimeError: old")
    body = status_body(MemoryProject(status="PROCESSING"), source)
    assert (body["progress"], body["error"]) == (None, None)
    failed = status_body(MemoryProject(status="FAILED"), source)
    assert failed["error"] == "RuntimeError: old"


def test_the_body_carries_the_progress_label_and_null_without_one() -> None:
    """The renderer's description of its step is the progress's ``label`` in the body, as
    JSON; ``null`` when it gave none."""
    running = Progress(Phase.RENDERING, 0.5, 5, 10, 3.0, 3.0, "encode", 5, 10)
    project = MemoryProject(status="PROCESSING")
    labelled = dataclasses.replace(running, label="Encodage de la vid\u00e9o")
    body = status_body(project, LedgerLike(labelled, None))
    assert body["progress"] is not None
    assert body["progress"]["label"] == "Encodage de la vid\u00e9o"
    assert json.loads(json.dumps(body)) == body
    bare = status_body(project, LedgerLike(running, None))["progress"]
    assert bare is not None
    assert bare["label"] is None


# The races between the row and the job: a reader loads the project at any moment, and the
# row changes before the job object that rendered it has ended. An observer runs in the
# job's thread right after the row was written and before the job ends, which pins each
# window without sleeping.


class BodyAt:
    """An observer that takes the status body when the row first reaches ``target``."""

    def __init__(self, target: Status) -> None:
        self.target = target
        self.runner: RenderRunner[MemoryProject] | None = None
        self.project = MemoryProject()
        self.bodies: list[tuple[StatusBody, bool]] = []
        self.then: Callable[[], None] | None = None

    def __call__(self, record: TransitionRecord, /) -> None:
        if record.target is not self.target or self.bodies:
            return
        assert self.runner is not None
        job = self.runner.job(self.project)
        assert job is not None
        self.bodies.append((status_body(self.project, self.runner), job.done()))
        if self.then is not None:
            self.then()

    def body(self) -> StatusBody:
        """The body taken, after checking it was taken inside the window."""
        [(body, job_ended)] = self.bodies
        assert not job_ended, "the row was written after the job ended: no window pinned"
        return body


def watched_runner(
    tmp_path: Path, renderer: object, at: BodyAt, *, with_ledger: bool, **options: object
) -> RenderRunner[MemoryProject]:
    options.update(ledger_options(with_ledger))
    runner = runner_for(tmp_path, renderer, observers=[at], **options)
    at.runner = runner
    return runner


@pytest.mark.parametrize("with_ledger", LEDGERS)
def test_a_completed_project_shows_no_progress_while_its_job_ends(
    tmp_path: Path, with_ledger: bool
) -> None:
    """The row says COMPLETED before the job has ended: progress is null, not "finalizing"."""
    at = BodyAt(Status.COMPLETED)
    with watched_runner(tmp_path, FakeRenderer(frames=3), at, with_ledger=with_ledger) as runner:
        assert runner.submit(at.project).wait(30) is Status.COMPLETED
    assert at.body() == finished_body(at.project, Status.COMPLETED)


@pytest.mark.parametrize("with_ledger", LEDGERS)
def test_a_failed_project_shows_its_error_as_soon_as_the_row_says_failed(
    tmp_path: Path, with_ledger: bool
) -> None:
    """The row says FAILED before the job has ended: the error is there, progress is null."""
    at = BodyAt(Status.FAILED)
    renderer = FakeRenderer(frames=5, fail_at_frame=2, exception=RuntimeError("disk full"))
    with watched_runner(tmp_path, renderer, at, with_ledger=with_ledger) as runner:
        assert runner.submit(at.project).wait(30) is Status.FAILED
    assert at.body() == finished_body(at.project, Status.FAILED, "RuntimeError: disk full")


class HookedAdapter(MemoryAdapter):
    """A memory adapter that calls ``after_start`` once a start has been applied."""

    def __init__(self) -> None:
        super().__init__()
        self.after_start: Callable[[], None] | None = None

    def apply(self, project: object, change: Change) -> bool:
        applied = super().apply(project, change)
        hook = self.after_start
        if applied and hook is not None and change.values.get("status") == "PROCESSING":
            self.after_start = None
            hook()
        return applied


@pytest.mark.parametrize("with_ledger", LEDGERS)
def test_a_rerender_started_while_the_last_job_ends_never_shows_its_figures(
    tmp_path: Path, with_ledger: bool
) -> None:
    """A re-render whose start commits before the last job has ended: not the last 100 %."""
    at = BodyAt(Status.COMPLETED)
    adapter = HookedAdapter()
    during_start: list[StatusBody] = []
    jobs: list[RenderJob[MemoryProject]] = []
    runner = watched_runner(
        tmp_path, FakeRenderer(frames=3), at, with_ledger=with_ledger, adapter=adapter
    )

    def rerender() -> None:  # in the first job's thread, before that job has ended
        adapter.after_start = lambda: during_start.append(status_body(at.project, runner))
        jobs.append(runner.submit(at.project))

    at.then = rerender
    with runner:
        runner.submit(at.project).wait(30)
        assert jobs, "the re-render was not submitted"
        assert jobs[0].wait(30) is Status.COMPLETED
    at.body()
    [body] = during_start
    assert body["status"] == "PROCESSING"
    assert body["progress"] in (None, QUEUED_BODY), body


@pytest.mark.parametrize("with_ledger", LEDGERS)
def test_a_recovered_render_shows_why_it_failed(tmp_path: Path, with_ledger: bool) -> None:
    """After a restart, the render a dead process left PROCESSING is FAILED with a reason."""
    project = MemoryProject()
    store = MemoryAttemptStore()
    now = [1000.0]
    if with_ledger:
        # The dead server's start: its attempt is recorded, its lease is never renewed.
        Ledger(store, clock=lambda: now[0]).start(ProjectLifecycle(project, MemoryAdapter()))
        now[0] += 3600.0
        options: dict[str, object] = {
            "ledger": Ledger(store, clock=lambda: now[0]),
            "loader": store.loader([project]),
        }
    else:
        project.status = "PROCESSING"  # the row a killed server left behind
        options = {"find_processing": lambda: [project]}
    # The next server's runner: it never saw the render.
    with runner_for(tmp_path, FakeRenderer(), **options) as runner:
        [record] = runner.recover_interrupted()
        assert record.target is Status.FAILED
        body = status_body(project, runner)
    # The same format either way; the ledger's record says the lease expired.
    cause = LEDGER_INTERRUPTED if with_ledger else INTERRUPTED
    reason = (
        f"RenderInterruptedError: Project {project.id} was not rendered to the end: "
        f"{cause}. Start the render again to retry."
    )
    assert body == finished_body(project, Status.FAILED, reason)


def test_a_failure_naming_server_paths_is_shown_without_them(tmp_path: Path) -> None:
    """The body's error cuts absolute paths to their last name; the runner keeps them all."""
    project = MemoryProject()
    secret = tmp_path / "media" / "projects" / "scratch.wav"
    renderer = FakeRenderer(
        frames=5, fail_at_frame=1, exception=OSError(28, "No space left on device", str(secret))
    )
    with runner_for(tmp_path, renderer) as runner:
        assert runner.submit(project).wait(30) is Status.FAILED
        body = status_body(project, runner)
        assert str(secret) in (runner.error(project) or "")
    assert body["error"] == "OSError: [Errno 28] No space left on device: '…/scratch.wav'"
