"""FastAPI (and Starlette) integration: renderstate errors become problem+json responses.

Usage::

    from fastapi import FastAPI
    from renderstate.web.fastapi import add_exception_handlers

    app = FastAPI()
    add_exception_handlers(app)
"""

from __future__ import annotations

try:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    msg = "renderstate.web.fastapi needs FastAPI: pip install 'renderstate[web]'"
    raise ImportError(msg) from exc

from typing import Any

from renderstate.exceptions import RenderStateError
from renderstate.web._problem import PROBLEM_CONTENT_TYPE, REQUEST_ID_HEADER, problem_details

__all__ = ["add_exception_handlers", "problem_response"]


def problem_response(error: RenderStateError, request: Request | None = None) -> JSONResponse:
    """Return the problem+json response for ``error``; its full message is logged.

    The request's ``X-Request-ID`` header names the request in the body, the log and the
    response's own ``X-Request-ID`` header (a new id without one).
    """
    given = None if request is None else request.headers.get(REQUEST_ID_HEADER)
    code, body = problem_details(error, request_id=given)
    return JSONResponse(
        body,
        status_code=code,
        media_type=PROBLEM_CONTENT_TYPE,
        headers={REQUEST_ID_HEADER: body["request_id"]},
    )


async def _handle(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, RenderStateError):  # pragma: no cover - registered for it only
        raise error
    return problem_response(error, request)


def add_exception_handlers(app: Any) -> None:
    """Answer every :class:`~renderstate.RenderStateError` raised by ``app``'s endpoints.

    Args:
        app: A ``fastapi.FastAPI`` or ``starlette.applications.Starlette`` application.
    """
    app.add_exception_handler(RenderStateError, _handle)
