"""The FastAPI example: async endpoints, live progress over Server-Sent Events, and a page.

``create_app()`` builds the app, its one async engine, its attempt ledger and its one
:class:`~renderstate.RenderRunner` (kept on ``app.state`` for the life of the process). Errors
are RFC 9457 problem+json bodies: renderstate's own (``RenderConflictError`` 409,
``ProjectNotFoundError`` 404) through ``renderstate.web.fastapi.add_exception_handlers``, bad
request bodies through :func:`invalid`.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at
# run time, and they name functions local to create_app().
import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from models import ATTEMPTS, STATUS_PROCESSING, Base, Project, create_engine
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.concurrency import run_in_threadpool

from renderstate import ProjectNotFoundError, RenderRunner, TimelineError
from renderstate.ledger import DEFAULT_LEASE, AsyncLedger
from renderstate.ledger.sqlalchemy_async import AsyncSQLAlchemyAttemptStore
from renderstate.rendering.moviepy import MoviePyRenderer
from renderstate.rendering.timeline import parse_timeline
from renderstate.web import (
    PROBLEM_CONTENT_TYPE,
    REQUEST_ID_HEADER,
    StatusBody,
    problem_details,
    status_body,
)
from renderstate.web.fastapi import add_exception_handlers

HERE = Path(__file__).resolve().parent
SAMPLE_TIMELINE: dict[str, Any] = json.loads(
    resources.files("renderstate.rendering").joinpath("sample_timeline.json").read_text("utf-8")
)
"""What a project created without a timeline renders: three titled scenes and a tone."""
MAX_BODY = 1024 * 1024
"""The largest request body read, in bytes: a larger one is answered 413 (problem+json)."""
EVENT_INTERVAL = 0.1
"""Seconds between two looks at a project while its events are streamed."""


def invalid(field: str, detail: str, status: int = 422, **extra: Any) -> JSONResponse:
    """A problem+json answer for a request body that cannot be used."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "field": field,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_CONTENT_TYPE)


