"""RenderRunner.asubmit: the guarded start through an async adapter, on a real database.

The start is awaited on the event loop (AsyncSQLAlchemyAdapter over aiosqlite or psycopg 3);
the render then runs in the runner's threads with the sync adapter, exactly as after submit().
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

from adapters.databases import Target, create, drop
from adapters.test_sqlalchemy import Base, Project
from renderstate import (
    ProjectNotFoundError,
    RenderConflictError,
    RenderJob,
    RenderRunner,
    Status,
)
from renderstate.adapters.memory import AsyncMemoryAdapter
from renderstate.adapters.sqlalchemy import AsyncSQLAlchemyAdapter, SQLAlchemyAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore
from renderstate.testing import FakeRenderer, MemoryAdapter, MemoryProject
from renderstate.typing import ProgressSink
from renderstate.web import status_body

CLICKS = 16
TICKS = 20
"""Ticks of the event loop that must pass while a start waits on a lock."""


class HeldRenderer:
    """A FakeRenderer that waits for ``release`` before rendering, so a render outlasts a race."""

    def __init__(self, frames: int = 3) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.fake = FakeRenderer(frames)

    def __call__(self, project: object, target: Path, progress: ProgressSink) -> None:
        self.started.set()
        assert self.release.wait(30), "the test never released the render"
        self.fake(project, target, progress)


@dataclass
class Database:
    target: Target
    engine: Engine
    async_engine: AsyncEngine

    def insert(self) -> Any:
        with sessionmaker(self.engine, expire_on_commit=False).begin() as session:
            project = Project(title="trip")
            session.add(project)
        return project.id

    async def aload(self, key: object) -> Project:
        async with async_sessionmaker(self.async_engine, expire_on_commit=False)() as session:
            project = await session.get(Project, key)
        assert project is not None
        return project

    def stored(self, key: object) -> tuple[str, str | None]:
        query = select(Project.status, Project.output_path).where(Project.id == key)
        with self.engine.connect() as connection:
            status, output = connection.execute(query).one()
        return status, output

    def runner(self, renderer: object, media: Path, **options: Any) -> RenderRunner[Project]:
        options.setdefault(
            "async_adapter",
            AsyncSQLAlchemyAdapter(async_sessionmaker(self.async_engine, expire_on_commit=False)),
        )
        return RenderRunner(
            SQLAlchemyAdapter(sessionmaker(self.engine, expire_on_commit=False)),
            renderer,
            media_root=media,
            **options,
        )

    @contextmanager
    def row_locked(self, key: object) -> Iterator[None]:
        """Hold a lock that the project's UPDATE must wait for, on another connection."""
        with self.engine.connect() as connection:
            if self.target.backend == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")  # the database's write lock
            else:
                query = select(Project.id).where(Project.id == key).with_for_update()
                connection.execute(query)
            try:
                yield
            finally:
                connection.rollback()


