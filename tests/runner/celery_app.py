"""The Celery app the tests' `celery worker` subprocesses run, and the test process sends through.

Its settings come as JSON in ``RENDERSTATE_TEST_CELERY`` (see :class:`Settings`): a broker
on the local Redis, isolated per test by a key prefix and a queue of its own, and the command
line's SQLAlchemy store (projects + ledger) on a database file both sides share.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from celery import Celery

from renderstate import RenderRunner
from renderstate.cli._store import Project, Store
from renderstate.ledger import Ledger
from renderstate.runner.celery import register, run_attempt
from renderstate.testing import FakeRenderer
from renderstate.typing import Renderer

ENV = "RENDERSTATE_TEST_CELERY"


@dataclasses.dataclass(frozen=True)
class Settings:
    broker: str
    """A Redis URL (also the result backend) or a RabbitMQ URL."""
    prefix: str
    """Prefixes every Redis key of this test (broker and results), so runs never collide."""
    queue: str
    db: str
    """The SQLAlchemy URL both the test process and the workers use."""
    media: str
    lease: float = 2.0
    visibility_timeout: float = 3.0
    frames: int = 10
    frame_delay: float = 0.0
    renderer: str = "fake"
    """``fake`` (FakeRenderer with ``frames`` and ``frame_delay``) or ``moviepy``."""
    backend: str | None = None
    """The result backend (a Redis URL); by default the broker."""
    sweep: bool = True
    """Whether the workers sweep the ledger for renders whose worker died."""
    grace: float | None = 20.0
    """Seconds a render may still take once a warm shutdown began (``None``: it finishes)."""

    def to_env(self) -> dict[str, str]:
        return {ENV: json.dumps(dataclasses.asdict(self))}

    @classmethod
    def from_env(cls) -> Settings:
        return cls(**json.loads(os.environ[ENV]))


def build_app(settings: Settings) -> Celery:
    app = Celery(
        "renderstate-tests", broker=settings.broker, backend=settings.backend or settings.broker
    )
    transport: dict[str, object] = {}
    if settings.broker.startswith("redis"):
        transport = {
            "global_keyprefix": settings.prefix,
            # Redeliver a dead worker's unacknowledged message after this many seconds, and
            # look for such messages every second (kombu's default is every 100 s).
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        }
    # RabbitMQ: a queue of its own per test isolates it; a dead worker's messages come
    # back when its connection drops.
    app.conf.update(
        broker_transport_options=transport,
        result_backend_transport_options={"global_keyprefix": settings.prefix},
        task_default_queue=settings.queue,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.1},
    )
    return app


def store_for(settings: Settings) -> tuple[Store, Ledger]:
    store = Store(settings.db)
    return store, Ledger(store.ledger.store, lease=settings.lease)


def renderer_for(settings: Settings) -> Renderer[Any]:
    if settings.renderer == "moviepy":
        from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415

        return MoviePyRenderer(preset="ultrafast")
    return FakeRenderer(frames=settings.frames, frame_delay=settings.frame_delay)


def make_runner(settings: Settings) -> RenderRunner[Project]:
    store, ledger = store_for(settings)
    return RenderRunner(
        store.adapter,
        renderer_for(settings),
        media_root=Path(settings.media),
        ledger=ledger,
        loader=store.loader,
    )


APP_TASK = "tests.app_render"
"""The name of the app's own render task (:func:`add_app_task`)."""


def add_app_task(app: Celery) -> Any:
    """Add an app's own task, the shape an app keeps: its body is one ``run_attempt`` call.

    It takes the project's id, as an app's task does, and returns what the delivery did.
    """

    def app_render(self: Any, project_id: int) -> str:
        return run_attempt(self, project_id)

    return app.task(name=APP_TASK, bind=True, acks_late=True)(app_render)


APP_TASK_WITH_FORMAT = "tests.app_render_format"
"""An app's own task taking more than the key (``(project_id, fmt)``): sent with ``args=``."""


def add_app_task_with_format(app: Celery) -> Any:
    """Add an app's own task whose arguments are the project's id and an output format."""

    def app_render_format(self: Any, project_id: str, fmt: str) -> str:
        assert fmt == "hls", fmt
        return run_attempt(self, project_id)

    return app.task(name=APP_TASK_WITH_FORMAT, bind=True, acks_late=True)(app_render_format)


if ENV in os.environ:
    SETTINGS = Settings.from_env()
    app = build_app(SETTINGS)
    register(app, lambda: make_runner(SETTINGS), sweep=SETTINGS.sweep, grace=SETTINGS.grace)
    add_app_task(app)
    add_app_task_with_format(app)
