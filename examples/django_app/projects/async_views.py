"""The export endpoints as async views, for a site served by an ASGI server.

Route ``projects/<pk>/render`` and ``projects/<pk>`` here instead of to :mod:`projects.views`
when the site runs under uvicorn, daphne or hypercorn. Reads use Django's async ORM, and so
does the guarded start (one ``UPDATE``): ``runner.asubmit()`` awaits it through the runner's
``AsyncDjangoAdapter``, so the event loop never waits on the database. The render runs in the
runner's threads as before.
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from renderstate import ProjectNotFoundError
from renderstate.web import status_body

from .models import Project
from .rendering import get_runner


async def aload(pk: str) -> Project:
    """The project ``pk``, or ``ProjectNotFoundError`` (404) for an unknown or malformed id."""
    try:
        return await Project.objects.aget(pk=uuid.UUID(pk))
    except (ValueError, Project.DoesNotExist):
        raise ProjectNotFoundError(project_key=pk) from None


@csrf_exempt
@require_POST
async def render_project(request: HttpRequest, pk: str) -> JsonResponse:
    """``POST /projects/<id>/render``: 202 and the render runs; 409 while one runs."""
    project = await aload(pk)
    runner = get_runner()
    await runner.asubmit(project)  # the guarded start, awaited: RenderConflictError -> 409
    # status_body() reads the runner's memory, no database: safe on the event loop.
    return JsonResponse(status_body(project, runner), status=202)


@require_GET
async def project_status(request: HttpRequest, pk: str) -> JsonResponse:
    """``GET /projects/<id>``: the status body."""
    return JsonResponse(status_body(await aload(pk), get_runner()))
