"""A RenderRunner over an AsyncLedger: asubmit() starts on the event loop, the threads go on.

With one async engine and nothing else: the start and its attempt are awaited on the loop
(no worker thread), the render and heartbeat threads hand their ledger calls to the loop,
and the end is fenced by the attempt as with a synchronous ledger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, event

from adapters.conftest import target_for
from adapters.contract import event_loop, run
from adapters.databases import Target
from renderstate import ProjectLifecycle, RenderConflictError, RenderRunner, Status
from renderstate.adapters.sqlalchemy import AsyncSQLAlchemyAdapter
from renderstate.ledger import AsyncLedger, AttemptState
from renderstate.ledger.sqlalchemy import attempt_table
from renderstate.ledger.sqlalchemy_async import AsyncSQLAlchemyAttemptStore
from renderstate.runner import Phase, Rendered

from .runner_case import Held
from .test_async_sqlalchemy import AsyncSQLAlchemyLedgerHarness
from .test_sqlalchemy import TABLE


@contextmanager
def statements_by_thread(engine: Any) -> Iterator[list[str]]:
    """The name of the thread each statement on ``engine`` ran in, meanwhile."""
    threads: list[str] = []

    def record(*_: object) -> None:
        threads.append(threading.current_thread().name)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield threads
    finally:
        event.remove(engine, "before_cursor_execute", record)


def recorded_progress(ledger: AsyncLedger, job: Any) -> int:
    """The frames the ledger records for the job's attempt, once its heartbeat wrote some."""
    deadline = time.monotonic() + 20
    while True:
        attempt = run(ledger.get(job.attempt_id))
        assert attempt is not None
        if attempt.done or time.monotonic() > deadline:
            return attempt.done
        time.sleep(0.05)


def test_asubmit_starts_on_the_loop_and_the_threads_finish_through_it(
    db_targets: dict[str, Target | Exception], backend: str, tmp_path: Path
) -> None:
    """asubmit() awaits the start on the loop's thread; the render's heartbeats and its end,
    from the runner's threads, go through the loop too: one async engine, no sync one."""
    harness = AsyncSQLAlchemyLedgerHarness(target_for(db_targets, backend), variant=False)
    harness.prepare()
    store = AsyncSQLAlchemyAttemptStore(harness.async_factory, table=TABLE)
    ledger = AsyncLedger(store, lease=5.0, progress_interval=0.05)
    renderer = Held(frames=4)
    runner = RenderRunner(
        ledger.thread_adapter, renderer, media_root=tmp_path, ledger=ledger, max_workers=1
    )
    adapter = AsyncSQLAlchemyAdapter(harness.async_factory)
    key = harness.insert()

    async def load() -> Any:
        async with harness.async_factory() as session:
            return await session.get(harness.model, key)

    async def submit(actor: str) -> Any:
        return await runner.asubmit(await load(), actor=actor)

    try:
        with (
            statements_by_thread(harness.async_engine.sync_engine) as on_async,
            statements_by_thread(harness.engine) as on_sync,
        ):
            job = run(submit("ann"))
            started = list(on_async)
            assert renderer.started.wait(30)
            with pytest.raises(RenderConflictError):
                run(submit("bob"))
            assert recorded_progress(ledger, job) == 1  # the heartbeat thread, via the loop
            renderer.release.set()
            assert job.wait(30) is Status.COMPLETED, job.error
        assert started
        assert set(on_async) == {"async-adapters"}  # the loop's thread, every statement
        assert on_sync == []
        assert job.attempt_id is not None
        attempt = run(ledger.get(job.attempt_id))
        assert attempt is not None
        assert (attempt.state, attempt.actor) == (AttemptState.COMPLETED, "ann")
        assert attempt.phase == Phase.DONE.value
        row = harness.row(key)
        assert row["status"] == harness.literal(Status.COMPLETED)
        assert (tmp_path / "projects" / str(key) / "final.mp4").read_bytes() == b"VIDEO"
        project = run(load())
        assert ProjectLifecycle(project, adapter, **harness.options).status is Status.COMPLETED
        # The store's loader works from a thread too (recovery's re-queue, a worker's job).
        loaded = store.loader(harness.model)(str(key))
        assert loaded is not None
        assert loaded.id == key
    finally:
        renderer.release.set()
        runner.shutdown()


