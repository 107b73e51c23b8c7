"""The test project's ``renders.py``, as docs/django-tasks.md shows it: one function builds
the runner, for the web process (with the executor) and for each ``db_worker`` (the setting
``RENDERSTATE_RUNNER`` names it), from the model's label alone."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_tasks_db import DatabaseBackend

from renderstate import RenderRunner
from renderstate.adapters.django import DjangoAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.django import DjangoAttemptStore
from renderstate.testing import FakeRenderer
from renderstate.typing import Executor, Renderer


class NoDeferBackend(DatabaseBackend):
    """A backend that cannot defer a task, as some queues cannot."""

    supports_defer = False


def _renderer() -> Renderer[Any]:
    test = settings.RENDERSTATE_TEST
    if test.get("renderer") == "moviepy":
        from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415

        return MoviePyRenderer(preset="ultrafast")
    return FakeRenderer(frames=test["frames"], frame_delay=test["frame_delay"])


def make_runner(executor: Executor | None = None) -> RenderRunner[Any]:
    store = DjangoAttemptStore()
    return RenderRunner(
        DjangoAdapter(),
        _renderer(),
        media_root=settings.MEDIA_ROOT,
        ledger=Ledger(store, lease=settings.RENDERSTATE_TEST["lease"], progress_interval=0.05),
        loader=store.loader("djangoapp.Project"),
        executor=executor,
        task_id_field=settings.RENDERSTATE_TEST.get("task_id_field"),
    )
