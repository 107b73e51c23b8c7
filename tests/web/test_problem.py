"""The framework-agnostic mapping from errors to problem details."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from renderstate import (
    InvalidOutputPathError,
    InvalidTransitionError,
    ProjectNotFoundError,
    RenderConflictError,
    RenderStateError,
    TimelineError,
    UnknownStatusError,
)
from renderstate.web import problem_details, status_code_for

KEY = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RenderConflictError(trigger="start_render", status="PROCESSING", allowed=["DRAFT"]), 409),
        (InvalidTransitionError(trigger="complete", status="DRAFT", allowed=["PROCESSING"]), 409),
        (ProjectNotFoundError(project_key=3), 404),
        (UnknownStatusError(value="ARCHIVED", allowed=["DRAFT"]), 500),
        (InvalidOutputPathError(path="/x", reason="it is absolute"), 500),
        (TimelineError(field="duration", problem="must be positive", scene=0), 422),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_status_codes(error: RenderStateError, code: int) -> None:
    """Each error maps to the HTTP status a client can act on."""
    assert status_code_for(error) == code


def test_unclassified_errors() -> None:
    """A validation error of a future subclass is a 422; anything else a 500."""

    class BadTimelineError(RenderStateError, ValueError):
        pass

    class BrokenError(RenderStateError):
        pass

    assert status_code_for(BadTimelineError()) == 422
    assert status_code_for(BrokenError()) == 500


def test_conflict_body_is_rfc9457_with_structured_members() -> None:
    """The 409 body has the RFC 9457 members plus the error's data, JSON-safe."""
    error = RenderConflictError(
        trigger="start_render",
        status="PROCESSING",
        allowed=["DRAFT", "COMPLETED", "FAILED"],
        project_key=KEY,
    )
    code, body = problem_details(error, request_id="req-1")
    assert code == 409
    assert body == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": str(error),
        "error": "RenderConflictError",
        "request_id": "req-1",
        "project_key": str(KEY),
        "current_status": "PROCESSING",
        "trigger": "start_render",
        "allowed": ["COMPLETED", "DRAFT", "FAILED"],
    }
    json.dumps(body)


def test_unknown_status_is_logged_not_answered(caplog: pytest.LogCaptureFixture) -> None:
    """The offending value and the field are a server's data: logged, never in the body."""
    with caplog.at_level(logging.ERROR, logger="renderstate.web"):
        _, body = problem_details(UnknownStatusError(value=b"x", allowed=[0, 1], field="state"))
    assert not {"value", "allowed", "field"} & set(body)
    assert body["request_id"] in body["detail"]
    [record] = caplog.records
    assert "state=b'x'" in record.getMessage()
    assert f"request_id={body['request_id']}" in record.getMessage()
    json.dumps(body)
