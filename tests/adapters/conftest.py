"""Fixtures for the adapter tests: a fresh database per run and xdist worker on each server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .contract import Harness
from .databases import BACKENDS, Target, targets


@pytest.fixture(scope="session")
def db_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Target | Exception]]:
    """Every backend's fresh database for this run, or the error that made it unreachable."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    tmp_dir: Path = tmp_path_factory.mktemp("sqlite")
    yield from targets(tmp_dir, worker)


BACKEND_PARAMS = [
    pytest.param(b, marks=[getattr(pytest.mark, b)] if b != "sqlite" else [], id=b)
    for b in BACKENDS
]
"""Parametrise a harness fixture over the three backends, marked ``postgres``/``mariadb``."""


def target_for(db_targets: dict[str, Target | Exception], backend: str) -> Target:
    """Return ``backend``'s target, or skip (a failure under CI) if it is unreachable."""
    target = db_targets[backend]
    if isinstance(target, Exception):
        pytest.skip(f"{backend} is not reachable: {target}")
    return target


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each database the adapter must serve."""
    name: str = request.param
    return name


@pytest.fixture(params=["reference", "variant"])
def harness(
    request: pytest.FixtureRequest, db_targets: dict[str, Target | Exception], backend: str
) -> Harness:
    """The test class's ORM harness on ``backend``, for the reference and the variant model."""
    harness_class: type[Harness] = request.cls.harness_class
    made = harness_class(target_for(db_targets, backend), variant=request.param == "variant")
    made.prepare()
    return made


@pytest.fixture
def reference_harness(
    request: pytest.FixtureRequest, db_targets: dict[str, Target | Exception], backend: str
) -> Harness:
    """The test class's ORM harness on ``backend``, for the reference model alone: for a
    test of a column only the reference model has (a skip would fail the run under CI)."""
    harness_class: type[Harness] = request.cls.harness_class
    made = harness_class(target_for(db_targets, backend), variant=False)
    made.prepare()
    return made
