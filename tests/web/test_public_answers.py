"""HTTP answers carry client-facing text; the full detail goes to the log with the request id.

A timeline from a request that names a file outside the uploads is a 422 in every
integration. Its ``str()`` names the server's directory and the arguments that would allow
the file (``allow_outside_base_dir=True``, ``load_timeline()``): the body says what is wrong
with the client's value only, and the ``renderstate.web`` log has the rest under the
request id the body and the ``X-Request-ID`` header carry.
"""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from renderstate import (
    AttemptOwnedError,
    ProjectNotFoundError,
    RenderConflictError,
    TimelineError,
    UnknownStatusError,
)
from renderstate.rendering.timeline import parse_timeline
from renderstate.web import new_request_id, problem_details

OUTSIDE = {"scenes": [{"duration": 1, "image": "../secret.png"}]}
DEVELOPER_WORDS = ("allow_outside_base_dir", "load_timeline", "parse_timeline", "base_dir")


def timeline_error(base: Path, timeline: dict[str, Any]) -> TimelineError:
    with pytest.raises(TimelineError) as caught:
        parse_timeline(timeline, base_dir=base)
    return caught.value


def assert_client_facing(detail: str, base: Path) -> None:
    assert str(base) not in detail, detail
    assert not [word for word in DEVELOPER_WORDS if word in detail], detail


@pytest.mark.parametrize(
    ("timeline", "shown"),
    [
        pytest.param(OUTSIDE, "'../secret.png' contains a '..' segment", id="outside"),
        pytest.param(
            {"scenes": [{"duration": 1, "image": "/etc/passwd"}]},
            "'…/passwd' is an absolute path",
            id="absolute",
        ),
        pytest.param(
            {"scenes": [{"duration": 1, "image": "missing.png"}]},
            "'missing.png' does not exist",
            id="missing",
        ),
    ],
)
def test_a_timeline_422_says_what_is_wrong_and_logs_the_rest(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    timeline: dict[str, Any],
    shown: str,
) -> None:
    """The body names the client's value and its fault; the log has paths and advice."""
    error = timeline_error(tmp_path, timeline)
    assert str(tmp_path) in str(error)  # the developer's message keeps everything
    with caplog.at_level(logging.INFO, logger="renderstate.web"):
        code, body = problem_details(error, request_id="req-1")
    assert code == 422
    assert body["request_id"] == "req-1"
    assert body["detail"].startswith(f"Timeline scene 0, field 'image': {shown}")
    assert body["detail"].endswith("Fix the timeline and try again; nothing was rendered.")
    assert_client_facing(json.dumps(body, ensure_ascii=False), tmp_path)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.request_id == "req-1"  # type: ignore[attr-defined]
    assert "request_id=req-1" in record.getMessage()
    assert str(error) in record.getMessage()


def test_a_public_problem_given_by_the_raiser_is_used_and_pickles() -> None:
    """TimelineError(public_problem=...) is the client's text; both survive pickling."""
    error = TimelineError(
        field="image", scene=2, problem="'/srv/x.png' is broken", public_problem="is broken"
    )
    again = pickle.loads(pickle.dumps(error))
    assert again.public_message == error.public_message
    assert error.public_message.startswith("Timeline scene 2, field 'image': is broken.")
    assert "/srv" in str(again)


def test_public_messages_of_errors_naming_server_details() -> None:
    """A worker's host:pid and an adapter's detail stay out of the public message."""
    owned = AttemptOwnedError(project_key=3, attempt_id=7, worker="web-1:4242", retry_after=2)
    assert "web-1" in str(owned)
    assert "web-1" not in owned.public_message
    assert "Try again in 2.0 s" in owned.public_message
    gone = ProjectNotFoundError(project_key=3, detail="SELECT ... FROM app_project")
    assert "SELECT" in str(gone)
    assert (
        gone.public_message
        == "Project 3 does not exist (was it deleted?); load an existing project and try again."
    )
    conflict = RenderConflictError(trigger="start_render", status="PROCESSING", allowed=["DRAFT"])
    assert conflict.public_message == str(conflict)


