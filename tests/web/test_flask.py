"""Flask: renderstate errors escaping a view become problem+json responses."""

from __future__ import annotations

import flask
import pytest
from flask.testing import FlaskClient

from renderstate import ProjectLifecycle, ProjectNotFoundError
from renderstate.testing import MemoryProject
from renderstate.web.flask import init_app


@pytest.fixture
def client() -> FlaskClient:
    projects = {1: MemoryProject(title="one")}
    app = flask.Flask(__name__)
    init_app(app)

    @app.post("/projects/<int:key>/render")
    def render(key: int) -> tuple[dict[str, str], int]:
        project = projects.get(key)
        if project is None:
            raise ProjectNotFoundError(project_key=key)
        return {"status": ProjectLifecycle(project).start_render().target.value}, 202

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("not ours")

    return app.test_client()


def test_second_export_is_a_409(client: FlaskClient) -> None:
    """The first click starts (202); the second gets 409 with the reason."""
    assert client.post("/projects/1/render").status_code == 202
    response = client.post("/projects/1/render")
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["error"] == "RenderConflictError"
    assert body["allowed"] == ["COMPLETED", "DRAFT", "FAILED"]


def test_missing_project_is_a_404(client: FlaskClient) -> None:
    """ProjectNotFoundError becomes 404."""
    response = client.post("/projects/9/render")
    assert response.status_code == 404
    assert response.get_json(force=True)["title"] == "Not Found"


def test_other_errors_are_not_swallowed(client: FlaskClient) -> None:
    """Exceptions that are not renderstate's keep Flask's own 500."""
    assert client.get("/boom").status_code == 500
