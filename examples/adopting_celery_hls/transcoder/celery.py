"""The Celery app, as Celery's Django guide lays it out; the swap registers the worker side."""

import os

from celery import Celery

from renderstate import RenderRunner
from renderstate.runner.celery import register

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "transcoder.settings")

app = Celery("transcoder")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def worker_runner() -> RenderRunner[object]:
    """The runner a worker process builds on its first task (Django is set up by then)."""
    from videos.renders import app_task, make_runner  # noqa: PLC0415 - Django must be ready

    # Its sweep sends a dead worker's transcode again through the app's task, with the
    # app's arguments, which this executor makes.
    return make_runner(app_task())  # type: ignore[return-value]


# The swap: each worker process's runner, which the app's task renders with, its sweeps
# (a dead worker's transcode is sent again through the app's task) and its shutdown grace.
register(app, worker_runner)
