"""Temporary attacks (review): not committed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from renderstate import Status
from renderstate.ledger import AttemptState
from runner.celery_app import APP_TASK, Settings
from runner.celery_workers import Workers, new_settings, workers_for
from runner.test_celery import RABBITMQ_URL, REDIS_URL, complete_fake_video, digest
from runner.test_celery_app_task import app_web


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(new_settings(tmp_path), broker=RABBITMQ_URL, backend=REDIS_URL)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    with workers_for(settings, tmp_path / "logs") as started:
        yield started


def test_rabbit_kill(settings: Settings, workers: Workers) -> None:
    settings = replace(settings, frames=60, frame_delay=0.05, lease=1.5)
    workers.settings = settings
    first = workers.start("doomed")
    web, _ = app_web(settings)
    try:
        project = web.project()
        web.runner.submit(project)
        assert web.wait_ended(project) is Status.COMPLETED
        final = web.runner.file_path(project)
        previous = digest(final)
        r1 = workers.start("r1")
        job = web.runner.submit(project)
        web.wait_for(lambda: web.frames_done(job) > 10, 20, "under way")
        worker = web.attempts(project)[0].worker
        first.kill()
        assert digest(final) == previous
        assert web.wait_ended(project, timeout=60) is Status.COMPLETED, web.attempts(project)
        assert complete_fake_video(final, 60)
        attempts = web.attempts(project)
        assert attempts[0].state is AttemptState.COMPLETED
        assert attempts[0].worker != worker
        log = r1.output()
        print(log[-5000:])
        assert f"Task {APP_TASK}[" in log
        assert "Traceback" not in log, log
    finally:
        web.close()