def _sqlite_wal(dbapi_connection: Any, _: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A fresh database of the module's own, through a sync and an async engine."""
    backend: str = request.param
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        target = create(backend, tmp_path_factory.mktemp("asubmit"), worker)
    except Exception as exc:  # a server that is not running: skipped (a failure under CI)
        pytest.skip(f"{backend} is not reachable: {exc}")
    if backend == "sqlite":
        engine = create_engine(target.sqlalchemy_url(), connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_wal)
        async_engine = create_async_engine(
            target.sqlalchemy_async_url(), connect_args={"timeout": 30}, pool_size=CLICKS + 4
        )
        event.listen(async_engine.sync_engine, "connect", _sqlite_wal)
    else:
        engine = create_engine(target.sqlalchemy_url())
        async_engine = create_async_engine(target.sqlalchemy_async_url(), pool_size=CLICKS + 4)
    Base.metadata.create_all(engine)
    try:
        yield Database(target, engine, async_engine)
    finally:
        asyncio.run(async_engine.dispose())
        engine.dispose()
        drop(target)


async def wait_for(job: RenderJob[Any]) -> Status:
    return await asyncio.to_thread(job.wait, 30)


@pytest.mark.parametrize("runners", [1, 4], ids=["one-runner", "four-runners"])
def test_sixteen_tasks_start_one_render(database: Database, tmp_path: Path, runners: int) -> None:
    """16 concurrent asubmit tasks, each with its own copy of the row: one job, fifteen 409s.

    With four runners (four processes' worth: no lock in common) the database alone decides.
    """
    key = database.insert()
    renderer = HeldRenderer()

    async def main() -> tuple[list[object], Status]:
        with contextlib.ExitStack() as stack:
            made = [
                stack.enter_context(database.runner(renderer, tmp_path, max_workers=2))
                for _ in range(runners)
            ]
            copies = [await database.aload(key) for _ in range(CLICKS)]
            outcomes = await asyncio.gather(
                *(
                    made[n % runners].asubmit(copy, actor=f"click {n}")
                    for n, copy in enumerate(copies)
                ),
                return_exceptions=True,
            )
            renderer.release.set()  # every click has had its answer: let the render end
            jobs = [o for o in outcomes if isinstance(o, RenderJob)]
            assert len(jobs) == 1, outcomes
            [job] = jobs
            # registered as submit() registers: the runner's progress and status_body see it
            won = outcomes.index(job)
            assert made[won % runners].job(copies[won]) is job
            return outcomes, await wait_for(job)

    outcomes, final = asyncio.run(main())
    conflicts = [o for o in outcomes if isinstance(o, RenderConflictError)]
    assert len(conflicts) == CLICKS - 1, outcomes
    assert {c.status_code for c in conflicts} == {409}
    assert final is Status.COMPLETED
    assert database.stored(key) == ("COMPLETED", f"projects/{key}/final.mp4")


@pytest.mark.parametrize("with_ledger", [False, True], ids=["async-adapter", "ledger"])
def test_the_event_loop_runs_while_a_start_waits_on_a_lock(
    database: Database, tmp_path: Path, with_ledger: bool
) -> None:
    """While the start's UPDATE waits on another connection's lock, other tasks keep running.

    Through the async adapter, or with a ledger through its (sync) start in a worker thread.
    """
    key = database.insert()
    options: dict[str, Any] = {}
    if with_ledger:
        store = SQLAlchemyAttemptStore(sessionmaker(database.engine))
        store.create_table(database.engine)
        options["ledger"] = Ledger(store)
    ticked = threading.Event()  # set by the ticker, on the loop, after TICKS ticks
    locked = threading.Event()
    outcome: dict[str, object] = {}

    def hold_the_lock() -> None:
        with database.row_locked(key):
            outcome["held"] = True
            locked.set()
            # Released when the loop has ticked; a start that blocks the loop never lets it.
            outcome["released by the ticker"] = ticked.wait(30)

    async def main() -> Status:
        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        assert await asyncio.to_thread(locked.wait, 30)
        with database.runner(FakeRenderer(frames=3), tmp_path, **options) as runner:
            project = await database.aload(key)
            start = asyncio.create_task(runner.asubmit(project))
            ticks = 0
            while ticks < TICKS:
                await asyncio.sleep(0.005)
                ticks += 1
                # Done while the lock is held: the start did not wait for it, or it blocked
                # the loop until the holder gave up.
                assert not start.done(), outcome
            ticked.set()
            job = await start
            await asyncio.to_thread(holder.join, 30)
            return await wait_for(job)

    assert asyncio.run(main()) is Status.COMPLETED
    assert outcome == {"held": True, "released by the ticker": True}
    assert database.stored(key)[0] == "COMPLETED"


def test_a_cancelled_caller_never_strands_a_started_project(
    database: Database, tmp_path: Path
) -> None:
    """Cancelling asubmit while its start waits: the start finishes and its render runs."""
    key = database.insert()
    release = threading.Event()
    locked = threading.Event()

    def hold_the_lock() -> None:
        with database.row_locked(key):
            locked.set()
            assert release.wait(30)

    async def main() -> Status:
        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        assert await asyncio.to_thread(locked.wait, 30)
        with database.runner(FakeRenderer(frames=3), tmp_path) as runner:
            project = await database.aload(key)
            start = asyncio.create_task(runner.asubmit(project))
            for _ in range(TICKS):
                await asyncio.sleep(0.005)
            start.cancel()
            await asyncio.sleep(0)
            release.set()  # the UPDATE goes through once the lock is released
            with pytest.raises(asyncio.CancelledError):
                await start
            await asyncio.to_thread(holder.join, 30)
            job = runner.job(project)
            assert job is not None, "the started project has no job: it would stay PROCESSING"
            return await wait_for(job)

    assert asyncio.run(main()) is Status.COMPLETED
    assert database.stored(key) == ("COMPLETED", f"projects/{key}/final.mp4")


def test_with_a_ledger_the_start_records_its_attempt(database: Database, tmp_path: Path) -> None:
    """With a ledger, asubmit records the attempt with the start (in a worker thread)."""
    store = SQLAlchemyAttemptStore(sessionmaker(database.engine))
    store.create_table(database.engine)
    key = database.insert()
    renderer = HeldRenderer()

    async def main() -> None:
        with database.runner(renderer, tmp_path, ledger=Ledger(store)) as runner:
            project = await database.aload(key)
            job = await runner.asubmit(project, actor="alice")
            with pytest.raises(RenderConflictError):
                await runner.asubmit(await database.aload(key))
            assert job.attempt is not None
            assert (job.attempt.actor, job.attempt.project_key) == ("alice", str(key))
            body = await asyncio.to_thread(status_body, project, runner)
            assert body["status"] == "PROCESSING"
            assert body["progress"] is not None
            renderer.release.set()
            assert await wait_for(job) is Status.COMPLETED

    asyncio.run(main())
    assert database.stored(key)[0] == "COMPLETED"


# ---------------------------------------------------------------- errors, without a database


def memory_runner(tmp_path: Path, **options: Any) -> RenderRunner[MemoryProject]:
    return RenderRunner(MemoryAdapter(), FakeRenderer(frames=2), media_root=tmp_path, **options)


def test_without_an_async_adapter_asubmit_says_how_to_give_one(tmp_path: Path) -> None:
    """No async adapter: a TypeError naming async_adapter=, and the project is untouched."""
    project = MemoryProject()
    with memory_runner(tmp_path) as runner:
        with pytest.raises(TypeError, match=r"async_adapter=") as raised:
            asyncio.run(runner.asubmit(project))
        assert "asyncio.to_thread(runner.submit" in str(raised.value)
        assert runner.job(project) is None
    assert project.status == "DRAFT"


def test_a_sync_adapter_given_as_the_async_one_is_refused(tmp_path: Path) -> None:
    """async_adapter= must be an async adapter: a sync one is a TypeError at construction."""
    with pytest.raises(TypeError, match=r"async_adapter=.*MemoryAdapter.*AsyncMemoryAdapter"):
        memory_runner(tmp_path, async_adapter=MemoryAdapter())


def test_asubmit_refuses_what_submit_refuses(tmp_path: Path) -> None:
    """Same errors as submit(): a running render (409), an unsaved project, a closed runner."""
    project = MemoryProject()
    runner = memory_runner(tmp_path, async_adapter=AsyncMemoryAdapter(), max_workers=1)

    async def main() -> None:
        first = await runner.asubmit(project)
        with pytest.raises(RenderConflictError) as conflict:
            await runner.asubmit(project)
        assert conflict.value.status_code == 409
        await asyncio.to_thread(first.wait, 30)
        with pytest.raises(ProjectNotFoundError):
            await runner.asubmit(MemoryProject(id=None))

    asyncio.run(main())
    runner.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        asyncio.run(runner.asubmit(project))


def test_asubmit_and_submit_exclude_each_other(tmp_path: Path) -> None:
    """A sync submit and an async one on the same project and runner: exactly one starts."""
    project = MemoryProject()
    renderer = HeldRenderer()
    runner = RenderRunner(
        MemoryAdapter(), renderer, media_root=tmp_path, async_adapter=AsyncMemoryAdapter()
    )
    outcomes: list[object] = []

    def sync_click() -> None:
        try:
            outcomes.append(runner.submit(project))
        except RenderConflictError as exc:
            outcomes.append(exc)

    async def main() -> None:
        async def async_click() -> None:
            try:
                outcomes.append(await runner.asubmit(project))
            except RenderConflictError as exc:
                outcomes.append(exc)

        await asyncio.gather(async_click(), asyncio.to_thread(sync_click), async_click())

    with runner:
        asyncio.run(main())
        renderer.release.set()
    jobs = [o for o in outcomes if isinstance(o, RenderJob)]
    assert len(jobs) == 1, outcomes
    assert jobs[0].wait(30) is Status.COMPLETED


class GateAdapter(AsyncMemoryAdapter):
    """An async memory adapter whose writes wait for ``gate``, as behind a slow database."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()
        self.calls = 0

    async def apply(self, project: object, change: Any) -> bool:
        self.calls += 1
        self.waiting.set()
        await self.gate.wait()
        return await super().apply(project, change)


def test_a_sync_submit_on_the_loop_while_asubmit_waits_is_an_error(tmp_path: Path) -> None:
    """submit() on the loop whose task holds the project's start would deadlock: it raises."""
    project = MemoryProject()
    adapter = GateAdapter()

    async def main() -> RenderJob[MemoryProject]:
        with memory_runner(tmp_path, async_adapter=adapter) as runner:
            start = asyncio.create_task(runner.asubmit(project))
            await adapter.waiting.wait()
            with pytest.raises(RuntimeError, match=r"await runner\.asubmit\(project\)"):
                runner.submit(project)
            adapter.gate.set()
            job = await start
            await asyncio.to_thread(job.wait, 30)
            return job

    assert asyncio.run(main()).status is Status.COMPLETED


def test_a_start_waiting_for_its_turn_is_abandoned_when_cancelled(tmp_path: Path) -> None:
    """Cancelled while another start of the project holds the way: nothing is written."""
    project = MemoryProject()
    adapter = GateAdapter()

    async def main() -> None:
        with memory_runner(tmp_path, async_adapter=adapter) as runner:
            first = asyncio.create_task(runner.asubmit(project))
            await adapter.waiting.wait()
            second = asyncio.create_task(runner.asubmit(project))
            await asyncio.sleep(0)  # the second now waits for the first's turn to end
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            adapter.gate.set()
            job = await first
            assert await asyncio.to_thread(job.wait, 30) is Status.COMPLETED
            assert runner.job(project) is job
            assert adapter.calls == 1  # the first's start; the second never wrote

    asyncio.run(main())