def test_a_thread_call_before_the_store_ran_on_a_loop_says_what_to_do(tmp_path: Path) -> None:
    """The threads' ledger needs the loop of the async engine: before the store has run on
    one, a call is refused with the fix, and nothing is written."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine  # noqa: PLC0415

    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    ledger = AsyncLedger(AsyncSQLAlchemyAttemptStore(async_sessionmaker(engine)))
    with pytest.raises(RuntimeError, match="await one of its calls there first"):
        ledger.threads.history("project", 1)


def test_a_thread_call_on_the_loop_itself_is_refused(
    db_targets: dict[str, Target | Exception],
) -> None:
    """A synchronous ledger call on the loop that would run it is refused, not a hang."""
    harness = AsyncSQLAlchemyLedgerHarness(target_for(db_targets, "sqlite"), variant=False)
    harness.prepare()
    table = attempt_table(MetaData(), name=f"rs_loop_{threading.get_native_id()}")
    ledger = AsyncLedger(AsyncSQLAlchemyAttemptStore(harness.async_factory, table=table))

    async def scenario() -> str:
        await ledger.store.create_table(harness.async_engine)
        assert await ledger.history("project", 1) == []
        try:
            ledger.threads.history("project", 1)
        except RuntimeError as exc:
            return str(exc)
        finally:
            async with harness.async_engine.begin() as connection:
                await connection.run_sync(table.drop)
        return "no error"

    assert "await the AsyncLedger's method instead" in run(scenario())
    assert event_loop().is_running()


def test_a_django_runner_with_an_async_ledger_renders(
    db_targets: dict[str, Target | Exception], backend: str, tmp_path: Path
) -> None:
    """With Django's async store, asubmit() awaits the start in the ORM thread, and the
    render threads use the same ledger on their own connections."""
    from renderstate.adapters.django import DjangoAdapter  # noqa: PLC0415
    from renderstate.ledger.django_async import AsyncDjangoAttemptStore  # noqa: PLC0415

    from .test_async_django import AsyncDjangoLedgerHarness  # noqa: PLC0415

    harness = AsyncDjangoLedgerHarness(target_for(db_targets, backend), variant=False)
    harness.prepare()
    ledger = AsyncLedger(AsyncDjangoAttemptStore(using=harness.alias), progress_interval=0.05)
    renderer = Held(frames=2)
    runner = RenderRunner(DjangoAdapter(), renderer, media_root=tmp_path, ledger=ledger)
    key = harness.insert()
    manager = harness.model._base_manager.using(harness.alias)

    async def submit() -> Any:
        return await runner.asubmit(await manager.aget(pk=key), actor="ann")

    try:
        job = run(submit())
        assert renderer.started.wait(30)
        with pytest.raises(RenderConflictError):
            run(submit())
        assert recorded_progress(ledger, job) == 1
        renderer.release.set()
        assert job.wait(30) is Status.COMPLETED, job.error
        assert job.attempt_id is not None
        attempt = run(ledger.get(job.attempt_id))
        assert attempt is not None
        assert (attempt.state, attempt.actor) == (AttemptState.COMPLETED, "ann")
        assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)
    finally:
        renderer.release.set()
        runner.shutdown()
        harness.release()


def test_a_render_s_fields_reach_the_project_through_the_loop(
    db_targets: dict[str, Target | Exception], backend: str, tmp_path: Path
) -> None:
    """A renderer's Rendered fields ride in the completion the render thread hands to
    the loop (ThreadLedger.complete with its publish): one UPDATE sets them with COMPLETED."""
    harness = AsyncSQLAlchemyLedgerHarness(target_for(db_targets, backend), variant=False)
    harness.prepare()
    store = AsyncSQLAlchemyAttemptStore(harness.async_factory, table=TABLE)
    ledger = AsyncLedger(store, lease=5.0, progress_interval=0.05)

    def renderer(project: object, target: Path, progress: object) -> Rendered:
        target.write_bytes(b"VIDEO")
        return Rendered(None, {"title": "12.5 s"})

    runner = RenderRunner(
        ledger.thread_adapter, renderer, media_root=tmp_path, ledger=ledger, max_workers=1
    )
    key = harness.insert()

    async def submit() -> Any:
        async with harness.async_factory() as session:
            project = await session.get(harness.model, key)
        return await runner.asubmit(project)

    try:
        job = run(submit())
        assert job.wait(30) is Status.COMPLETED, job.error
        row = harness.row(key)
        assert (row["status"], row["title"]) == (harness.literal(Status.COMPLETED), "12.5 s")
    finally:
        runner.shutdown()
