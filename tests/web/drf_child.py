"""Child process of the DRF tests: a small Django + DRF app on a SQLite file.

Usage: python drf_child.py DB

Django's settings are process-wide (and the adapter tests configure their own), so the app
runs here, with DRF's real test client, and prints what each request answered as JSON.
The "Export video" view starts the render under ``claim_render`` and hands the job to a
fake task system that runs jobs by id and can be told its broker is down.
"""

# Django must be configured before DRF and the models are imported.
# ruff: noqa: E402

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests directory: djangoapp

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="drf-test",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["testserver"],
    DATABASES={
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]},
        # The same file, with every request in a transaction (Django's ATOMIC_REQUESTS).
        "atomic": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": sys.argv[1],
            "ATOMIC_REQUESTS": True,
        },
    },
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "rest_framework",
        "djangoapp",
    ],
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
    REST_FRAMEWORK={"EXCEPTION_HANDLER": "renderstate.web.drf.exception_handler"},
    USE_TZ=True,
)
django.setup()

from django.core.management import call_command
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from djangoapp.models import Project
from renderstate import (
    InvalidOutputPathError,
    ProjectLifecycle,
    ProjectNotFoundError,
    claim_render,
    fail_on_error,
)
from renderstate.adapters.django import DjangoAdapter
from renderstate.web.drf import error_sentence_handler


class BrokerDownError(ConnectionError):
    pass


class TaskQueue:
    """Runs jobs by id, like the app's own background task manager."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.down = False

    def enqueue(self, project_id: str) -> str:
        if self.down:
            raise BrokerDownError("the broker refused the connection")
        self.pending.append(project_id)
        return f"job-{len(self.pending)}"


QUEUE = TaskQueue()


class ExportView(APIView):
    def post(self, request: Request, pk: str) -> Response:
        project = get_object_or_404(Project, pk=pk)
        with claim_render(ProjectLifecycle(project, DjangoAdapter())):
            job = QUEUE.enqueue(str(project.pk))
        return Response({"status": project.status, "job": job}, status=202)


class SentenceExportView(ExportView):
    """The app's own answer shape, ``{"error": "<sentence>"}``: one view's handler."""

    def get_exception_handler(self) -> Any:
        return error_sentence_handler


class AtomicView(APIView):
    """Writes a row, then is refused with 409: under ATOMIC_REQUESTS the row must not stay."""

    def post(self, request: Request, pk: str) -> Response:
        Project.objects.using("atomic").create(title="written before the refusal")
        project = Project.objects.using("atomic").get(pk=pk)
        ProjectLifecycle(project, DjangoAdapter(using="atomic")).start_render()
        return Response({}, status=202)


class SentenceAtomicView(AtomicView):
    """AtomicView answered by error_sentence_handler: the row must not stay either."""

    def get_exception_handler(self) -> Any:
        return error_sentence_handler


class SentenceServerErrorView(APIView):
    """Writes a row, then a server-side renderstate error naming a server path: a 500."""

    def get_exception_handler(self) -> Any:
        return error_sentence_handler

    def post(self, request: Request) -> Response:
        Project.objects.using("atomic").create(title="written before the server error")
        raise InvalidOutputPathError(path="/srv/secret/media/final.mp4", reason="a test")


class OnCommitExportView(APIView):
    """The pattern of docs/adopting.md under ATOMIC_REQUESTS: hand off once the start commits."""

    def post(self, request: Request, pk: str) -> Response:
        project = get_object_or_404(Project.objects.using("atomic"), pk=pk)
        lifecycle = ProjectLifecycle(project, DjangoAdapter(using="atomic"))
        lifecycle.start_render()

        def hand_off() -> None:
            with fail_on_error(lifecycle):
                QUEUE.enqueue(str(project.pk))

        transaction.on_commit(hand_off, using="atomic")
        return Response({"status": project.status}, status=202)


class GoneView(APIView):
    def get(self, request: Request) -> Response:
        raise ProjectNotFoundError(project_key="deleted-one")


class TitleSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=5)


class ValidateView(APIView):
    def post(self, request: Request) -> Response:
        TitleSerializer(data=request.data).is_valid(raise_exception=True)
        return Response({})


urlpatterns = [
    path("projects/<uuid:pk>/export", ExportView.as_view()),
    path("projects/<uuid:pk>/atomic", AtomicView.as_view()),
    path("projects/<uuid:pk>/export-sentence", SentenceExportView.as_view()),
    path("projects/<uuid:pk>/export-on-commit", OnCommitExportView.as_view()),
    path("gone", GoneView.as_view()),
    path("projects/<uuid:pk>/atomic-sentence", SentenceAtomicView.as_view()),
    path("server-error-sentence", SentenceServerErrorView.as_view()),
    path("validate", ValidateView.as_view()),
]


def answer(response: Any) -> dict[str, Any]:
    data = getattr(response, "data", None)
    return {
        "status": response.status_code,
        "content_type": response["Content-Type"],
        "has_data": hasattr(response, "data"),
        "data": json.loads(json.dumps(data, default=str)) if data is not None else None,
        "body": response.content.decode(),
    }


def main() -> None:
    call_command("migrate", run_syncdb=True, verbosity=0)
    video = Project.objects.create(title="video", status="COMPLETED", output_path="p/final.mp4")
    other = Project.objects.create(title="other")
    third = Project.objects.create(title="third")
    client = APIClient(raise_request_exception=False)
    out: dict[str, Any] = {}
    out["first"] = answer(client.post(f"/projects/{video.pk}/export", format="json"))
    out["second"] = answer(client.post(f"/projects/{video.pk}/export", format="json"))
    out["second_html"] = answer(
        client.post(f"/projects/{video.pk}/export", HTTP_ACCEPT="text/html")
    )
    out["sentence"] = answer(client.post(f"/projects/{video.pk}/export-sentence", format="json"))
    out["gone"] = answer(client.get("/gone", format="json"))
    out["unknown_project"] = answer(
        client.post("/projects/00000000-0000-0000-0000-000000000000/export", format="json")
    )
    out["invalid"] = answer(client.post("/validate", {"title": "too long"}, format="json"))
    out["atomic"] = answer(client.post(f"/projects/{video.pk}/atomic", format="json"))
    out["atomic_rows"] = Project.objects.filter(title="written before the refusal").count()
    out["sentence_atomic"] = answer(
        client.post(f"/projects/{video.pk}/atomic-sentence", format="json")
    )
    out["sentence_atomic_rows"] = Project.objects.filter(title="written before the refusal").count()
    out["sentence_500"] = answer(client.post("/server-error-sentence", format="json"))
    out["sentence_500_rows"] = Project.objects.filter(
        title="written before the server error"
    ).count()
    QUEUE.down = True
    out["broker_down"] = answer(client.post(f"/projects/{other.pk}/export", format="json"))
    out["on_commit_down"] = answer(
        client.post(f"/projects/{third.pk}/export-on-commit", format="json")
    )
    third.refresh_from_db()
    out["third_status"] = third.status
    QUEUE.down = False
    out["on_commit_up"] = answer(
        client.post(f"/projects/{third.pk}/export-on-commit", format="json")
    )
    third.refresh_from_db()
    out["third_status_after_retry"] = third.status
    other.refresh_from_db()
    video.refresh_from_db()
    out["other_status"] = other.status
    out["video_status"] = video.status
    out["pending"] = QUEUE.pending
    print(json.dumps(out))


if __name__ == "__main__":
    main()
