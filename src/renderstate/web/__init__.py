"""Thin helpers that turn renderstate's errors into HTTP responses, one module per framework.

- :mod:`renderstate.web.django`: ``RenderStateMiddleware``
- :mod:`renderstate.web.fastapi`: ``add_exception_handlers(app)``
- :mod:`renderstate.web.flask`: ``init_app(app)``

All of them answer with an RFC 9457 ``application/problem+json`` body built by
:func:`problem_details`, so clients see the same shape whatever the backend. The body's
text is for the client (no server path, no advice about the code) and carries a
``request_id``, also sent as the ``X-Request-ID`` header (a request's own ``X-Request-ID``
is reused); the full message is logged on the ``renderstate.web`` logger with that id. An
app whose clients read ``{"error": "<sentence>"}`` reshapes the body with
:func:`error_sentence_body`. A project's status endpoint answers :func:`status_body`, also
the same everywhere.
"""

from __future__ import annotations

from renderstate.web._problem import (
    PROBLEM_CONTENT_TYPE,
    REQUEST_ID_HEADER,
    BodyShape,
    error_sentence_body,
    new_request_id,
    problem_details,
    status_code_for,
)
from renderstate.web._status import ProgressBody, StatusBody, status_body

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "REQUEST_ID_HEADER",
    "BodyShape",
    "ProgressBody",
    "StatusBody",
    "error_sentence_body",
    "new_request_id",
    "problem_details",
    "status_body",
    "status_code_for",
]