def test_a_server_error_says_only_that_and_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 500's body has no advice about the code nor the stored value; the log has both."""
    error = UnknownStatusError(value="ARCHIVED", allowed=["DRAFT"], project_key=5)
    with caplog.at_level(logging.INFO, logger="renderstate.web"):
        code, body = problem_details(error, request_id="req-5")
    assert code == 500
    assert "values=" not in body["detail"]
    assert "ARCHIVED" not in json.dumps(body)
    assert "req-5" in body["detail"]
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert str(error) in record.getMessage()


def test_request_ids_are_reused_only_when_safe() -> None:
    """A proxy's X-Request-ID is kept; a missing or unsafe one is replaced by a new UUID."""
    assert new_request_id("abc-123.x_y:z") == "abc-123.x_y:z"
    for unsafe in (None, "", "a b", "x" * 129, "line\nbreak"):
        made = new_request_id(unsafe)
        assert len(made) == 32
        assert int(made, 16) >= 0
    assert new_request_id() != new_request_id()


def test_fastapi_answers_the_public_422(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """FastAPI: body and X-Request-ID header carry the client's id; the log the detail."""
    from fastapi import FastAPI  # noqa: PLC0415
    from fastapi.testclient import TestClient  # noqa: PLC0415

    from renderstate.web.fastapi import add_exception_handlers  # noqa: PLC0415

    app = FastAPI()
    add_exception_handlers(app)

    @app.post("/projects")
    def create() -> None:
        parse_timeline(OUTSIDE, base_dir=tmp_path)

    with caplog.at_level(logging.INFO, logger="renderstate.web"):
        response = TestClient(app).post("/projects", headers={"X-Request-ID": "req-fa"})
    check_answer(response.status_code, dict(response.headers), response.json(), "req-fa", tmp_path)
    assert [r.request_id for r in caplog.records] == ["req-fa"]  # type: ignore[attr-defined]
    assert "allow_outside_base_dir" in caplog.records[0].getMessage()


def test_flask_answers_the_public_422(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Flask: body and X-Request-ID header carry the client's id; the log the detail."""
    import flask  # noqa: PLC0415

    from renderstate.web.flask import init_app  # noqa: PLC0415

    app = flask.Flask(__name__)
    init_app(app)

    @app.post("/projects")
    def create() -> str:
        parse_timeline(OUTSIDE, base_dir=tmp_path)
        return "unreachable"

    with caplog.at_level(logging.INFO, logger="renderstate.web"):
        response = app.test_client().post("/projects", headers={"X-Request-ID": "req-fl"})
    body = response.get_json(force=True)
    check_answer(response.status_code, dict(response.headers), body, "req-fl", tmp_path)
    assert [r.request_id for r in caplog.records] == ["req-fl"]  # type: ignore[attr-defined]
    assert str(tmp_path) in caplog.records[0].getMessage()


def test_django_and_drf_answer_the_public_422(tmp_path: Path) -> None:
    """Django's middleware and DRF's handler: the same answer, the detail in the log."""
    pytest.importorskip("rest_framework", reason="needs the drf extra")
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("django_public_child.py")), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("plain", "api"):
        answer = out[name]
        check_answer(answer["status"], answer["headers"], answer["body"], f"req-{name}", tmp_path)
        [line] = [line for line in out["log"] if f"request_id=req-{name} " in line]
        assert line.startswith("WARNING ")
        assert "allow_outside_base_dir" in line
        assert str(tmp_path) in line


def check_answer(
    status: int, headers: dict[str, str], body: dict[str, Any], request_id: str, base: Path
) -> None:
    assert status == 422
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["content-type"].startswith("application/problem+json")
    assert lowered["x-request-id"] == request_id
    assert body["request_id"] == request_id
    assert body["error"] == "TimelineError"
    assert "'../secret.png' contains a '..' segment" in body["detail"]
    assert_client_facing(json.dumps(body, ensure_ascii=False), base)
