"""A Django project rendered on a real `celery worker` (prefork), PostgreSQL as the database,
Redis as the broker: the worker knows nothing but the Django settings module and the model's
label; the project ends COMPLETED with a playable file, and the test process reads the
render's progress from the ledger throughout."""

from __future__ import annotations

import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from adapters.conftest import db_targets, target_for
from adapters.contract import elsewhere
from adapters.test_django import database_settings, use_database
from renderstate import RenderRunner, Status
from renderstate.adapters.django import DjangoAdapter
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger._identity import parse_worker
from renderstate.ledger.django import DjangoAttemptStore
from renderstate.runner.celery import CeleryExecutor
from runner.celery_workers import REDIS_URL, new_settings, redis_reachable, workers_for

__all__ = ["db_targets"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not redis_reachable(), reason="needs Redis at 127.0.0.1:6379"),
]

# The packaged sample (titles, two crossfades, a tone; 5 s at 640x360): long enough for the test
# process to see the render under way.
TIMELINE: dict[str, Any] = json.loads(
    resources.files("renderstate.rendering").joinpath("sample_timeline.json").read_text()
)


def _never_here(project: object, target: Path, progress: object) -> None:
    msg = "the web process never renders: its executor sends the job to a worker"
    raise AssertionError(msg)


def test_a_django_project_renders_on_a_worker_that_loads_it_by_its_model_label(
    tmp_path: Path, db_targets: dict[str, Any]
) -> None:
    """Submit from this process (Django, PostgreSQL); a prefork worker configured by the
    settings module alone renders it with MoviePy; progress advances in the ledger."""
    from rendering.media import probe  # noqa: PLC0415 - needs the render extra's ffmpeg

    target = target_for(db_targets, "postgres")
    alias = use_database(target)
    from djangoapp.models import Project  # noqa: PLC0415 - needs django.setup()

    settings = new_settings(tmp_path)
    django_env = {
        "database": database_settings(target),
        "media": settings.media,
        "broker": REDIS_URL,
        "prefix": settings.prefix,
        "queue": settings.queue,
    }
    command = [
        *(sys.executable, "-m", "celery", "--app", "runner.celery_django_app", "worker"),
        *("--hostname", f"django-{settings.queue}@%h", "--pool", "prefork", "--concurrency", "1"),
        *("--queues", settings.queue, "--without-gossip", "--without-mingle"),
        *("--without-heartbeat", "--loglevel", "INFO"),
    ]
    app = Celery("django-web", broker=REDIS_URL)
    app.conf.update(broker_transport_options={"global_keyprefix": settings.prefix})
    store = DjangoAttemptStore(using=alias)
    runner: RenderRunner[Any] = RenderRunner(
        DjangoAdapter(),
        _never_here,
        media_root=settings.media,
        executor=CeleryExecutor(app, queue=settings.queue),
        ledger=Ledger(store),
        loader=store.loader(Project),
    )
    with workers_for(settings, tmp_path / "logs") as workers:
        worker = workers.start(
            "django",
            command=command,
            env={"RENDERSTATE_TEST_DJANGO": json.dumps(django_env)},
        )
        key = elsewhere(
            lambda: (
                Project.objects.using(alias)
                .create(
                    title="on a worker",
                    timeline=TIMELINE,
                    resolution_width=64,
                    resolution_height=36,
                    framerate=20,
                )
                .pk
            )
        )
        project = Project.objects.using(alias).get(pk=key)
        job = runner.submit(project, actor="ann")
        fractions: list[float] = []
        deadline = time.monotonic() + 120
        while Project.objects.using(alias).get(pk=key).status == "PROCESSING":
            assert time.monotonic() < deadline, worker.output()[-4000:]
            progress = runner.progress(project)
            assert progress is not None
            fractions.append(progress.fraction)
            time.sleep(0.02)
        row = Project.objects.using(alias).get(pk=key)
        assert row.status == "COMPLETED", worker.output()[-4000:]
        assert row.output_path == f"projects/{key}/final.mp4"
        assert job.wait(10) is Status.COMPLETED
        info = probe(runner.file_path(row))
        assert (info.width, info.height, info.video_codec) == (640, 360, "h264")
        assert info.duration == pytest.approx(5.0, abs=0.2)  # two 0.5 s crossfades
        assert info.audio_codec == "aac"
        assert fractions == sorted(fractions), "progress never went back"
        assert any(0.0 < f < 1.0 for f in fractions), f"no progress seen: {fractions}"
        (attempt,) = runner.ledger.history(store.scope(row), key) if runner.ledger else []
        assert attempt.state is AttemptState.COMPLETED
        assert attempt.actor == "ann"
        assert attempt.worker is not None
        assert parse_worker(attempt.worker).pid != worker.pid, "a pool child rendered it"
    runner.shutdown()
