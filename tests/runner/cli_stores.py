"""The command line's store on a SQLite file, PostgreSQL and MariaDB, one test each, for tests
that run renders across real processes and threads over one database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.conftest import BACKEND_PARAMS, db_targets, target_for
from renderstate.cli._store import Store

__all__ = ["db_targets", "digest", "store", "url"]


@pytest.fixture(params=BACKEND_PARAMS)
def url(request: pytest.FixtureRequest, db_targets: dict[str, object]) -> str:
    """The test database's SQLAlchemy URL, once per backend."""
    return target_for(db_targets, request.param).sqlalchemy_url()  # type: ignore[arg-type]


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    """The command line's store (projects and attempt ledger) on ``url``, tables made."""
    made = Store(url)
    yield made
    made.close()


def digest(path: Path) -> str:
    """The SHA-256 of a file's bytes: a previous video is compared by it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
