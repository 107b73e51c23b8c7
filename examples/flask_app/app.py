"""The Flask example: create a project, start its render, read its status, fetch the video.

``create_app()`` builds the app and its :class:`~renderstate.RenderRunner`, once per process
(kept in ``app.extensions``): the runner owns the render threads and the progress of the
renders it runs. Errors are RFC 9457 problem+json bodies: renderstate's own
(``RenderConflictError`` 409, ``ProjectNotFoundError`` 404) through
``renderstate.web.flask.init_app``, bad request bodies through :func:`invalid`.
"""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any

import flask
import peewee
from models import STATUS_PROCESSING, Project, database, now, open_database
from werkzeug.exceptions import RequestEntityTooLarge

from renderstate import ProjectNotFoundError, RenderRunner, TimelineError
from renderstate.adapters.peewee import PeeweeAdapter
from renderstate.rendering.moviepy import MoviePyRenderer
from renderstate.rendering.timeline import parse_timeline
from renderstate.web import PROBLEM_CONTENT_TYPE, REQUEST_ID_HEADER, problem_details, status_body
from renderstate.web.flask import init_app

SAMPLE_TIMELINE: dict[str, Any] = json.loads(
    resources.files("renderstate.rendering").joinpath("sample_timeline.json").read_text("utf-8")
)
"""What a project created without a timeline renders: three titled scenes and a tone."""

MAX_BODY = 1024 * 1024
"""The largest request body read, in bytes: a larger one is answered 413 (problem+json)."""

bp = flask.Blueprint("projects", __name__)


def runner() -> RenderRunner[Project]:
    """This process's runner (see :func:`create_app`)."""
    made: RenderRunner[Project] = flask.current_app.extensions["renderstate"]
    return made


def uploads() -> Path:
    """Where timelines' pictures and sounds live; they may name nothing outside it."""
    return Path(flask.current_app.config["MEDIA_ROOT"]) / "uploads"


def problem(body: dict[str, Any], status: int) -> flask.Response:
    return flask.Response(json.dumps(body), status=status, mimetype=PROBLEM_CONTENT_TYPE)


