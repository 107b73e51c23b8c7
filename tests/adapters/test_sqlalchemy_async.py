"""AsyncSQLAlchemyAdapter: the shared contract through AsyncSession on three async drivers."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

from renderstate import Change, Status
from renderstate.adapters.sqlalchemy import AsyncSQLAlchemyAdapter
from renderstate.exceptions import ProjectNotFoundError

from .conftest import target_for
from .contract import AsyncAdapterContract, AsyncHarness, AsyncTransaction, run, set_columns
from .databases import Target
from .test_sqlalchemy import Project, SQLAlchemyHarness, Stamped

_ENGINES: dict[Target, AsyncEngine] = {}
_LOCK = threading.Lock()


def async_engine_for(target: Target) -> AsyncEngine:
    """One async engine per database and process (its tables made by the sync harness)."""
    with _LOCK:
        if target not in _ENGINES:
            if target.backend == "sqlite":
                engine = create_async_engine(
                    target.sqlalchemy_async_url(), connect_args={"timeout": 30}, pool_size=20
                )

                @event.listens_for(engine.sync_engine, "connect")
                def _wal(dbapi_connection: Any, _: object) -> None:
                    cursor = dbapi_connection.cursor()
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.close()

            else:
                engine = create_async_engine(target.sqlalchemy_async_url(), pool_size=20)
            _ENGINES[target] = engine
        return _ENGINES[target]


class AsyncSQLAlchemyHarness(AsyncHarness, SQLAlchemyHarness):
    """Rows are made and read with the sync engine; the adapter under test is async."""

    def prepare(self) -> None:
        super().prepare()
        self.async_engine = async_engine_for(self.target)
        self.async_factory = async_sessionmaker(self.async_engine, expire_on_commit=False)

    def async_adapter(self) -> AsyncSQLAlchemyAdapter:
        return AsyncSQLAlchemyAdapter(self.async_factory)

    async def aload(self, key: object) -> Any:
        async with self.async_factory() as session:
            return await session.get(self.model, key)

    @asynccontextmanager
    async def async_transaction(self) -> AsyncIterator[AsyncTransaction]:
        async with self.async_factory() as session, session.begin():

            async def load(key: object) -> Any:
                return await session.get(self.model, key)

            yield AsyncTransaction(AsyncSQLAlchemyAdapter(session), load)

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        # The async engine's statements pass through its sync core's events.
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(args[2])

        event.listen(self.async_engine.sync_engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(self.async_engine.sync_engine, "before_cursor_execute", record)


class TestAsyncSQLAlchemyAdapter(AsyncAdapterContract):
    harness_class = AsyncSQLAlchemyHarness

    def test_session_outside_a_transaction_commits_its_own(self, harness: Any) -> None:
        """An AsyncSession with no transaction open gets one from the adapter, committed."""
        key = harness.insert()

        async def start() -> bool:
            async with AsyncSession(harness.async_engine) as session:
                project = await session.get(harness.model, key)
                await session.commit()  # end the autobegun read transaction
                applied = await AsyncSQLAlchemyAdapter(session).apply(
                    project, harness.start_change(Status.DRAFT)
                )
                assert not session.in_transaction()
                return applied

        assert run(start()) is True
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_joined_transaction_is_left_to_the_caller(self, harness: Any) -> None:
        """Inside the caller's AsyncSession transaction nothing is committed by the adapter."""
        key = harness.insert()

        async def start_then_roll_back() -> None:
            async with harness.async_factory() as session:
                project = await session.get(harness.model, key)
                adapter = AsyncSQLAlchemyAdapter(session)
                assert await adapter.apply(project, harness.start_change(Status.DRAFT))
                assert session.in_transaction()
                with harness.capture() as sql:
                    await session.flush()
                assert sql == []  # the flush has nothing left to write
                await session.rollback()

        run(start_then_roll_back())
        assert harness.row(key)["status"] == harness.literal(Status.DRAFT)


def test_database_computed_onupdate_is_expired_then_refreshed(
    db_targets: dict[str, Target | Exception], backend: str
) -> None:
    """An onupdate=func.now() column is set by the UPDATE, expired, and read by refresh()."""
    target = target_for(db_targets, backend)
    harness = AsyncSQLAlchemyHarness(target, variant=False)
    harness.prepare()
    factory = async_sessionmaker(harness.async_engine, expire_on_commit=False)

    async def scenario() -> tuple[bool, object, object, list[str]]:
        async with factory() as session:
            project = Stamped()
            session.add(project)
            await session.commit()
            with harness.capture() as sql:
                applied = await AsyncSQLAlchemyAdapter(session).apply(
                    project, harness_change("status")
                )
            expired = "touched" in inspect(project).expired_attributes
            await session.refresh(project, ["touched"])
            return expired, project.touched, project.status, [applied, *sql]

    expired, touched, status, (applied, *sql) = run(scenario())
    assert applied is True
    assert expired
    assert touched is not None
    assert status == "PROCESSING"
    assert set_columns(sql[0]) == {"status", "touched"}


def harness_change(status_field: str) -> Change:
    return Change(status_field, frozenset({"DRAFT"}), {status_field: "PROCESSING"})


@pytest.mark.parametrize("wrong", [Session, sessionmaker])
def test_a_sync_session_is_refused_with_the_right_class_named(wrong: type) -> None:
    """Passing a Session or sessionmaker raises TypeError pointing at SQLAlchemyAdapter."""
    with pytest.raises(TypeError, match="for a Session or sessionmaker use SQLAlchemyAdapter"):
        AsyncSQLAlchemyAdapter(wrong())


def test_missing_greenlet_names_the_async_extra() -> None:
    """Without greenlet the sync adapter still works; the async one names the extra to install."""
    code = (
        "import sys\n"
        "sys.modules['greenlet'] = None\n"
        "from sqlalchemy.orm import sessionmaker\n"
        "from renderstate.adapters.sqlalchemy import AsyncSQLAlchemyAdapter, SQLAlchemyAdapter\n"
        "SQLAlchemyAdapter(sessionmaker())\n"
        "try:\n"
        "    AsyncSQLAlchemyAdapter(None)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'renderstate[sqlalchemy-async]'" in out


def test_unsaved_project_is_not_found_before_any_io() -> None:
    """An object that was never flushed raises ProjectNotFoundError without a connection."""
    adapter = AsyncSQLAlchemyAdapter(async_sessionmaker())
    with pytest.raises(ProjectNotFoundError):
        run(adapter.apply(Project(title="t"), harness_change("status")))
    assert adapter.project_key(Project(title="t")) is None
    assert adapter.empty_output(Project(title="t"), "output_path") is None
