"""The Django async view shown in docs/async.md, which includes this file's ``view`` section.

``djangoapp`` is the test suite's app with the reference model; in the docs it stands for
yours. tests/web/test_django_async_docs.py serves this view through Django's ASGI handler on
SQLite and PostgreSQL, so the page shows code that runs.
"""

# --8<-- [start:view]
from django.http import HttpRequest, JsonResponse

from djangoapp.models import Project
from renderstate import ProjectLifecycle, RenderConflictError
from renderstate.adapters.django import AsyncDjangoAdapter

adapter = AsyncDjangoAdapter()


async def export_video(request: HttpRequest, pk: str) -> JsonResponse:
    project = await Project.objects.aget(pk=pk)
    try:
        await ProjectLifecycle(project, adapter).astart_render()
    except RenderConflictError as exc:
        return JsonResponse({"detail": str(exc)}, status=exc.status_code)  # 409
    return JsonResponse({"status": project.status}, status=202)
    # --8<-- [end:view]
