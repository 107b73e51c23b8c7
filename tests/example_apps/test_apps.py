"""What each example app promises beyond the HTTP contract."""

from __future__ import annotations

import ast
import os
import signal
from pathlib import Path

import pytest

from .servers import EXAMPLES, serve
from .test_contract import BUSY, create, poll_until_done

REPO = EXAMPLES.parent
APPS = ("django_app", "fastapi_app", "flask_app")


def test_django_app_uses_the_reference_model_unmodified() -> None:
    """The Django example's model is the reference model, byte for byte."""
    model = (EXAMPLES / "django_app" / "projects" / "models.py").read_bytes()
    assert model == (REPO / "tests" / "djangoapp" / "models.py").read_bytes()
    reference = REPO.parent / "shared" / "reference" / "phase01_models.py"
    if reference.exists():  # beside the clone on development and CI machines
        assert model == reference.read_bytes()


@pytest.mark.parametrize("app", APPS)
def test_every_status_body_is_the_librarys(app: str) -> None:
    """The apps answer with renderstate.web.status_body and build no status body of their own."""
    called = False
    for source in sorted((EXAMPLES / app).rglob("*.py")):
        tree = ast.parse(source.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.name != "status_body", f"{source} defines its own status_body"
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                assert not {"progress", "error"} <= keys, f"{source} builds a status body"
            if isinstance(node, ast.ImportFrom) and node.module == "renderstate.web":
                called |= any(alias.name == "status_body" for alias in node.names)
    assert called, f"{app} does not import renderstate.web.status_body"


@pytest.mark.slow
@pytest.mark.parametrize("app", APPS)
def test_a_render_killed_with_its_server_is_failed_at_the_next_start(
    app: str, tmp_path: Path
) -> None:
    """kill -9 mid-render leaves the project PROCESSING; the next start fails it, a retry works."""
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    with serve(app, url, tmp_path) as server:
        project_id = create(server, BUSY)
        assert server.post(f"/projects/{project_id}/render").status == 202
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(15)
    with serve(app, url, tmp_path) as server:
        body = server.get(f"/projects/{project_id}").json()
        assert body["status"] == "FAILED", (body, server.logs())
        leftovers = list((server.media_root / "projects" / project_id).glob(".*"))
        assert not leftovers, leftovers
        assert server.post(f"/projects/{project_id}/render").status == 202
        final, _ = poll_until_done(server, project_id)
        assert final["status"] == "COMPLETED", final
