"""The real databases the adapter tests run on: one SQLite file, PostgreSQL and MariaDB.

Each run (and each xdist worker) gets its own database on the servers, created at session
start and dropped at the end; a server that is not reachable leaves its tests skipped
(which ``tests/conftest.py`` turns into a failure under ``CI=true``).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg
import pymysql

BACKENDS = ("sqlite", "postgres", "mariadb")

PG = {"host": "127.0.0.1", "port": 5432, "dbname": "test"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}


@dataclasses.dataclass(frozen=True)
class Target:
    """One database the tests write to: which server, which database (or SQLite file)."""

    backend: str
    name: str
    user: str = ""

    def sqlalchemy_url(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.name}"
        if self.backend == "postgres":
            return f"postgresql+psycopg://{self.user}@127.0.0.1:5432/{self.name}"
        return f"mysql+pymysql://root:@127.0.0.1:3306/{self.name}?charset=utf8mb4"

    def sqlalchemy_async_url(self) -> str:
        """The same database through asyncio drivers: aiosqlite, psycopg 3, aiomysql."""
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.name}"
        if self.backend == "postgres":
            return f"postgresql+psycopg://{self.user}@127.0.0.1:5432/{self.name}"
        return f"mysql+aiomysql://root:@127.0.0.1:3306/{self.name}?charset=utf8mb4"


def _pg_connect(dbname: str, user: str) -> Any:
    return psycopg.connect(
        host=PG["host"], port=PG["port"], dbname=dbname, user=user, autocommit=True
    )


def _pg_user() -> str:
    for user in ("postgres", "root", os.environ.get("USER", "")):
        with suppress(Exception):
            _pg_connect("test", user).close()
            return user
    raise ConnectionError("PostgreSQL at 127.0.0.1:5432 is not reachable")


def _mariadb_connect(database: str | None) -> Any:
    return pymysql.connect(
        host=MARIADB["host"],
        port=MARIADB["port"],
        user=MARIADB["user"],
        password=MARIADB["password"],
        database=database,
        autocommit=True,
    )


def _mariadb_execute(sql: str) -> None:
    conn = _mariadb_connect(None)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def create(backend: str, tmp_dir: Path, worker: str) -> Target:
    """Create a fresh, uniquely named database for ``backend``; raise if it is unreachable."""
    name = f"rs_{worker}_{os.getpid()}_{secrets.token_hex(3)}"
    if backend == "sqlite":
        return Target("sqlite", str(tmp_dir / f"{name}.sqlite3"))
    if backend == "postgres":
        user = _pg_user()
        with _pg_connect("test", user) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return Target("postgres", name, user)
    _mariadb_execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    return Target("mariadb", name, "root")


def drop(target: Target) -> None:
    """Drop a database made by :func:`create`."""
    if target.backend == "postgres":
        with _pg_connect("test", target.user) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{target.name}" WITH (FORCE)')
    elif target.backend == "mariadb":
        _mariadb_execute(f"DROP DATABASE IF EXISTS `{target.name}`")


def targets(tmp_dir: Path, worker: str) -> Iterator[dict[str, Target | Exception]]:
    """Yield every backend's target (or why it is unreachable), dropping them afterwards."""
    made: dict[str, Target | Exception] = {}
    for backend in BACKENDS:
        try:
            made[backend] = create(backend, tmp_dir, worker)
        except Exception as exc:
            made[backend] = exc
    try:
        yield made
    finally:
        for target in made.values():
            if isinstance(target, Target):
                with suppress(Exception):
                    drop(target)
