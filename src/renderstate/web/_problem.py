"""Framework-agnostic mapping from renderstate errors to RFC 9457 problem details.

A body carries text for the HTTP client only (the error's
:attr:`~renderstate.RenderStateError.public_message`, or for a server error a sentence
that says so) and a ``request_id``; the full message goes to the ``renderstate.web``
log under the same id, so a client's report leads to it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Final, TypeAlias

from renderstate.exceptions import (
    InvalidOutputPathError,
    InvalidTransitionError,
    ProjectNotFoundError,
    RenderStateError,
    UnknownStatusError,
)

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "REQUEST_ID_HEADER",
    "BodyShape",
    "error_sentence_body",
    "new_request_id",
    "problem_details",
    "status_code_for",
]

logger = logging.getLogger("renderstate.web")

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

REQUEST_ID_HEADER: Final = "X-Request-ID"
"""The request header whose id the web helpers reuse (from a proxy), and answer with."""

_SAFE_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id(given: str | None = None) -> str:
    """Return ``given`` (an ``X-Request-ID`` header's value) if it is a safe id, else a new one.

    A safe id is 1 to 128 letters, digits, ``.``, ``_``, ``:`` or ``-``, so it can be
    logged and echoed as is; anything else is replaced by a fresh UUID (32 hex digits).
    """
    if given is not None and _SAFE_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


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


def problem_details(
    error: RenderStateError, *, request_id: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Return ``(status code, RFC 9457 body)`` for ``error``, and log its full message.

    The body has ``type``, ``title``, ``status`` and ``detail``, plus ``error`` (the class
    name), ``request_id`` and, below 500, the error's structured attributes
    (``project_key``, ``status``, ``trigger``, ``allowed``, ...), made JSON-safe. ``detail``
    is written for the HTTP client: the error's
    :attr:`~renderstate.RenderStateError.public_message` (no absolute server path, no advice
    about the code), or for a 5xx "the server could not ..." with the request id. The full
    ``str(error)`` is logged on the ``renderstate.web`` logger with the same
    ``request_id=...``: at ERROR for a 5xx, WARNING when the client was told less than the
    log, INFO otherwise.

    Args:
        error: The error to answer.
        request_id: The request's id, as your logs know it (``X-Request-ID``); a new one
            when not given (see :func:`new_request_id`).
    """
    code = status_code_for(error)
    rid = new_request_id(request_id)
    full = str(error)
    if code >= 500:
        detail = (
            f"The server could not handle this request; its log has the details under "
            f"request id {rid}."
        )
    else:
        detail = error.public_message
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(code).phrase,
        "status": code,
        "detail": detail,
        "error": type(error).__name__,
        "request_id": rid,
    }
    if code < 500:  # a server error's data is the server's business
        for name in _ATTRIBUTES:
            if hasattr(error, name):
                # "status" is RFC 9457's HTTP code: the project's is "current_status".
                key = "current_status" if name == "status" else name
                body[key] = _jsonable(getattr(error, name))
    if code >= 500:
        level = logging.ERROR
    elif detail != full:
        level = logging.WARNING
    else:
        level = logging.INFO
    logger.log(
        level,
        "request_id=%s answered %d %s: %s",
        rid,
        code,
        type(error).__name__,
        full,
        extra={"request_id": rid},
    )
    return code, body


BodyShape: TypeAlias = Callable[[int, Mapping[str, Any]], dict[str, Any]]
"""Turns ``(status code, problem body)`` into the body an app answers with instead."""


def error_sentence_body(code: int, problem: Mapping[str, Any]) -> dict[str, Any]:
    """The ``{"error": "<sentence>"}`` shape many apps (and their tests) already answer with.

    ``error`` is the problem's ``detail`` (the client's sentence), ``code`` the error's class
    name, ``request_id`` the id the log has the full message under; served as plain
    ``application/json``::

        {"error": "Project 42 is already PROCESSING; ... try again.",
         "code": "RenderConflictError", "request_id": "3f2c..."}
    """
    return {
        "error": problem["detail"],
        "code": problem["error"],
        "request_id": problem["request_id"],
    }
