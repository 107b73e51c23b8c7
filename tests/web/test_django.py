"""Django: the middleware turns renderstate errors escaping a view into problem+json.

Django's settings are process-wide and the adapter tests configure their own, so this test
runs a small Django project in a child process with the real middleware stack.
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["testserver"],
    MIDDLEWARE=["renderstate.web.django.RenderStateMiddleware"],
    INSTALLED_APPS=[],
)
django.setup()

from django.http import JsonResponse
from django.test import Client
from django.urls import path

from renderstate import ProjectLifecycle, ProjectNotFoundError
from renderstate.testing import MemoryProject

PROJECTS = {1: MemoryProject(title="one")}


def render(request, key):
    project = PROJECTS.get(key)
    if project is None:
        raise ProjectNotFoundError(project_key=key)
    record = ProjectLifecycle(project).start_render()
    return JsonResponse({"status": record.target.value}, status=202)


def boom(request):
    raise RuntimeError("not ours")


urlpatterns = [path("projects/<int:key>/render", render), path("boom", boom)]

client = Client(raise_request_exception=False)
out = []
for url in ["/projects/1/render", "/projects/1/render", "/projects/7/render", "/boom"]:
    response = client.post(url)
    body = json.loads(response.content) if response["Content-Type"].endswith("json") else None
    out.append([response.status_code, response["Content-Type"], body])
print(json.dumps(out))
"""


def test_middleware_answers_409_404_and_leaves_other_errors_alone() -> None:
    """First click 202, second 409 with the reason, unknown project 404, other errors 500."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    )
    first, second, missing, other = json.loads(result.stdout.strip().splitlines()[-1])
    assert first[:2] == [202, "application/json"]
    assert second[0] == 409
    assert second[1] == "application/problem+json"
    assert second[2]["error"] == "RenderConflictError"
    assert "already PROCESSING" in second[2]["detail"]
    assert missing[0] == 404
    assert missing[2]["project_key"] == 7
    assert other[0] == 500
