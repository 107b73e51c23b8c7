"""Django REST Framework integration: renderstate errors become DRF problem+json responses.

Set the handler in ``settings.REST_FRAMEWORK``::

    REST_FRAMEWORK = {
        "EXCEPTION_HANDLER": "renderstate.web.drf.exception_handler",
    }

A :class:`~renderstate.RenderStateError` raised in an API view is answered with a DRF
:class:`~rest_framework.response.Response` whose ``data`` is the problem body (``detail``
is the error's message, as in DRF's own errors), served as ``application/problem+json``.
Every other exception goes to DRF's default handler, unchanged. If you already have a
handler of your own, call :func:`problem_response` from it instead.

An app whose clients (and tests) already read ``{"error": "<sentence>"}`` keeps that shape
with :func:`error_sentence_handler`, or any shape of its own with
:func:`make_exception_handler`::

    REST_FRAMEWORK = {
        "EXCEPTION_HANDLER": "renderstate.web.drf.error_sentence_handler",
    }
"""

from __future__ import annotations

try:
    from rest_framework.response import Response
    from rest_framework.views import exception_handler as drf_exception_handler
    from rest_framework.views import set_rollback
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    msg = "renderstate.web.drf needs Django REST Framework: pip install 'renderstate[drf]'"
    raise ImportError(msg) from exc

from collections.abc import Callable
from typing import Any

from renderstate.exceptions import RenderStateError
from renderstate.web._problem import (
    PROBLEM_CONTENT_TYPE,
    REQUEST_ID_HEADER,
    BodyShape,
    error_sentence_body,
    problem_details,
)

__all__ = [
    "ProblemResponse",
    "error_sentence_handler",
    "exception_handler",
    "make_exception_handler",
    "problem_response",
]


class ProblemResponse(Response):
    """A DRF response served as ``application/problem+json`` when it is rendered as JSON.

    Content negotiation still applies: a browser asking for HTML gets DRF's browsable page
    (as ``text/html``), a client asking for JSON gets the problem body with the problem+json
    media type (RFC 9457).
    """

    @property
    def rendered_content(self) -> Any:
        """Render as DRF does, then name the problem media type for a JSON rendering."""
        content = super().rendered_content
        if getattr(getattr(self, "accepted_renderer", None), "format", None) == "json":
            charset = getattr(self.accepted_renderer, "charset", None)
            self["Content-Type"] = (
                f"{PROBLEM_CONTENT_TYPE}; charset={charset}" if charset else PROBLEM_CONTENT_TYPE
            )
        return content


def problem_response(
    error: RenderStateError, request: Any = None, *, body: BodyShape | None = None
) -> Response:
    """Return the DRF problem response for ``error``; its full message is logged.

    The request's ``X-Request-ID`` header names the request in the body, the log and the
    response's own ``X-Request-ID`` header (a new id without one). With ``body``, the
    problem body is reshaped by it (say :func:`~renderstate.web.error_sentence_body`) and
    served as a plain DRF response (``application/json``), not as problem+json.
    """
    headers = getattr(request, "headers", None)
    given = None if headers is None else headers.get(REQUEST_ID_HEADER)
    code, problem = problem_details(error, request_id=given)
    answer_headers = {REQUEST_ID_HEADER: problem["request_id"]}
    if body is not None:
        return Response(body(code, problem), status=code, headers=answer_headers)
    return ProblemResponse(problem, status=code, headers=answer_headers)


def make_exception_handler(
    body: BodyShape | None = None,
) -> Callable[[Exception, dict[str, Any]], Response | None]:
    """Build a DRF ``EXCEPTION_HANDLER`` that answers renderstate errors with ``body``'s shape.

    ``body(code, problem)`` turns the problem body into yours (``None``: the problem body
    itself, as :func:`exception_handler`). Name the handler you build in
    ``REST_FRAMEWORK["EXCEPTION_HANDLER"]`` by its dotted path::

        # myapp/errors.py
        handler = make_exception_handler(lambda code, p: {"message": p["detail"]})
    """

    def handler(exc: Exception, context: dict[str, Any]) -> Response | None:
        if isinstance(exc, RenderStateError):
            set_rollback()
            return problem_response(exc, context.get("request"), body=body)
        return drf_exception_handler(exc, context)

    handler.__doc__ = exception_handler.__doc__
    return handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: answer renderstate errors, defer everything else to DRF.

    A renderstate error rolls back the request's transaction under ``ATOMIC_REQUESTS``, as
    DRF does for the errors it handles. Anything that is not a renderstate error gets DRF's
    own answer (``None`` for an unhandled exception: a 500 by Django).
    """
    return _problem_handler(exc, context)


def error_sentence_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The ``EXCEPTION_HANDLER`` answering ``{"error": "<sentence>", "code", "request_id"}``.

    As :func:`exception_handler`, with :func:`~renderstate.web.error_sentence_body`'s shape
    as ``application/json``: for an app whose clients already read ``error`` as a sentence.
    """
    return _sentence_handler(exc, context)


_problem_handler = make_exception_handler()
_sentence_handler = make_exception_handler(error_sentence_body)
