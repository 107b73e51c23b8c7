"""Fixtures: each example app served for real, on SQLite and on fresh PostgreSQL and MariaDB
databases (one per test run and xdist worker, dropped afterwards)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.databases import Target, create, drop

from .servers import AppServer, serve

APPS = ("django_app", "fastapi_app", "flask_app")
DATABASES = ("sqlite", "postgres", "mariadb")
MARKS = {"sqlite": [], "postgres": [pytest.mark.postgres], "mariadb": [pytest.mark.mariadb]}


def database_url(target: Target) -> str:
    if target.backend == "sqlite":
        return f"sqlite:///{target.name}"
    if target.backend == "mariadb":
        return f"mysql://{target.user}@127.0.0.1:3306/{target.name}"
    return f"postgresql://{target.user}@127.0.0.1:5432/{target.name}"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(
            (app, db),
            id=f"{app}-{db}",
            marks=[pytest.mark.slow, *MARKS[db]],
        )
        for app in APPS
        for db in DATABASES
    ],
)
def app_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """An example app's real server on a database of its own, for the whole module."""
    app, backend = request.param
    workdir: Path = tmp_path_factory.mktemp(f"{app}-{backend}")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        target = create(backend, workdir, worker)
    except Exception as exc:  # a server that is not running: skipped (a failure under CI)
        pytest.skip(f"{backend} is not reachable: {exc}")
    try:
        with serve(app, database_url(target), workdir) as server:
            yield server
    finally:
        drop(target)
