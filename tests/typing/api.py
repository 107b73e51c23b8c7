"""Uses the public API as a user would; only type-checked (mypy), never run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from renderstate import (
    Edge,
    ProjectLifecycle,
    RenderConflictError,
    RenderJob,
    RenderRunner,
    Status,
    TransitionRecord,
    can_start_render,
    to_mermaid,
)
from renderstate.adapters.memory import AsyncMemoryAdapter, MemoryAdapter
from renderstate.runner import OnProgress, Rendered, own_path
from renderstate.testing import FakeRenderer
from renderstate.typing import Adapter, AsyncAdapter, ProgressSink
from renderstate.web import (
    REQUEST_ID_HEADER,
    StatusBody,
    new_request_id,
    problem_details,
    status_body,
)


@dataclasses.dataclass
class Project:
    id: int
    status: str = "DRAFT"
    output_path: str | None = None
    title: str = ""  # the column transcoding_runner() names for its fields


def export(project: Project) -> int:
    lifecycle: ProjectLifecycle[Project] = ProjectLifecycle(project, MemoryAdapter())
    same: Project = lifecycle.project
    try:
        record: TransitionRecord = lifecycle.start_render()
    except RenderConflictError as exc:
        shown: str = exc.public_message
        code, body = problem_details(exc, request_id=new_request_id(REQUEST_ID_HEADER))
        detail: object = body["detail"]
        return exc.status_code if (shown, code) == (detail, exc.status_code) else 500
    edge: Edge = record.edge
    status: Status = lifecycle.status
    allowed: bool = can_start_render(status) and lifecycle.can_start_render
    lifecycle.complete(f"projects/{same.id}/final.mp4")
    lifecycle.fail(RuntimeError("x"), clear_output=True)
    del edge, allowed
    return 202


adapter: Adapter[Project] = MemoryAdapter()
diagram: str = to_mermaid()


async def export_async(project: Project) -> int:
    lifecycle: ProjectLifecycle[Project] = ProjectLifecycle(project, AsyncMemoryAdapter())
    try:
        record: TransitionRecord = await lifecycle.astart_render()
    except RenderConflictError as exc:
        return exc.status_code
    target: Status = record.target
    await lifecycle.acomplete(f"projects/{project.id}/final.mp4")
    await lifecycle.afail("x", clear_output=True)
    # The a-methods work over a sync adapter too (its calls run in a worker thread).
    await ProjectLifecycle(project, MemoryAdapter()).astart_render()
    del target
    return 202


async_adapter: AsyncAdapter[Project] = AsyncMemoryAdapter()


async def export_with_runner(project: Project) -> int:
    runner: RenderRunner[Project] = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=3),
        async_adapter=AsyncMemoryAdapter(),
        media_root="media",
    )
    try:
        job: RenderJob[Project] = await runner.asubmit(project, actor="alice")
    except RenderConflictError as exc:
        return exc.status_code
    body: StatusBody = status_body(job.project, runner)
    del body
    return 202


def hls_runner() -> RenderRunner[Project]:
    """A directory output (an HLS folder), as an app declares it: checked by mypy alone."""

    def render_hls(project_id: int, on_progress: OnProgress, out_dir: Path) -> None:
        (out_dir / "playlist.m3u8").write_text("#EXTM3U\n")

    renderer = own_path(render_hls, argument=lambda p: p.id, target="out_dir", output="directory")
    return RenderRunner(
        MemoryAdapter(),
        renderer,
        media_root="media",
        output_path_for=lambda p: f"projects/{p.id}/hls",
    )


def transcoding_runner() -> RenderRunner[Project]:
    """The app's own columns: a duration saved with the completion, the failure reason and
    the task id in columns of the app's model, as an app declares them."""
    project = Project(id=1, status="PROCESSING")
    ProjectLifecycle(project).complete("p/1.mp4", fields={"title": "12.5 s"})
    ProjectLifecycle(project, error_field="title").start_render()

    def transcode(project_id: int, on_progress: OnProgress, out: Path) -> dict[str, object]:
        return {"video_path": str(out), "duration": 12.5}

    def plain(project: Project, target: Path, progress: ProgressSink) -> Rendered:
        return Rendered(None, {"duration": 1.0})

    del plain
    return RenderRunner(
        MemoryAdapter(),
        own_path(transcode, target="out", result_key="video_path", fields=["duration"]),
        media_root="media",
        task_id_field="title",
    )
