"""The API: export, poll, cancel. The response shapes are the app's own, kept by the swap."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from .models import Project
from .renders import get_runner
from .tasks import render_task, task_manager


@api_view(["POST"])
def render_project_view(request: Request, pk: int) -> Response:
    project = get_object_or_404(Project, pk=pk)
    # A second click raises RenderConflictError: 409 {"error": "Project 7 is already ..."}.
    get_runner().submit(project)
    task_id = task_manager.submit_task(lambda: render_task(project.pk))
    return Response({"status": project.status, "task_id": task_id}, status=202)


@api_view(["GET"])
def project_status_view(request: Request, pk: int) -> Response:
    project = get_object_or_404(Project, pk=pk)
    runner = get_runner()
    progress = runner.progress(project) if project.status == "PROCESSING" else None
    return Response(
        {
            "status": project.status,
            "progress": None
            if progress is None
            else {
                "current": progress.frames_done,
                "total": progress.frames_total,
                "percent": round(progress.fraction * 100),
                "live": progress.live,  # false: the render stopped reporting (it died)
            },
            "video_url": project.output_path and settings.MEDIA_URL + project.output_path,
            "error": runner.error(project) if project.status == "FAILED" else None,
        }
    )


@api_view(["POST"])
def cancel_render_view(request: Request, pk: int) -> Response:
    project = get_object_or_404(Project, pk=pk)
    # From any server process: the ledger carries the request to the one rendering it.
    if get_runner().cancel(project, "cancelled by the user"):
        return Response({"status": "cancelling"}, status=202)
    return Response({"error": "This project is not rendering."}, status=409)