def invalid(field: str, detail: str, status: int = 422, **extra: Any) -> flask.Response:
    """A problem+json answer for a request body that cannot be used."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "field": field,
        **extra,
    }
    return problem(body, status)


def too_large(_error: RequestEntityTooLarge) -> flask.Response:
    """413 for a body over ``MAX_CONTENT_LENGTH``, known from its Content-Length before it is
    read, or once a chunked body passes the limit (werkzeug stops reading there)."""
    limit = flask.current_app.config["MAX_CONTENT_LENGTH"]
    return invalid("body", f"the request body is larger than {limit} bytes", status=413)


def read_body() -> bytes:
    """The request body; ``RequestEntityTooLarge`` (413) past ``MAX_CONTENT_LENGTH``.

    werkzeug refuses a Content-Length over the limit before reading anything, but stops a
    chunked body at the limit without saying whether more follows: one that reaches the
    limit is refused.
    """
    body = flask.request.get_data()
    limit: int = flask.current_app.config["MAX_CONTENT_LENGTH"]
    if flask.request.content_length is None and len(body) >= limit:
        raise RequestEntityTooLarge
    return body


def timeline_problem(error: TimelineError) -> flask.Response:
    """A 422 naming the timeline field at fault, as a JSON pointer into the request body.

    Its text is for the client: the full message (server paths, advice for the developer)
    is logged by ``problem_details`` under the request's id, which the body and the
    ``X-Request-ID`` header carry.
    """
    code, body = problem_details(error, request_id=flask.request.headers.get(REQUEST_ID_HEADER))
    pointer = "/timeline"
    if error.scene is not None:
        pointer += f"/scenes/{error.scene}"
    if error.field != "timeline":
        pointer += "/" + error.field.replace(".", "/")
    body["pointer"] = pointer
    response = problem(body, code)
    response.headers[REQUEST_ID_HEADER] = body["request_id"]
    return response


def load(pk: str) -> Project:
    """The project ``pk``, or ``ProjectNotFoundError`` (404) for an unknown or malformed id."""
    try:
        return Project.get_by_id(uuid.UUID(pk))
    except (ValueError, peewee.DoesNotExist):
        raise ProjectNotFoundError(project_key=pk) from None


@bp.post("/projects")
def create_project() -> flask.Response | tuple[dict[str, Any], int]:
    """``POST /projects`` ``{"title": ..., "timeline": {...}}``: 201 with the new project."""
    try:
        data = json.loads(read_body())
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        return invalid("body", f"the request body is not JSON ({exc})", status=400)
    if not isinstance(data, dict):
        return invalid("body", 'send a JSON object such as {"title": "My trip"}', status=400)
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        return invalid("title", "'title' is required: a non-empty string", pointer="/title")
    # PostgreSQL refuses NUL in text; an unpaired surrogate ("\ud800") is not text.
    if len(title) > 255 or "\x00" in title or title != title.encode("utf-8", "replace").decode():
        problem = "'title' must be at most 255 characters of text (no NUL, no unpaired surrogate)"
        return invalid("title", problem, pointer="/title")
    timeline = data.get("timeline", SAMPLE_TIMELINE)
    try:
        # Checked now, so a mistake is a 422 here rather than a FAILED render later.
        parse_timeline(timeline, base_dir=uploads())
    except TimelineError as error:
        return timeline_problem(error)
    project = Project.create(title=title, timeline=timeline)
    return {
        **status_body(project, runner()),
        "title": project.title,
        "timeline": project.timeline,
    }, 201


@bp.post("/projects/<pk>/render")
def render_project(pk: str) -> tuple[dict[str, Any], int]:
    """``POST /projects/<id>/render``: 202 and the render runs; 409 while one runs."""
    project = load(pk)
    runner().submit(project)  # the guarded start: RenderConflictError -> 409
    return status_body(project, runner()), 202


@bp.get("/projects/<pk>")
def project_status(pk: str) -> dict[str, Any]:
    """``GET /projects/<id>``: the status body (poll it while the render runs)."""
    return status_body(load(pk), runner())


@bp.get("/media/<path:path>")
def media(path: str) -> flask.Response:
    """The uploads and the rendered videos (in production, let the web server do this).

    A hidden name (a segment starting with ``.``) is never served: the runner writes a
    render's temporary files (``.renderstate-*``) beside the final video.
    """
    if any(part.startswith(".") for part in path.split("/")):
        flask.abort(404)
    return flask.send_from_directory(flask.current_app.config["MEDIA_ROOT"], path)


def create_app(database_url: str, media_root: str | Path) -> flask.Flask:
    """Build the app, its database connection and its runner."""
    media = Path(media_root).resolve()
    (media / "uploads").mkdir(parents=True, exist_ok=True)
    app = flask.Flask(__name__)
    app.config["MEDIA_ROOT"] = str(media)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    open_database(database_url)
    init_app(app)  # renderstate's errors -> problem+json
    app.register_error_handler(RequestEntityTooLarge, too_large)
    app.register_blueprint(bp)
    app.extensions["renderstate"] = RenderRunner(
        # Peewee has no auto_now: the adapter stamps updated_at on every transition.
        PeeweeAdapter(auto_update={"updated_at": now}),
        MoviePyRenderer(base_dir=media / "uploads"),
        media_root=media,
        max_workers=2,
        find_processing=lambda: Project.select().where(Project.status == STATUS_PROCESSING),
    )

    # One connection per request thread, returned when the request ends (Peewee's advice).
    @app.before_request
    def _connect() -> None:
        database.connect(reuse_if_open=True)

    @app.teardown_request
    def _close(exc: BaseException | None) -> None:
        if not database.is_closed():
            database.close()

    return app
