"""The Django example's async views (the docs' "async variant"), through Django's AsyncClient.

Django's settings are process-wide, so the example site runs in a child process, on its own
SQLite database, with its real middleware stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .servers import EXAMPLES

CHILD = r"""
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
import django
django.setup()
from django.core.management import call_command
from django.test import AsyncClient, override_settings
from django.urls import path

from projects import async_views, views

call_command("migrate", interactive=False, verbosity=0)
urlpatterns = [
    path("projects", views.create_project),
    path("projects/<str:pk>", async_views.project_status),
    path("projects/<str:pk>/render", async_views.render_project),
]
TIMELINE = {"width": 640, "height": 360, "fps": 24, "scenes": [
    {"duration": 2, "title": "A"}, {"duration": 2, "title": "B", "crossfade": 1}]}


async def main():
    client = AsyncClient(raise_request_exception=False)
    out = {}
    created = await client.post("/projects", {"title": "async", "timeline": TIMELINE},
                                content_type="application/json")
    pk = json.loads(created.content)["id"]
    first = await client.post(f"/projects/{pk}/render")
    second = await client.post(f"/projects/{pk}/render")
    out["render"] = [first.status_code, json.loads(first.content)["status"]]
    out["again"] = [second.status_code, second["Content-Type"], json.loads(second.content)["error"]]
    for _ in range(3000):
        body = json.loads((await client.get(f"/projects/{pk}")).content)
        if body["status"] != "PROCESSING":
            break
        await asyncio.sleep(0.02)
    out["final"] = [body["status"], body["output_path"] == f"projects/{pk}/final.mp4"]
    missing = await client.post("/projects/not-a-uuid/render")
    out["missing"] = [missing.status_code, missing["Content-Type"]]
    print(json.dumps(out))


with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"]):
    asyncio.run(main())
"""


@pytest.mark.slow
def test_async_views_start_once_and_answer_409_then_complete(tmp_path: Path) -> None:
    """Async render view: 202, then 409 problem+json, then COMPLETED; 404 for a bad id."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "exportsite.settings",
        "EXPORTSITE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "EXPORTSITE_MEDIA_ROOT": str(tmp_path / "media"),
    }
    (tmp_path / "media" / "uploads").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(EXAMPLES / "django_app")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["render"] == [202, "PROCESSING"]
    assert out["again"] == [409, "application/problem+json", "RenderConflictError"]
    assert out["final"] == ["COMPLETED", True]
    assert out["missing"] == [404, "application/problem+json"]
