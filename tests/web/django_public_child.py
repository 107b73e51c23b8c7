"""Child process of test_public_answers: Django's middleware and DRF's handler answer a 422.

Usage: python django_public_child.py BASE_DIR

Prints, as JSON, what each view answered (status, headers, body) and the records the
``renderstate.web`` logger wrote.
"""

# Django must be configured before DRF is imported.
# ruff: noqa: E402

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="public-answers",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["testserver"],
    MIDDLEWARE=["renderstate.web.django.RenderStateMiddleware"],
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    REST_FRAMEWORK={"EXCEPTION_HANDLER": "renderstate.web.drf.exception_handler"},
)
django.setup()

from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from renderstate.rendering.timeline import parse_timeline

BASE = Path(sys.argv[1])
TIMELINE = {"scenes": [{"duration": 1, "image": "../secret.png"}]}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def plain(request: HttpRequest) -> HttpResponse:
    parse_timeline(TIMELINE, base_dir=BASE)
    return HttpResponse("unreachable")


class Api(APIView):
    def post(self, request: Request) -> Response:
        parse_timeline(TIMELINE, base_dir=BASE)
        return Response({})


urlpatterns = [path("plain", plain), path("api", Api.as_view())]


def main() -> None:
    records = Records()
    logging.getLogger("renderstate.web").addHandler(records)
    logging.getLogger("renderstate.web").setLevel(logging.INFO)
    client = Client(raise_request_exception=False)
    out: dict[str, Any] = {}
    for name in ("plain", "api"):
        response = client.post(f"/{name}", HTTP_X_REQUEST_ID=f"req-{name}")
        out[name] = {
            "status": response.status_code,
            "headers": dict(response.items()),
            "body": json.loads(response.content),
        }
    out["log"] = records.lines
    print(json.dumps(out))


if __name__ == "__main__":
    main()
