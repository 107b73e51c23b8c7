"""RenderRunner with Django: worker threads recycle their connections around each job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.conftest import BACKEND_PARAMS, db_targets, target_for
from adapters.contract import elsewhere
from adapters.test_django import use_database
from renderstate import RenderRunner, Status
from renderstate.adapters.django import DjangoAdapter
from renderstate.runner.executors import ThreadExecutor
from renderstate.testing import FakeRenderer

__all__ = ["db_targets"]


@pytest.mark.parametrize("backend", [p for p in BACKEND_PARAMS if p.id in ("sqlite", "postgres")])
def test_worker_threads_close_their_connections_after_each_job(
    tmp_path: Path, db_targets: dict[str, Any], backend: str
) -> None:
    """After a job, the worker thread holds no open Django connection (CONN_MAX_AGE=0), as
    after a request; without the runner's job scope it would keep the one the job opened."""
    from django.db import connections  # noqa: PLC0415 - configured by use_database

    alias = use_database(target_for(db_targets, backend))
    from djangoapp.models import Project  # noqa: PLC0415 - needs django.setup()

    key = elsewhere(lambda: Project.objects.using(alias).create(title="t", status="DRAFT").pk)
    executor = ThreadExecutor(1)
    runner = RenderRunner(
        DjangoAdapter(), FakeRenderer(frames=2), media_root=tmp_path, executor=executor
    )
    job = runner.submit(Project.objects.using(alias).get(pk=key))
    assert job.wait(30) is Status.COMPLETED
    probe = executor._pool.submit(lambda: connections[alias].connection is None)
    assert probe.result(timeout=30), "the worker thread kept its database connection open"
    runner.shutdown()
