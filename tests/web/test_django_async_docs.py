"""docs/async.md's Django async view, run as the page shows it, on SQLite and PostgreSQL.

The page includes tests/web/django_async_export.py; this test serves that module's view
through Django's ASGI handler (``AsyncClient``: each request in an ORM thread, hence a
connection, of its own, as under uvicorn). Django's settings are process-wide, so the site
runs in a child process configured for the one database under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.databases import Target, create, drop
from adapters.test_django import database_settings

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs"
CLICKS = 16

CHILD = r"""
import asyncio, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]  # tests/ (djangoapp), tests/web (the docs' view)
import django
from django.conf import settings
settings.configure(
    DATABASES={"default": json.loads(sys.argv[3])},
    INSTALLED_APPS=["djangoapp.apps.DjangoAppConfig"],
    USE_TZ=True,
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["testserver"],
)
django.setup()
from django.db import connection
from django.test import AsyncClient
from django.urls import path

from djangoapp.models import Project
import django_async_export as docs

with connection.schema_editor() as editor:
    editor.create_model(Project)
connection.close()
urlpatterns = [path("projects/<str:pk>/export", docs.export_video)]


async def main():
    project = await Project.objects.acreate(title="trip")
    client = AsyncClient()
    clicks = int(sys.argv[4])
    answers = await asyncio.gather(
        *(client.post(f"/projects/{project.pk}/export") for _ in range(clicks))
    )
    stored = await Project.objects.aget(pk=project.pk)
    print(json.dumps({
        "answers": [[a.status_code, json.loads(a.content)] for a in answers],
        "stored": stored.status,
    }))


asyncio.run(main())
"""


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.slow),
        pytest.param("postgres", marks=[pytest.mark.slow, pytest.mark.postgres]),
    ]
)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A fresh database of its own (skipped, a failure under CI, if the server is down)."""
    try:
        made = create(request.param, tmp_path, os.environ.get("PYTEST_XDIST_WORKER", "main"))
    except Exception as exc:
        pytest.skip(f"{request.param} is not reachable: {exc}")
    try:
        yield made
    finally:
        drop(made)


def test_the_page_includes_this_view() -> None:
    """docs/async.md shows the module's view section, not a copy of it."""
    page = (DOCS / "async.md").read_text("utf-8")
    assert '--8<-- "tests/web/django_async_export.py:view"' in page


def test_sixteen_clicks_at_once_start_one_render(target: Target, tmp_path: Path) -> None:
    """The docs' view: of 16 concurrent clicks one answers 202 PROCESSING, fifteen 409."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(HERE.parent),
            str(HERE),
            json.dumps(database_settings(target)),
            str(CLICKS),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    answers = out["answers"]
    assert sorted(code for code, _ in answers) == [202] + [409] * (CLICKS - 1)
    assert [body for code, body in answers if code == 202] == [{"status": "PROCESSING"}]
    for code, body in answers:
        if code == 409:
            assert "already PROCESSING" in body["detail"], body
    assert out["stored"] == "PROCESSING"