async def read_body(request: Request) -> bytes | None:
    """The request body, or ``None`` when it is larger than ``MAX_BODY``.

    A declared Content-Length over the limit is refused before any of the body is read; a
    chunked body is read up to the limit, and no further.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


def timeline_problem(request: Request, error: TimelineError) -> JSONResponse:
    """A 422 naming the timeline field at fault, as a JSON pointer into the request body.

    Its text is for the client: the full message (server paths, advice for the developer)
    is logged by ``problem_details`` under the request's id, which the body and the
    ``X-Request-ID`` header carry.
    """
    code, body = problem_details(error, request_id=request.headers.get(REQUEST_ID_HEADER))
    pointer = "/timeline"
    if error.scene is not None:
        pointer += f"/scenes/{error.scene}"
    if error.field != "timeline":
        pointer += "/" + error.field.replace(".", "/")
    body["pointer"] = pointer
    return JSONResponse(
        body,
        status_code=code,
        media_type=PROBLEM_CONTENT_TYPE,
        headers={REQUEST_ID_HEADER: body["request_id"]},
    )


class MediaFiles(StaticFiles):
    """``StaticFiles`` that never serves a hidden name (a segment starting with ``.``).

    The runner writes a render's temporary files (``.renderstate-*``) beside the final video.
    """

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if any(part.startswith(".") for part in Path(path).parts):
            return "", None  # not found: 404
        return super().lookup_path(path)


def create_app(  # noqa: PLR0915
    database_url: str, media_root: str | Path, *, lease: float = DEFAULT_LEASE
) -> FastAPI:
    """Build the app, its engine, ledger and runner; the tables are created at start-up.

    ``lease``: seconds a render's attempt stays alive after its last heartbeat; a render
    whose process died is failed by the recovery that runs every ``lease`` seconds.
    """
    media = Path(media_root).resolve()
    uploads = media / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url)
    AsyncSessionMaker = async_sessionmaker(engine, expire_on_commit=False)  # noqa: N806

    # The attempt ledger on the same async engine: asubmit() awaits each start and its
    # attempt on the event loop; the render and heartbeat threads hand their ledger calls
    # (and, through ledger.thread_adapter, their project writes) to the loop.
    store = AsyncSQLAlchemyAttemptStore(AsyncSessionMaker, table=ATTEMPTS)
    ledger = AsyncLedger(store, lease=lease)
    # One runner per process: it owns the render threads and the progress of their renders.
    runner: RenderRunner[Project] = RenderRunner(
        ledger.thread_adapter,
        MoviePyRenderer(base_dir=uploads),
        ledger=ledger,
        loader=store.loader(Project),
        media_root=media,
        max_workers=2,
    )

    async def recover_every_lease() -> None:
        # Safe at any time: only attempts whose lease expired (their process died) fail.
        while True:
            await run_in_threadpool(runner.recover_interrupted)
            await asyncio.sleep(ledger.lease)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        # Adds the ledger's newer columns to an older table; and the render threads reach
        # the database through this loop, which the store knows from here on.
        await store.create_table()
        recovery = asyncio.create_task(recover_every_lease())
        yield
        recovery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recovery
        await run_in_threadpool(runner.shutdown, wait=True, cancel_pending=True)
        await engine.dispose()

    app = FastAPI(title="renderstate FastAPI example", lifespan=lifespan)
    app.state.runner = runner
    add_exception_handlers(app)  # renderstate's errors -> problem+json

    async def load(project_id: str) -> Project:
        """The project, read now; ``ProjectNotFoundError`` (404) for an unknown id."""
        try:
            key = uuid.UUID(project_id)
        except ValueError:
            raise ProjectNotFoundError(project_key=project_id) from None
        async with AsyncSessionMaker() as session:
            project = await session.get(Project, key)
        if project is None:
            raise ProjectNotFoundError(project_key=project_id)
        return project  # detached, every column loaded

    async def body_of(project: Project) -> StatusBody:
        """The project's status body; its progress is read from the ledger, in a thread."""
        return await run_in_threadpool(status_body, project, runner)

    async def current_body(project_id: str) -> StatusBody:
        """The status body of the project as stored now."""
        return await body_of(await load(project_id))

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        """The project list with an "Export video" button per project."""
        return (HERE / "page.html").read_text("utf-8")

    @app.get("/projects")
    async def list_projects() -> list[dict[str, Any]]:
        """Every project, newest first, with its status."""
        async with AsyncSessionMaker() as session:
            query = select(Project).order_by(Project.created_at.desc())
            projects = list(await session.scalars(query))
        return [{**await body_of(p), "title": p.title} for p in projects]

    @app.post("/projects", status_code=201, response_model=None)
    async def create_project(request: Request) -> dict[str, Any] | JSONResponse:  # noqa: PLR0911
        """``{"title": ..., "timeline": {...}}``: 201 with the new DRAFT project."""
        raw = await read_body(request)
        if raw is None:
            detail = f"the request body is larger than {MAX_BODY} bytes"
            return invalid("body", detail, status=413)
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            return invalid("body", f"the request body is not JSON ({exc})", status=400)
        if not isinstance(data, dict):
            return invalid("body", 'send a JSON object such as {"title": "My trip"}', status=400)
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            return invalid("title", "'title' is required: a non-empty string", pointer="/title")
        # PostgreSQL refuses NUL in text; an unpaired surrogate ("\ud800") is not text.
        if (
            len(title) > 255
            or "\x00" in title
            or title != title.encode("utf-8", "replace").decode()
        ):
            problem = (
                "'title' must be at most 255 characters of text (no NUL, no unpaired surrogate)"
            )
            return invalid("title", problem, pointer="/title")
        timeline = data.get("timeline", SAMPLE_TIMELINE)
        try:
            # Checked now, so a mistake is a 422 here rather than a FAILED render later.
            parse_timeline(timeline, base_dir=uploads)
        except TimelineError as error:
            return timeline_problem(request, error)
        async with AsyncSessionMaker() as session, session.begin():
            project = Project(title=title, timeline=timeline)
            session.add(project)
        body = await body_of(project)
        return {**body, "title": project.title, "timeline": project.timeline}

    # response_model=None: StatusBody is a typing.TypedDict, which pydantic takes only from
    # typing_extensions before Python 3.12; FastAPI sends the dict as it is.
    @app.post("/projects/{project_id}/render", status_code=202, response_model=None)
    async def render_project(project_id: str) -> StatusBody:
        """202 and the render runs; 409 (problem+json) while one runs."""
        project = await load(project_id)
        # The guarded start and its attempt, one transaction awaited on the loop.
        # RenderConflictError becomes the 409 through the exception handlers.
        await runner.asubmit(project)
        return await body_of(project)

    @app.get("/projects/{project_id}", response_model=None)
    async def project_status(project_id: str) -> StatusBody:
        """The status body; poll it, or follow ``/events``."""
        return await current_body(project_id)

    async def existing(project_id: str) -> str:
        await load(project_id)  # a dependency: the 404 is answered before the stream starts
        return project_id

    @app.get("/projects/{project_id}/events", response_class=EventSourceResponse)
    async def project_events(
        project_id: Annotated[str, Depends(existing)],
    ) -> AsyncIterator[ServerSentEvent]:
        """The status body each time it changes, until the project is not PROCESSING."""
        body = await current_body(project_id)
        last = None
        while True:
            if body != last:
                yield ServerSentEvent(data=body, event="status")
                last = body
            if body["status"] != STATUS_PROCESSING:
                return
            await asyncio.sleep(EVENT_INTERVAL)
            body = await current_body(project_id)

    # The uploads and the rendered videos (in production, let the web server do this).
    app.mount("/media", MediaFiles(directory=media), name="media")
    return app
