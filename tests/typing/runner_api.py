"""Uses the runner's public API as a user would; only type-checked (mypy), never run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from renderstate import Progress, RenderConflictError, RenderJob, RenderRunner, Status
from renderstate.adapters.memory import MemoryAdapter
from renderstate.runner import Phase, ThreadExecutor
from renderstate.testing import FakeRenderer, InlineExecutor
from renderstate.typing import Executor, ProgressSink, ProgressSource, Renderer
from renderstate.web import ProgressBody, StatusBody, status_body


@dataclasses.dataclass
class Project:
    id: int
    status: str = "DRAFT"
    output_path: str | None = None


def draw(project: Project, target: Path, progress: ProgressSink) -> None:
    target.write_bytes(b"video")
    progress("rendering", 1, 1)


def export(project: Project) -> tuple[int, float]:
    renderer: Renderer[Project] = draw
    executor: Executor = ThreadExecutor(2)
    runner: RenderRunner[Project] = RenderRunner(
        MemoryAdapter(),
        renderer,
        media_root="media",
        executor=executor,
        output_path_for=lambda p: f"videos/{p.id}.mp4",
    )
    try:
        job: RenderJob[Project] = runner.submit(project)
    except RenderConflictError as exc:
        return exc.status_code, 0.0
    progress: Progress = job.progress
    phase: Phase = progress.phase
    status: Status = job.wait(timeout=60.0)
    latest: Progress | None = runner.progress(project)
    runner.shutdown(wait=True, cancel_pending=True)
    del phase, status, latest
    return 202, progress.fraction


def in_tests(project: Project) -> Status:
    with RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=3, fail_at_frame=1, exception=KeyboardInterrupt),
        media_root="media",
        executor=InlineExecutor(),
    ) as runner:
        return runner.submit(project).wait()


def status_endpoint(project: Project, runner: RenderRunner[Project]) -> StatusBody:
    source: ProgressSource[Project] = runner
    body = status_body(project, source, status_field="status", output_field="output_path")
    progress: ProgressBody | None = body["progress"]
    if progress is not None:
        fraction: float = progress["fraction"]
        eta: float | None = progress["eta_seconds"]
        assert 0.0 <= fraction <= 1.0
        assert eta is None or eta >= 0
    reason: str | None = runner.error(project)
    assert reason is None or body["error"] in (None, reason)
    return body
