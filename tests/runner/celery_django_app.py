"""A Django project's ``proj/celery.py``, as docs/celery.md shows it: the worker builds its
runner from the model's label alone (``store.loader("djangoapp.Project")``), with Django's
adapter and the ledger's Django store, on the settings module's database."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runner.django_settings")
django.setup()

from django.conf import settings  # noqa: E402 - after django.setup()

from renderstate import RenderRunner  # noqa: E402
from renderstate.adapters.django import DjangoAdapter  # noqa: E402
from renderstate.ledger import Ledger  # noqa: E402
from renderstate.ledger.django import DjangoAttemptStore  # noqa: E402
from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: E402
from renderstate.runner.celery import register  # noqa: E402

app = Celery("djangotests")
app.config_from_object("django.conf:settings", namespace="CELERY")


class Observable:
    """MoviePyRenderer, each progress report held 10 ms: the sample timeline's still
    stretches encode in well under one heartbeat tick on a quiet machine, and the test
    watches the worker's progress reach the ledger mid-render from another process."""

    def __init__(self) -> None:
        self.renderer = MoviePyRenderer()

    def __call__(self, project: Any, target: Path, progress: Any) -> None:
        def held(phase: str, done: int, total: int) -> None:
            progress(phase, done, total)  # a cancel or hand-back raises here, as before
            time.sleep(0.01)

        self.renderer(project, target, held)


def make_runner() -> RenderRunner[object]:
    store = DjangoAttemptStore()
    return RenderRunner(
        DjangoAdapter(),
        Observable(),
        media_root=settings.MEDIA_ROOT,
        ledger=Ledger(store, progress_interval=0.05),
        loader=store.loader("djangoapp.Project"),
    )


register(app, make_runner)
