"""Flask integration: renderstate errors become problem+json responses.

Usage::

    from flask import Flask
    from renderstate.web.flask import init_app

    app = Flask(__name__)
    init_app(app)
"""

from __future__ import annotations

try:
    import flask
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    msg = "renderstate.web.flask needs Flask: pip install 'renderstate[web]'"
    raise ImportError(msg) from exc

import json

from renderstate.exceptions import RenderStateError
from renderstate.web._problem import PROBLEM_CONTENT_TYPE, REQUEST_ID_HEADER, problem_details

__all__ = ["init_app", "problem_response"]


def problem_response(error: RenderStateError) -> flask.Response:
    """Return the problem+json response for ``error``; its full message is logged.

    Inside a request, its ``X-Request-ID`` header names the request in the body, the log
    and the response's own ``X-Request-ID`` header (a new id without one).
    """
    given = flask.request.headers.get(REQUEST_ID_HEADER) if flask.has_request_context() else None
    code, body = problem_details(error, request_id=given)
    response = flask.Response(json.dumps(body), status=code, mimetype=PROBLEM_CONTENT_TYPE)
    response.headers[REQUEST_ID_HEADER] = body["request_id"]
    return response


def init_app(app: flask.Flask) -> None:
    """Answer every :class:`~renderstate.RenderStateError` raised by ``app``'s views."""
    app.register_error_handler(RenderStateError, problem_response)
