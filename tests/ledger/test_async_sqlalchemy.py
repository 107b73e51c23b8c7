"""AsyncLedger over AsyncSQLAlchemyAttemptStore: the ledger contract through AsyncSession.

On aiosqlite, psycopg 3 (async) and aiomysql: the whole contract, each call awaited on the
tests' event loop with one async engine per database, plus the start of sixteen asyncio
tasks on separate connections.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from adapters.contract import run
from adapters.test_sqlalchemy_async import async_engine_for
from renderstate import ProjectLifecycle, Status
from renderstate.adapters.sqlalchemy import AsyncSQLAlchemyAdapter
from renderstate.ledger import AsyncLedger, AttemptState
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore
from renderstate.ledger.sqlalchemy_async import AsyncSQLAlchemyAttemptStore

from .awaited import AwaitedHarness, sixteen_starts
from .contract import Clock, LedgerContract
from .test_sqlalchemy import TABLE, SQLAlchemyLedgerHarness


class AsyncSQLAlchemyLedgerHarness(AwaitedHarness, SQLAlchemyLedgerHarness):
    """Rows are made and read with the sync engine; the ledger under test is async."""

    def prepare(self) -> None:
        super().prepare()
        self.async_engine = async_engine_for(self.target)
        self.async_factory = async_sessionmaker(self.async_engine, expire_on_commit=False)

    def async_store(self) -> AsyncSQLAlchemyAttemptStore:
        return AsyncSQLAlchemyAttemptStore(self.async_factory, table=TABLE)


class TestAsyncSQLAlchemyLedger(LedgerContract):
    harness_class = AsyncSQLAlchemyLedgerHarness

    def test_sixteen_tasks_one_attempt(self, harness: AsyncSQLAlchemyLedgerHarness) -> None:
        """Sixteen asyncio tasks, each on its own connection, start one project: one wins,
        fifteen get RenderConflictError (409), one attempt is written, all on the loop."""
        key = harness.insert(Status.COMPLETED, output="projects/1/final.mp4")
        before = harness.attempts()
        ledger = AsyncLedger(harness.async_store(), clock=Clock())
        adapter = AsyncSQLAlchemyAdapter(harness.async_factory)
        threads: set[str] = set()

        def record(*_: object) -> None:
            threads.add(threading.current_thread().name)

        event.listen(harness.async_engine.sync_engine, "before_cursor_execute", record)

        async def start() -> None:
            async with harness.async_factory() as session:
                project = await session.get(harness.model, key)
            lifecycle = ProjectLifecycle(project, adapter, **harness.options)
            await ledger.start(lifecycle, output_path="projects/1/final.mp4")

        try:
            outcomes = run(sixteen_starts(start))
        finally:
            event.remove(harness.async_engine.sync_engine, "before_cursor_execute", record)
        assert outcomes == ["conflict 409"] * 15 + ["won"]
        assert harness.attempts() == before + 1
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)
        assert threads == {"async-adapters"}  # the loop's thread: no worker thread

    def test_a_caller_s_async_session_is_joined(
        self, harness: AsyncSQLAlchemyLedgerHarness
    ) -> None:
        """With an AsyncSession in a transaction (an edit flushed, then the start), the start
        and its attempt join it: rolled back with it, nothing is written."""
        key = harness.insert()
        before = harness.attempts()
        title = harness.row(key)["title"]

        async def start_then_roll_back() -> str:
            async with harness.async_factory() as session:
                await session.begin()
                project = await session.get(harness.model, key)
                setattr(project, harness.columns["title"], "edited")
                await session.flush()
                ledger = AsyncLedger(AsyncSQLAlchemyAttemptStore(session, table=TABLE))
                lifecycle = ProjectLifecycle(
                    project, AsyncSQLAlchemyAdapter(session), **harness.options
                )
                _, attempt = await ledger.start(lifecycle)
                assert session.in_transaction()
                seen = await ledger.get(attempt.id)
                assert seen is not None
                await session.rollback()
                return seen.state.value

        assert run(start_then_roll_back()) == AttemptState.QUEUED.value
        assert harness.attempts() == before
        assert harness.row(key)["status"] == harness.literal(Status.DRAFT)
        assert harness.row(key)["title"] == title


def test_create_table_on_the_async_engine(
    db_targets: dict[str, Any], backend: str, request: pytest.FixtureRequest
) -> None:
    """create_table() makes the ledger's table through the async engine alone."""
    from sqlalchemy import MetaData  # noqa: PLC0415

    from adapters.conftest import target_for  # noqa: PLC0415
    from renderstate.ledger.sqlalchemy import attempt_table  # noqa: PLC0415

    target = target_for(db_targets, backend)
    engine = async_engine_for(target)
    name = f"rs_async_{request.node.name[-12:].strip('[]-')}_{threading.get_native_id()}"
    table = attempt_table(MetaData(), name=name[:48])
    store = AsyncSQLAlchemyAttemptStore(async_sessionmaker(engine), table=table)
    run(store.create_table(engine))
    assert run(AsyncLedger(store).history("t", "1")) == []

    async def drop() -> None:
        async with engine.begin() as connection:
            await connection.run_sync(table.drop)

    run(drop())


@pytest.mark.parametrize("wrong", [Session, sessionmaker])
def test_a_sync_session_is_refused_with_the_right_class_named(wrong: type) -> None:
    """A Session or sessionmaker is refused with the store that takes it."""
    with pytest.raises(TypeError, match="for a Session or sessionmaker use SQLAlchemyAttemptStore"):
        AsyncSQLAlchemyAttemptStore(wrong())


def test_a_sync_store_is_refused_by_the_async_ledger() -> None:
    """AsyncLedger over a synchronous store is a TypeError naming the class to use."""
    with pytest.raises(TypeError, match="for a synchronous store use Ledger"):
        AsyncLedger(SQLAlchemyAttemptStore(sessionmaker(), table=TABLE))  # type: ignore[arg-type]
