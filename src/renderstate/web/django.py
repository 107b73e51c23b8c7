"""Django integration: renderstate errors become problem+json responses.

Add the middleware to ``settings.MIDDLEWARE``::

    MIDDLEWARE = [
        ...,
        "renderstate.web.django.RenderStateMiddleware",
    ]

or answer one error yourself with :func:`problem_response`.
"""

from __future__ import annotations

try:
    from django.http import HttpRequest, HttpResponse, JsonResponse
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    msg = "renderstate.web.django needs Django: pip install 'renderstate[django]'"
    raise ImportError(msg) from exc

from collections.abc import Callable

from renderstate.exceptions import RenderStateError
from renderstate.web._problem import PROBLEM_CONTENT_TYPE, REQUEST_ID_HEADER, problem_details

__all__ = ["RenderStateMiddleware", "problem_response"]


def problem_response(error: RenderStateError, request: HttpRequest | None = None) -> JsonResponse:
    """Return the problem+json response for ``error``; its full message is logged.

    The request's ``X-Request-ID`` header names the request in the body, the log and the
    response's own ``X-Request-ID`` header (a new id without one).
    """
    given = None if request is None else request.headers.get(REQUEST_ID_HEADER)
    code, body = problem_details(error, request_id=given)
    response = JsonResponse(body, status=code, content_type=PROBLEM_CONTENT_TYPE)
    response[REQUEST_ID_HEADER] = body["request_id"]
    return response


class RenderStateMiddleware:
    """Turns a :class:`~renderstate.RenderStateError` escaping a view into its HTTP answer.

    A second "Export video" click while a render runs becomes ``409 Conflict`` with a body
    that says why; a deleted project becomes ``404``. Other exceptions pass through.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Pass the request on; errors are answered by :meth:`process_exception`."""
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer renderstate errors; return ``None`` for anything else."""
        if isinstance(exception, RenderStateError):
            return problem_response(exception, request)
        return None
