"""The export endpoints: create a project, start its render, read its status.

Errors are RFC 9457 problem+json bodies: ``RenderConflictError`` (409) and
``ProjectNotFoundError`` (404) raised here are answered by
``renderstate.web.django.RenderStateMiddleware``; bad request bodies by :func:`invalid`.
"""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from importlib import resources
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from renderstate import ProjectNotFoundError, TimelineError
from renderstate.rendering.timeline import parse_timeline
from renderstate.web import PROBLEM_CONTENT_TYPE, REQUEST_ID_HEADER, problem_details, status_body

from .models import Project
from .rendering import get_runner

SAMPLE_TIMELINE: dict[str, Any] = json.loads(
    resources.files("renderstate.rendering").joinpath("sample_timeline.json").read_text("utf-8")
)
"""What a project created without a timeline renders: three titled scenes and a tone."""


def invalid(field: str, detail: str, status: int = 422, **extra: Any) -> JsonResponse:
    """A problem+json answer for a request body that cannot be used."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "field": field,
        **extra,
    }
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def timeline_problem(request: HttpRequest, error: TimelineError) -> JsonResponse:
    """A 422 naming the timeline field at fault, as a JSON pointer into the request body.

    Its text is for the client: the full message (server paths, advice for the developer)
    is logged by ``problem_details`` under the request's id, which the body and the
    ``X-Request-ID`` header carry.
    """
    code, body = problem_details(error, request_id=request.headers.get(REQUEST_ID_HEADER))
    pointer = "/timeline"
    if error.scene is not None:
        pointer += f"/scenes/{error.scene}"
    if error.field != "timeline":
        pointer += "/" + error.field.replace(".", "/")
    body["pointer"] = pointer
    response = JsonResponse(body, status=code, content_type=PROBLEM_CONTENT_TYPE)
    response[REQUEST_ID_HEADER] = body["request_id"]
    return response


def load(pk: str) -> Project:
    """The project ``pk``, or ``ProjectNotFoundError`` (404) for an unknown or malformed id."""
    try:
        return Project.objects.get(pk=uuid.UUID(pk))
    except (ValueError, Project.DoesNotExist):
        raise ProjectNotFoundError(project_key=pk) from None


@csrf_exempt
@require_POST
def create_project(request: HttpRequest) -> JsonResponse:  # noqa: PLR0911 - one per bad body
    """``POST /projects`` ``{"title": ..., "timeline": {...}}``: 201 with the new project."""
    try:
        raw = request.body
    except RequestDataTooBig:  # DATA_UPLOAD_MAX_MEMORY_SIZE, checked before the body is read
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return invalid("body", f"the request body is larger than {limit} bytes", status=413)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        return invalid("body", f"the request body is not JSON ({exc})", status=400)
    if not isinstance(data, dict):
        return invalid("body", 'send a JSON object such as {"title": "My trip"}', status=400)
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        return invalid("title", "'title' is required: a non-empty string", pointer="/title")
    # Project.title is a CharField(max_length=255)
    # PostgreSQL refuses NUL in text; an unpaired surrogate ("\ud800") is not text.
    if len(title) > 255 or "\x00" in title or title != title.encode("utf-8", "replace").decode():
        problem = "'title' must be at most 255 characters of text (no NUL, no unpaired surrogate)"
        return invalid("title", problem, pointer="/title")
    timeline = data.get("timeline", SAMPLE_TIMELINE)
    try:
        # Checked now, so a mistake is a 422 here rather than a FAILED render later.
        parse_timeline(timeline, base_dir=settings.MEDIA_ROOT / "uploads")
    except TimelineError as error:
        return timeline_problem(request, error)
    project = Project.objects.create(title=title, timeline=timeline)
    body = {
        **status_body(project, get_runner()),
        "title": project.title,
        "timeline": project.timeline,
    }
    return JsonResponse(body, status=201)


@csrf_exempt
@require_POST
def render_project(request: HttpRequest, pk: str) -> JsonResponse:
    """``POST /projects/<id>/render``: 202 and the render runs; 409 while one runs."""
    project = load(pk)
    get_runner().submit(project)  # the guarded start: RenderConflictError -> 409
    return JsonResponse(status_body(project, get_runner()), status=202)


@require_GET
def project_status(request: HttpRequest, pk: str) -> JsonResponse:
    """``GET /projects/<id>``: the status body (poll it while the render runs)."""
    return JsonResponse(status_body(load(pk), get_runner()))
