"""Framework-agnostic mapping from renderstate errors to RFC 9457 problem details."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any, Final

from renderstate.exceptions import (
    InvalidOutputPathError,
    InvalidTransitionError,
    ProjectNotFoundError,
    RenderStateError,
    UnknownStatusError,
)

__all__ = ["PROBLEM_CONTENT_TYPE", "problem_details", "status_code_for"]

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
"""The media type of every error body (RFC 9457)."""

# Checked in order; the first match wins. An error class may also declare its own
# ``status_code`` (RenderConflictError: 409, ProjectNotFoundError: 404), which comes first.
_STATUS_BY_CLASS: Final[tuple[tuple[type[RenderStateError], int], ...]] = (
    (ProjectNotFoundError, 404),
    # complete/fail from the wrong status: the request conflicts with the resource's state.
    (InvalidTransitionError, 409),
    # A stored value outside the four is a server-side data problem, not the client's fault.
    (UnknownStatusError, 500),
    # Output paths come from server code (runner, task), never from a request body.
    (InvalidOutputPathError, 500),
)

_ATTRIBUTES: Final = ("project_key", "status", "trigger", "allowed", "value", "field")


def status_code_for(error: RenderStateError) -> int:
    """Return the HTTP status code that answers ``error``."""
    declared = getattr(error, "status_code", None)
    if isinstance(declared, int):
        return declared
    for cls, code in _STATUS_BY_CLASS:
        if isinstance(error, cls):
            return code
    # A validation error (such as a bad timeline) is the request's fault; anything else ours.
    return 422 if isinstance(error, ValueError) else 500


def _jsonable(value: object) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple, frozenset, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def problem_details(error: RenderStateError) -> tuple[int, dict[str, Any]]:
    """Return ``(status code, RFC 9457 body)`` for ``error``.

    The body has ``type``, ``title``, ``status`` and ``detail`` (the error's own message),
    plus ``error`` (the class name) and the error's structured attributes
    (``project_key``, ``status``, ``trigger``, ``allowed``, ...), made JSON-safe.
    """
    code = status_code_for(error)
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(code).phrase,
        "status": code,
        "detail": str(error),
        "error": type(error).__name__,
    }
    for name in _ATTRIBUTES:
        if hasattr(error, name):
            # "status" is taken by RFC 9457 for the HTTP code: the project's is "current_status".
            key = "current_status" if name == "status" else name
            body[key] = _jsonable(getattr(error, name))
    return code, body
