"""The API: "Export video" starts the render under the guard and hands it to the task manager."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from renderstate import ProjectLifecycle, claim_render
from renderstate.adapters.django import DjangoAdapter

from . import tasks
from .models import Project


class ExportView(APIView):
    def post(self, request: Request, pk: str) -> Response:
        project = get_object_or_404(Project, pk=pk)
        # Step 1 (guard): one conditional UPDATE; a second click raises RenderConflictError,
        # which the DRF exception handler answers with 409. If enqueueing raises, the project
        # is failed with that reason (never left PROCESSING) and the error propagates.
        with claim_render(ProjectLifecycle(project, DjangoAdapter())):
            job = tasks.enqueue(tasks.render_job, str(project.pk))
        return Response({"status": project.status, "job": job}, status=202)


class ProjectView(APIView):
    def get(self, request: Request, pk: str) -> Response:
        project = get_object_or_404(Project, pk=pk)
        video = project.output_path and settings.MEDIA_URL + project.output_path
        return Response({"status": project.status, "video": video})
