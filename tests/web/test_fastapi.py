"""FastAPI: renderstate errors escaping an endpoint become problem+json responses."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from renderstate import ProjectLifecycle, ProjectNotFoundError
from renderstate.testing import MemoryProject
from renderstate.web.fastapi import add_exception_handlers

PROJECTS = {1: MemoryProject(title="one")}


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    add_exception_handlers(app)

    @app.post("/projects/{key}/render", status_code=202)
    def render(key: int) -> dict[str, str]:
        project = PROJECTS.get(key)
        if project is None:
            raise ProjectNotFoundError(project_key=key)
        record = ProjectLifecycle(project).start_render()
        return {"status": record.target.value}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("not ours")

    PROJECTS[1].status = "DRAFT"
    return TestClient(app, raise_server_exceptions=False)


def test_second_export_is_a_409(client: TestClient) -> None:
    """The first click starts (202); the second gets 409 with the reason."""
    assert client.post("/projects/1/render").status_code == 202
    response = client.post("/projects/1/render")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["error"] == "RenderConflictError"
    assert body["current_status"] == "PROCESSING"
    assert "already PROCESSING" in body["detail"]


def test_missing_project_is_a_404(client: TestClient) -> None:
    """ProjectNotFoundError becomes 404."""
    response = client.post("/projects/2/render")
    assert response.status_code == 404
    assert response.json()["project_key"] == 2


def test_other_errors_are_not_swallowed(client: TestClient) -> None:
    """Exceptions that are not renderstate's keep the framework's own handling."""
    assert client.get("/boom").status_code == 500
