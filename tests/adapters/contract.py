"""The adapter contract, written once and run against every ORM adapter on every database.

A test module subclasses :class:`AdapterContract` and provides a ``harness`` fixture: a
:class:`Harness` that knows how to create, load, read and edit rows with its ORM. The tests
here only speak the harness's logical column names (status, output, title, timeline).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import datetime as dt
import functools
import multiprocessing
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from renderstate import TRANSITIONS, Change, ProjectLifecycle, Status, Trigger
from renderstate.exceptions import (
    InvalidOutputPathError,
    InvalidTransitionError,
    ProjectNotFoundError,
    RenderConflictError,
    UnknownStatusError,
)
from renderstate.testing import MemoryProject
from renderstate.typing import Adapter, StatusValues

from .databases import Target

THREADS = 16
PROCESSES = 4
BARRIER_TIMEOUT = 120
"""Seconds a racer waits for the others: a thread that failed to load must not hang the run."""

INTEGER_LITERALS: Mapping[Status, Hashable] = {
    Status.DRAFT: 10,
    Status.PROCESSING: 20,
    Status.COMPLETED: 30,
    Status.FAILED: 40,
}
"""The variant model stores integers instead of the four names."""

EDGES = {(t.trigger, t.source): t.target for t in TRANSITIONS}

T = TypeVar("T")

OTHER_WRITER = ThreadPoolExecutor(1, thread_name_prefix="other-writer")
"""Harnesses with thread-bound connections create, read and edit rows from this thread."""


def elsewhere(call: Callable[[], T]) -> T:
    """Run ``call`` on the other writer's thread: its own connection, autocommit."""
    return OTHER_WRITER.submit(call).result()


_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def event_loop() -> asyncio.AbstractEventLoop:
    """The process's one event loop for the async adapters, running in a daemon thread.

    Async engines bind their connections to one loop, so every coroutine of the async
    harnesses runs here, and the contract's threads wait for them with :func:`run`.
    """
    global _LOOP  # noqa: PLW0603 - one loop per process, made on first use
    with _LOOP_LOCK:
        if _LOOP is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="async-adapters", daemon=True).start()
            _LOOP = loop
        return _LOOP


def run(coroutine: Coroutine[Any, Any, T], context: contextvars.Context | None = None) -> T:
    """Run ``coroutine`` on :func:`event_loop` and wait for its result.

    With ``context``, the task runs in that context and what it sets there stays set for
    the next call with the same context: Django's per-request ORM thread
    (``ThreadSensitiveContext``) lives in a context variable.
    """
    loop = event_loop()
    if context is None:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()
    result: concurrent.futures.Future[T] = concurrent.futures.Future()

    def copy(task: asyncio.Task[T]) -> None:
        if task.cancelled():
            result.cancel()
        elif (error := task.exception()) is not None:
            result.set_exception(error)
        else:
            result.set_result(task.result())

    def start() -> None:
        loop.create_task(coroutine, context=context).add_done_callback(copy)

    loop.call_soon_threadsafe(start)
    return result.result()


class BlockingAdapter:
    """A synchronous :class:`Adapter` view of an async adapter, awaited on the harness loop.

    It lets the whole synchronous contract drive an async adapter's ``apply`` and
    ``refresh_status``: sixteen threads become sixteen tasks on the loop.
    """

    def __init__(self, adapter: Any, context: contextvars.Context | None = None) -> None:
        self.inner = adapter
        self.context = context

    def apply(self, project: object, change: Change) -> bool:
        result: bool = run(self.inner.apply(project, change), self.context)
        return result

    def refresh_status(self, project: object, status_field: str) -> None:
        run(self.inner.refresh_status(project, status_field), self.context)

    def project_key(self, project: object) -> object:
        return self.inner.project_key(project)

    def empty_output(self, project: object, field: str) -> str | None:
        result: str | None = self.inner.empty_output(project, field)
        return result

    def check_fields(self, project: object, names: Any) -> Any:
        return self.inner.check_fields(project, names)

    def non_text_fields(self, project: object, names: Any) -> Any:
        return self.inner.non_text_fields(project, names)


class BlockingLifecycle:
    """An async-bound :class:`ProjectLifecycle` whose ``a``-methods are awaited on the loop.

    The synchronous contract calls ``start_render()``; this awaits ``astart_render()``,
    so every contract test drives the async adapter through the async lifecycle.
    """

    def __init__(
        self, lifecycle: ProjectLifecycle[Any], context: contextvars.Context | None
    ) -> None:
        self.inner = lifecycle
        self.context = context

    def start_render(self, *, task_id: str | None = None) -> Any:
        return run(self.inner.astart_render(task_id=task_id), self.context)

    def complete(self, output_path: str, *, fields: Any = None) -> Any:
        return run(self.inner.acomplete(output_path, fields=fields), self.context)

    def fail(self, error: Any = None, *, clear_output: bool = False) -> Any:
        return run(self.inner.afail(error, clear_output=clear_output), self.context)

    @property
    def status(self) -> Status:
        return self.inner.status

    @property
    def project_key(self) -> object:
        return self.inner.project_key


class Transaction:
    """The caller's own transaction: an adapter and a loader that take part in it."""

    def __init__(self, adapter: Adapter[Any], load: Callable[[object], Any]) -> None:
        self.adapter = adapter
        self.load = load


class Harness:
    """What the contract needs from an ORM: rows in, rows out, SQL captured.

    ``variant=False`` is the reference model (UUID pk, ``status``, ``output_path`` nullable,
    ``updated_at`` auto-updated); ``variant=True`` is a model with other names
    (``state`` holding integers, ``video`` NOT NULL, ``name``) and no timestamp.
    """

    def __init__(self, target: Target, *, variant: bool) -> None:
        self.target = target
        self.variant = variant
        self.values: StatusValues | None = None
        """Literals that replace the model's own map in :attr:`options`, when set."""
        self.more_options: dict[str, Any] = {}
        """More ProjectLifecycle options (error_field, task_id_field), in :attr:`options`."""

    @property
    def backend(self) -> str:
        return self.target.backend

    @property
    def columns(self) -> dict[str, str]:
        """Logical name -> column name of the model under test."""
        if self.variant:
            return {"status": "state", "output": "video", "title": "name"}
        return {
            "status": "status",
            "output": "output_path",
            "title": "title",
            "timeline": "timeline",
            "updated_at": "updated_at",
        }

    @property
    def options(self) -> dict[str, Any]:
        """The ProjectLifecycle options for the model under test."""
        options: dict[str, Any] = (
            {"status_field": "state", "output_field": "video", "values": INTEGER_LITERALS}
            if self.variant
            else {}
        )
        if self.values is not None:
            options["values"] = self.values
        options.update(self.more_options)
        return options

    @property
    def five_statuses(self) -> StatusValues:
        """A five-status map of the model's column: two literals read as PROCESSING."""
        if self.variant:
            return {**INTEGER_LITERALS, Status.PROCESSING: [20, 25]}
        return {
            Status.DRAFT: "CREATED",
            Status.PROCESSING: ["QUEUED", "PROCESS"],
            Status.COMPLETED: "DONE",
            Status.FAILED: "ERROR",
        }

    @property
    def no_output(self) -> str | None:
        return "" if self.variant else None

    @property
    def unknown_literal(self) -> object:
        return 99 if self.variant else "ARCHIVED"

    def new_row(self, status: Status, output: str | None) -> dict[str, Any]:
        """The constructor arguments of a new row of the model under test."""
        if self.variant:
            return {"name": "t", "state": self.literal(status), "video": output or ""}
        return {"title": "t", "status": status.value, "output_path": output, "timeline": {}}

    def literal(self, status: Status) -> Hashable:
        return INTEGER_LITERALS[status] if self.variant else status.value

    def lifecycle(
        self, project: object, adapter: Adapter[Any] | None = None
    ) -> ProjectLifecycle[Any]:
        return ProjectLifecycle(project, adapter or self.adapter(), **self.options)

    def start_change(self, *sources: Status) -> Change:
        """The change ``start_render`` asks for, from ``sources``."""
        status = self.columns["status"]
        return Change(
            status_field=status,
            expected=frozenset(self.literal(s) for s in sources),
            values={status: self.literal(Status.PROCESSING)},
        )

    def __getstate__(self) -> dict[str, Any]:
        # Only the configuration crosses into a child process; engines and connections
        # are rebuilt there.
        return {"target": self.target, "variant": self.variant}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["target"], variant=state["variant"])  # type: ignore[misc]

    # ---------------------------------------------------------------- per ORM
    def prepare(self) -> None:
        """Make the tables exist (idempotent, per process)."""
        raise NotImplementedError

    def adapter(self) -> Adapter[Any]:
        """An adapter usable from the calling thread, in autocommit mode."""
        raise NotImplementedError

    def insert(self, status: Status = Status.DRAFT, output: str | None = None) -> object:
        """Store a new row and return its key."""
        raise NotImplementedError

    def load(self, key: object) -> Any:
        """A fresh object for ``key``, read in autocommit mode."""
        raise NotImplementedError

    def row(self, key: object) -> dict[str, Any]:
        """The stored row under logical names (status as stored, not mapped)."""
        raise NotImplementedError

    def edit(self, key: object, **values: Any) -> None:
        """Write logical columns of ``key`` directly, bypassing the adapter, and commit."""
        raise NotImplementedError

    def delete(self, key: object) -> None:
        raise NotImplementedError

    def unsaved(self) -> Any:
        """A new object that was never saved."""
        raise NotImplementedError

    def blank(self) -> Any:
        """A new, never saved object built without naming its status (defaults not applied)."""
        return self.unsaved()

    orm = ""
    """Which ORM the harness drives: foreign objects are objects of every other kind."""

    def capture(self) -> AbstractContextManager[list[str]]:
        """Collect the SQL statements the adapter's connection executes meanwhile."""
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[Transaction]:
        """Open the caller's own transaction (committed on exit, rolled back on error)."""
        raise NotImplementedError

    def release(self) -> None:
        """Close what the calling thread opened (connections)."""

    def save_title(self, project: Any, title: str) -> None:
        """Edit the title on ``project`` and save it the ORM's plain way (all fields it holds)."""
        raise NotImplementedError


class AsyncTransaction:
    """The caller's own transaction in async code: an async adapter and an async loader."""

    def __init__(self, adapter: Any, load: Callable[[object], Coroutine[Any, Any, Any]]) -> None:
        self.adapter = adapter
        self.load = load


class AsyncHarness(Harness):
    """A harness whose adapter under test is async; ``adapter()`` is its blocking view."""

    def async_adapter(self) -> Any:
        """The async adapter under test, usable from any task on :func:`event_loop`."""
        raise NotImplementedError

    async def aload(self, key: object) -> Any:
        """A fresh object for ``key``, read through the async ORM."""
        raise NotImplementedError

    def async_transaction(self) -> AbstractAsyncContextManager[AsyncTransaction]:
        """The caller's own async transaction (committed on exit, rolled back on error)."""
        raise NotImplementedError

    def connection_scope(self) -> AbstractAsyncContextManager[object]:
        """Where a task gets a connection of its own (Django: its own ORM thread)."""
        return contextlib.nullcontext()

    def adapter(self) -> Adapter[Any]:
        return BlockingAdapter(self.async_adapter())

    def lifecycle(self, project: object, adapter: Adapter[Any] | None = None) -> Any:
        """The async lifecycle over the async adapter (or the transaction's), awaited."""
        if isinstance(adapter, BlockingAdapter):
            inner, context = adapter.inner, adapter.context
        else:
            inner, context = adapter or self.async_adapter(), None
        return BlockingLifecycle(ProjectLifecycle(project, inner, **self.options), context)

    def async_lifecycle(self, project: object, adapter: Any = None) -> ProjectLifecycle[Any]:
        return ProjectLifecycle(project, adapter or self.async_adapter(), **self.options)

    def load(self, key: object) -> Any:
        return run(self.aload(key))

    def transaction(self) -> AbstractContextManager[Transaction]:
        return _blocking_transaction(self)


class _blocking_transaction(AbstractContextManager[Transaction]):  # noqa: N801
    """Enter an async transaction from a thread: each step is awaited on the loop."""

    def __init__(self, harness: AsyncHarness) -> None:
        self._manager = harness.async_transaction()
        # Every step of one transaction runs in one context: the same ORM thread.
        self._context = contextvars.Context()

    def __enter__(self) -> Transaction:
        tx = run(self._manager.__aenter__(), self._context)
        return Transaction(
            BlockingAdapter(tx.adapter, self._context),
            lambda key: run(tx.load(key), self._context),
        )

    def __exit__(self, *exc_info: Any) -> bool | None:
        return run(self._manager.__aexit__(*exc_info), self._context)


# -------------------------------------------------------------------- helpers
_SET = re.compile(r"\bSET\b(.*?)\bWHERE\b", re.IGNORECASE | re.DOTALL)


def set_columns(sql: str) -> set[str]:
    """The column names an UPDATE statement assigns."""
    match = _SET.search(sql)
    assert match, sql
    names = set()
    for assignment in re.split(r",(?![^()]*\))", match.group(1)):
        name = assignment.split("=")[0].strip().strip('`"[]')
        names.add(name.rsplit(".", 1)[-1].strip('`"[]'))
    return names


def utc(value: object) -> object:
    """Datetimes as naive UTC (drivers differ in what they return); other values as they are."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def updates(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("UPDATE")]


def outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except RenderConflictError:
        return "conflict"
    except Exception as exc:
        return f"error: {exc!r}"
    return "won"


def start_in_process(harness: Harness, key: object, barrier: Any, results: Any) -> None:
    """Child process body: load the project, wait for the others, try to start its render."""
    try:
        harness.prepare()
        lifecycle = harness.lifecycle(harness.load(key))
    except Exception as exc:
        barrier.abort()
        results.put(f"error: {exc!r}")
        return
    barrier.wait()
    results.put(outcome(lifecycle.start_render))
    harness.release()


def assert_missing_extra(module: str, blocked: str, extra: str) -> None:
    """Importing ``module`` without ``blocked`` installed raises ImportError naming the extra."""
    code = (
        "import sys\n"
        f"sys.modules[{blocked!r}] = None\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert f"pip install 'renderstate[{extra}]'" in out


def foreign_objects(orm: str) -> list[object]:
    """Objects an adapter for ``orm`` cannot store: plain ones and other ORMs' instances."""
    import peewee  # noqa: PLC0415 - only these tests build other ORMs' objects
    from sqlalchemy import Column, Integer, String  # noqa: PLC0415
    from sqlalchemy.orm import DeclarativeBase  # noqa: PLC0415

    class Base(DeclarativeBase):
        pass

    class SAProject(Base):
        __tablename__ = "foreign_sa"
        id = Column(Integer, primary_key=True)
        status = Column(String(20))
        output_path = Column(String(500))

    class PWProject(peewee.Model):
        status = peewee.CharField(default="DRAFT")
        output_path = peewee.CharField(null=True)

    found: list[object] = [MemoryProject(status="DRAFT")]
    if orm != "sqlalchemy":
        found.append(SAProject(id=1, status="DRAFT", output_path=None))
    if orm != "peewee":
        found.append(PWProject(id=1, status="DRAFT"))
    return found


# -------------------------------------------------------------------- the contract
class AdapterContract:
    """The behaviour every ORM adapter owes, on every database."""

    def test_five_edges(self, harness: Harness) -> None:
        """Render, complete, re-render, fail and retry each write the row and the object."""
        key = harness.insert()
        project = harness.load(key)
        lifecycle = harness.lifecycle(project)
        status, output = harness.columns["status"], harness.columns["output"]

        lifecycle.start_render()
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)
        lifecycle.complete("projects/1/final.mp4")
        assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)
        assert harness.row(key)["output"] == "projects/1/final.mp4"
        assert getattr(project, output) == "projects/1/final.mp4"
        assert lifecycle.start_render().edge.value == "re-render"
        record = lifecycle.fail(RuntimeError("boom"))
        assert record.changes == {status: harness.literal(Status.FAILED)}
        assert harness.row(key)["output"] == "projects/1/final.mp4"
        assert lifecycle.start_render().edge.value == "retry"
        assert getattr(project, status) == harness.literal(Status.PROCESSING)
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_fail_can_clear_the_output(self, harness: Harness) -> None:
        """fail(clear_output=True) stores the column's "no video" value (NULL or '')."""
        key = harness.insert(Status.PROCESSING, output="projects/1/final.mp4")
        project = harness.load(key)
        harness.lifecycle(project).fail(clear_output=True)
        assert harness.row(key)["output"] == harness.no_output
        assert getattr(project, harness.columns["output"]) == harness.no_output

    @pytest.mark.parametrize("initial", [Status.DRAFT, Status.COMPLETED, Status.FAILED])
    def test_sixteen_threads_one_winner(self, harness: Harness, initial: Status) -> None:
        """Of 16 threads with their own connections starting one render, one wins, 15 get 409."""
        for _ in range(2):
            key = harness.insert(initial)
            barrier = threading.Barrier(THREADS)

            def start(_: int, key: object = key, barrier: threading.Barrier = barrier) -> str:
                try:
                    try:
                        lifecycle = harness.lifecycle(harness.load(key))
                    except Exception as exc:
                        barrier.abort()  # the others must not wait for this thread forever
                        return f"load error: {exc!r}"
                    try:
                        barrier.wait(timeout=BARRIER_TIMEOUT)
                    except threading.BrokenBarrierError:
                        return "another racer failed"
                    return outcome(lifecycle.start_render)
                finally:
                    harness.release()

            with ThreadPoolExecutor(THREADS) as pool:
                results = list(pool.map(start, range(THREADS)))
            assert sorted(results) == ["conflict"] * (THREADS - 1) + ["won"], results
            assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_sixteen_transactions_one_winner(self, harness: Harness) -> None:
        """Of 16 threads each starting inside its own transaction, one wins, 15 get 409."""
        key = harness.insert()
        barrier = threading.Barrier(THREADS)

        def start(_: int) -> str:
            try:
                barrier.wait(timeout=BARRIER_TIMEOUT)
                with harness.transaction() as tx:
                    lifecycle = harness.lifecycle(tx.load(key), tx.adapter)
                    return outcome(lifecycle.start_render)
            finally:
                harness.release()

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(start, range(THREADS)))
        assert sorted(results) == ["conflict"] * (THREADS - 1) + ["won"], results
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_four_processes_one_winner(self, harness: Harness) -> None:
        """Of 4 processes starting one render at once, exactly one wins, the others get 409."""
        key = harness.insert(Status.COMPLETED, output="projects/1/final.mp4")
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(PROCESSES)
        results = context.Queue()
        workers = [
            context.Process(target=start_in_process, args=(harness, key, barrier, results))
            for _ in range(PROCESSES)
        ]
        for worker in workers:
            worker.start()
        outcomes = sorted(results.get(timeout=120) for _ in workers)
        for worker in workers:
            worker.join(timeout=60)
        assert outcomes == ["conflict"] * (PROCESSES - 1) + ["won"], outcomes
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_concurrent_edit_of_other_columns_survives(self, harness: Harness) -> None:
        """A title (and timeline) edited after loading survives start, complete and fail."""
        key = harness.insert()
        project = harness.load(key)
        lifecycle = harness.lifecycle(project)
        edits: dict[str, Any] = {"title": "edited meanwhile"}
        if "timeline" in harness.columns:
            edits["timeline"] = {"segments": [{"text": "new"}]}
        harness.edit(key, **edits)
        lifecycle.start_render()
        lifecycle.complete("projects/1/final.mp4")
        lifecycle.start_render()
        lifecycle.fail("boom")
        row = harness.row(key)
        assert {name: row[name] for name in edits} == edits
        assert row["status"] == harness.literal(Status.FAILED)

    def test_update_names_only_the_changed_columns(self, harness: Harness) -> None:
        """Each transition is one UPDATE naming status, complete's output, and updated_at."""
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        stamp = {harness.columns["updated_at"]} if "updated_at" in harness.columns else set()
        status, output = harness.columns["status"], harness.columns["output"]
        before = harness.row(key).get("updated_at")

        with harness.capture() as start_sql:
            lifecycle.start_render()
        with harness.capture() as complete_sql:
            lifecycle.complete("projects/1/final.mp4")
        lifecycle.start_render()
        with harness.capture() as same_path_sql:
            lifecycle.complete("projects/1/final.mp4")

        assert len(start_sql) == 1, start_sql
        assert set_columns(start_sql[0]) == {status} | stamp
        assert len(complete_sql) == 1, complete_sql
        assert set_columns(complete_sql[0]) == {status, output} | stamp
        # The path is complete()'s payload, written even when the object already holds it.
        assert set_columns(updates(same_path_sql)[0]) == {status, output} | stamp
        if stamp:
            assert harness.row(key)["updated_at"] > before

    def test_object_holds_the_written_values(self, harness: Harness) -> None:
        """After a transition the object holds what the row holds, auto-updated stamp included."""
        key = harness.insert()
        project = harness.load(key)
        harness.lifecycle(project).start_render()
        harness.lifecycle(project).complete("projects/1/final.mp4")
        row = harness.row(key)
        for logical in ("status", "output", "updated_at"):
            if logical in harness.columns:
                held = getattr(project, harness.columns[logical])
                assert utc(held) == utc(row[logical]), logical

    def test_refused_start_reads_once_and_refreshes_the_object(self, harness: Harness) -> None:
        """A start refused by the database costs at most two statements and refreshes status."""
        key = harness.insert()
        stale = harness.load(key)
        harness.lifecycle(harness.load(key)).start_render()
        with harness.capture() as sql, pytest.raises(RenderConflictError):
            harness.lifecycle(stale).start_render()
        assert len(sql) <= 2, sql
        assert getattr(stale, harness.columns["status"]) == harness.literal(Status.PROCESSING)

    def test_stale_object_is_refreshed_before_a_refusal(self, harness: Harness) -> None:
        """An object loaded before the start can still complete: the store, not it, decides."""
        key = harness.insert()
        stale = harness.load(key)
        harness.lifecycle(harness.load(key)).start_render()
        with harness.capture() as sql:
            record = harness.lifecycle(stale).complete("projects/1/final.mp4")
        assert (record.source, record.target) == (Status.PROCESSING, Status.COMPLETED)
        assert len(updates(sql)) == 1
        assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)

    def test_confirmed_refusal_refreshes_the_object(self, harness: Harness) -> None:
        """A refusal confirmed by the store costs one read, no write, and refreshes status."""
        key = harness.insert()
        stale = harness.load(key)
        harness.lifecycle(harness.load(key)).start_render()
        harness.lifecycle(harness.load(key)).fail("boom")
        with harness.capture() as sql, pytest.raises(InvalidTransitionError) as info:
            harness.lifecycle(stale).fail("late")
        assert info.value.status == "FAILED"
        assert updates(sql) == []
        assert getattr(stale, harness.columns["status"]) == harness.literal(Status.FAILED)

    def test_clearing_a_stale_output_writes_it(self, harness: Harness) -> None:
        """fail(clear_output=True) clears the row even if the object thinks it holds no video."""
        key = harness.insert(Status.PROCESSING)
        project = harness.load(key)
        harness.edit(key, output="projects/1/final.mp4")
        harness.lifecycle(project).fail(clear_output=True)
        assert harness.row(key)["output"] == harness.no_output

    @pytest.mark.parametrize("finish", ["complete", "fail"])
    def test_late_finish_changes_nothing(self, harness: Harness, finish: str) -> None:
        """A late or duplicate complete/fail raises InvalidTransitionError and writes nothing."""
        key = harness.insert(Status.PROCESSING)
        late = harness.lifecycle(harness.load(key))
        harness.lifecycle(harness.load(key)).complete("projects/1/final.mp4")
        before = harness.row(key)
        finishing = (
            (lambda: late.complete("projects/2/final.mp4"))
            if finish == "complete"
            else (lambda: late.fail("late worker"))
        )
        with pytest.raises(InvalidTransitionError) as info:
            finishing()
        assert not isinstance(info.value, RenderConflictError)
        assert info.value.status == "COMPLETED"
        assert harness.row(key) == before
        assert late.status is Status.COMPLETED

    def test_unsaved_project_is_not_found(self, harness: Harness) -> None:
        """A project that was never saved raises ProjectNotFoundError and stays DRAFT."""
        project = harness.unsaved()
        with pytest.raises(ProjectNotFoundError):
            harness.lifecycle(project).start_render()
        assert getattr(project, harness.columns["status"]) == harness.literal(Status.DRAFT)

    def test_blank_new_project_is_not_found(self, harness: Harness) -> None:
        """A never-saved object, its status default not applied yet, is not found (not unknown)."""
        project = harness.blank()
        with pytest.raises(ProjectNotFoundError):
            harness.lifecycle(project).start_render()

    def test_foreign_objects_are_a_type_error(self, harness: Harness) -> None:
        """A plain object or another ORM's object is a TypeError naming what was expected."""
        adapter = harness.adapter()
        name = type(adapter).__name__
        for project in foreign_objects(harness.orm):
            lifecycle = ProjectLifecycle(project, adapter)
            for call in (
                lifecycle.start_render,
                lambda lifecycle=lifecycle: lifecycle.project_key,
                lambda project=project: adapter.refresh_status(project, "status"),
                lambda project=project: adapter.empty_output(project, "output_path"),
            ):
                expected = f"{name} stores .*got a .*{type(project).__name__}"
                with pytest.raises(TypeError, match=expected):
                    call()
            assert project.status == "DRAFT"  # type: ignore[attr-defined]

    def test_output_path_longer_than_the_column(self, harness: Harness) -> None:
        """A path longer than the output column is InvalidOutputPathError and writes nothing."""
        key = harness.insert(Status.PROCESSING, output="projects/1/final.mp4")
        lifecycle = harness.lifecycle(harness.load(key))
        before = harness.row(key)
        too_long = "projects/" + "a" * 500 + ".mp4"
        with harness.capture() as sql, pytest.raises(InvalidOutputPathError) as info:
            lifecycle.complete(too_long)
        assert "at most 500" in info.value.reason
        assert updates(sql) == []
        assert harness.row(key) == before
        assert lifecycle.status is Status.PROCESSING
        fits = "projects/" + "a" * 487 + ".mp4"
        lifecycle.complete(fits)
        assert harness.row(key)["output"] == fits

    def test_deleted_project_is_not_found(self, harness: Harness) -> None:
        """A project whose row was deleted meanwhile raises ProjectNotFoundError with its key."""
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        harness.delete(key)
        with pytest.raises(ProjectNotFoundError) as info:
            lifecycle.start_render()
        assert info.value.project_key is not None

    def test_several_literals_read_as_one_status(self, harness: Harness) -> None:
        """An app's five statuses: QUEUED and PROCESS both PROCESSING, QUEUED written.

        The guarded UPDATE matches every literal of the source: the app's own worker moved
        the row from QUEUED to PROCESS behind the lifecycle's back, and the completion of
        the object that still holds QUEUED is written, while a second start is refused.
        """
        harness.values = five = harness.five_statuses
        queued, process = five[Status.PROCESSING]  # type: ignore[misc]
        key = harness.insert()
        harness.edit(key, status=five[Status.DRAFT])
        lifecycle = harness.lifecycle(harness.load(key))
        assert lifecycle.status is Status.DRAFT
        lifecycle.start_render()
        assert harness.row(key)["status"] == queued, "the first literal is the one written"
        harness.edit(key, status=process)
        other = harness.lifecycle(harness.load(key))
        assert other.status is Status.PROCESSING
        with pytest.raises(RenderConflictError):
            other.start_render()
        assert harness.row(key)["status"] == process, "a refused start writes nothing"
        lifecycle.complete("projects/1/final.mp4")
        assert harness.row(key)["status"] == five[Status.COMPLETED]
        assert harness.row(key)["output"] == "projects/1/final.mp4"
        harness.edit(key, status=process)
        record = harness.lifecycle(harness.load(key)).fail(RuntimeError("boom"))
        assert record.changes == {harness.columns["status"]: five[Status.FAILED]}

    def test_a_completion_writes_the_app_s_fields_in_its_own_update(self, harness: Harness) -> None:
        """complete(fields=) sets the app's other columns in the guarded UPDATE itself:
        one statement naming the status, the output and those columns, and nothing else
        the app holds (its timeline) changes."""
        title = harness.columns["title"]
        key = harness.insert(Status.PROCESSING)
        lifecycle = harness.lifecycle(harness.load(key))
        before = harness.row(key)
        with harness.capture() as sql:
            record = lifecycle.complete("projects/1/final.mp4", fields={title: "12.5 s"})
        assert record.changes[title] == "12.5 s"
        written = updates(sql)
        assert len(written) == 1, written
        assert title in set_columns(written[0])
        row = harness.row(key)
        assert row["status"] == harness.literal(Status.COMPLETED)
        assert row["title"] == "12.5 s"
        assert row["output"] == "projects/1/final.mp4"
        if "timeline" in before:
            assert row["timeline"] == before["timeline"]

    def test_a_stamp_named_in_fields_keeps_the_given_value(
        self, reference_harness: Harness
    ) -> None:
        """complete(fields={"updated_at": x}) stores x on every adapter, as for any other
        column: Django's auto_now, SQLAlchemy's onupdate and PeeweeAdapter(auto_update=)
        stamp only the transitions that do not name the column (the next one does). The
        reference model has the stamped column; the variant has none."""
        harness = reference_harness
        assert "updated_at" in harness.columns
        stamp = harness.columns["updated_at"]
        key = harness.insert(Status.PROCESSING)
        given = harness.row(key)["updated_at"] - dt.timedelta(days=400)
        project = harness.load(key)
        record = harness.lifecycle(project).complete("projects/1/f.mp4", fields={stamp: given})
        assert utc(record.changes[stamp]) == utc(given)
        assert utc(harness.row(key)["updated_at"]) == utc(given)
        assert utc(getattr(project, stamp)) == utc(given)
        harness.lifecycle(project).start_render()
        assert utc(harness.row(key)["updated_at"]) > utc(given)

    def test_a_refused_completion_writes_none_of_the_app_s_fields(self, harness: Harness) -> None:
        """A late completion (the project FAILED meanwhile) writes no field it carried."""
        title = harness.columns["title"]
        key = harness.insert(Status.PROCESSING)
        lifecycle = harness.lifecycle(harness.load(key))
        harness.edit(key, status=harness.literal(Status.FAILED))
        before = harness.row(key)
        with pytest.raises(InvalidTransitionError):
            lifecycle.complete("projects/1/late.mp4", fields={title: "late"})
        assert harness.row(key) == before

    @pytest.mark.parametrize("bad", ["unknown", "status", "output", "long", "nul"])
    def test_fields_the_model_cannot_take_are_refused_and_write_nothing(
        self, harness: Harness, bad: str
    ) -> None:
        """A typo, the status or output column itself, a text longer than its column, or
        one holding a NUL (PostgreSQL's DataError mid-transaction, stored elsewhere): a
        ValueError naming the problem and the fix, before any statement."""
        columns = harness.columns
        fields: dict[str, object] = {
            "unknown": {"durration": 12.5},
            "status": {columns["status"]: "DONE"},
            "output": {columns["output"]: "projects/x.mp4"},
            "long": {columns["title"]: "x" * 256},
            "nul": {columns["title"]: "12.5\x00s"},
        }[bad]
        key = harness.insert(Status.PROCESSING)
        lifecycle = harness.lifecycle(harness.load(key))
        before = harness.row(key)
        with (
            harness.capture() as sql,
            pytest.raises(ValueError, match="Nothing was written") as info,
        ):
            lifecycle.complete("projects/1/final.mp4", fields=fields)
        message = str(info.value)
        expected = {
            "unknown": "'durration'",
            "status": "status_field",
            "output": "output_field",
            "long": "at most 255",
            "nul": "NUL",
        }[bad]
        assert expected in message
        if bad == "unknown":
            assert columns["title"] in message, "the error lists the model's columns"
        assert updates(sql) == []
        assert harness.row(key) == before
        assert lifecycle.status is Status.PROCESSING

    def test_a_failure_writes_its_reason_to_the_app_s_error_field(self, harness: Harness) -> None:
        """error_field: fail() writes the reason in its guarded UPDATE (one statement),
        cut to the column's length; the next start empties it in its own."""
        title = harness.columns["title"]
        harness.more_options = {"error_field": title}
        key = harness.insert(Status.PROCESSING)
        lifecycle = harness.lifecycle(harness.load(key))
        with harness.capture() as sql:
            record = lifecycle.fail(RuntimeError("disk full"))
        written = updates(sql)
        assert len(written) == 1, written
        assert title in set_columns(written[0])
        assert record.changes[title] == "RuntimeError: disk full"
        row = harness.row(key)
        assert (row["status"], row["title"]) == (
            harness.literal(Status.FAILED),
            "RuntimeError: disk full",
        )
        with harness.capture() as sql:
            harness.lifecycle(harness.load(key)).start_render()
        assert len(updates(sql)) == 1
        assert harness.row(key)["title"] == "", "the column is NOT NULL: emptied as ''"
        harness.lifecycle(harness.load(key)).fail("x" * 400)
        stored = harness.row(key)["title"]
        assert len(stored) == 255
        assert stored.endswith("\u2026")

    def test_a_failure_reason_holding_a_nul_is_saved(self, harness: Harness) -> None:
        """A reason with a NUL character (an encoder's output in the message) is saved
        with the NUL spelled out: PostgreSQL refuses NUL in text, and a refused failure
        would leave the project PROCESSING after its render ended."""
        title = harness.columns["title"]
        harness.more_options = {"error_field": title}
        key = harness.insert(Status.PROCESSING)
        lifecycle = harness.lifecycle(harness.load(key))
        lifecycle.fail(RuntimeError("ffmpeg said \x00 here"))
        row = harness.row(key)
        assert (row["status"], row["title"]) == (
            harness.literal(Status.FAILED),
            "RuntimeError: ffmpeg said \\x00 here",
        )

    def test_a_refused_failure_writes_no_reason(self, harness: Harness) -> None:
        """A late fail (the project COMPLETED meanwhile) leaves the app's error column."""
        title = harness.columns["title"]
        harness.more_options = {"error_field": title}
        key = harness.insert(Status.PROCESSING)
        lifecycle = harness.lifecycle(harness.load(key))
        harness.edit(key, status=harness.literal(Status.COMPLETED))
        before = harness.row(key)
        with pytest.raises(InvalidTransitionError):
            lifecycle.fail(RuntimeError("late"))
        assert harness.row(key) == before

    def test_a_start_writes_its_task_id_to_the_app_s_column(self, harness: Harness) -> None:
        """task_id_field: start_render(task_id=) writes it in the start's own UPDATE; a
        refused start writes none; a start without a task id empties the column."""
        title = harness.columns["title"]
        harness.more_options = {"task_id_field": title}
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        with harness.capture() as sql:
            lifecycle.start_render(task_id="c0ffee-1")
        assert len(updates(sql)) == 1
        assert harness.row(key)["title"] == "c0ffee-1"
        with pytest.raises(RenderConflictError):
            harness.lifecycle(harness.load(key)).start_render(task_id="c0ffee-2")
        assert harness.row(key)["title"] == "c0ffee-1"
        lifecycle.fail("x")
        harness.lifecycle(harness.load(key)).start_render()
        assert harness.row(key)["title"] == ""

    def test_a_task_id_holding_a_nul_is_refused_and_nothing_written(self, harness: Harness) -> None:
        """task_id_field: a NUL in the task id is a ValueError naming it, on every
        database (PostgreSQL would raise its own DataError, MariaDB and SQLite store it)."""
        title = harness.columns["title"]
        harness.more_options = {"task_id_field": title}
        key = harness.insert()
        before = harness.row(key)
        lifecycle = harness.lifecycle(harness.load(key))
        with pytest.raises(ValueError, match="task_id holds a NUL"):
            lifecycle.start_render(task_id="c0ffee\x00-1")
        assert harness.row(key) == before

    @pytest.mark.parametrize("option", ["error_field", "task_id_field"])
    def test_an_app_column_the_model_lacks_is_refused_when_bound(
        self, harness: Harness, option: str
    ) -> None:
        """error_field/task_id_field naming no column (or the status column) is refused
        before any transition, naming the option."""
        key = harness.insert()
        project = harness.load(key)
        with pytest.raises(ValueError, match="'errror'"):
            ProjectLifecycle(project, harness.adapter(), **{**harness.options, option: "errror"})
        status = harness.columns["status"]
        with pytest.raises(ValueError, match=f"{option} and status_field"):
            ProjectLifecycle(project, harness.adapter(), **{**harness.options, option: status})

    @pytest.mark.parametrize("option", ["error_field", "task_id_field"])
    def test_an_app_column_holding_no_text_is_refused_when_bound(
        self, reference_harness: Harness, option: str
    ) -> None:
        """error_field/task_id_field naming an integer column is refused when the
        lifecycle is built, naming the option, the column, its type and the fix: fail()
        would hit a DataError on PostgreSQL and leave the project PROCESSING. The
        reference model's framerate is that column; the variant has no integer column
        but its status."""
        harness = reference_harness
        key = harness.insert(Status.PROCESSING)
        before = harness.row(key)
        project = harness.load(key)
        with (
            harness.capture() as sql,
            pytest.raises(ValueError, match=f"{option} 'framerate': .* of type") as info,
        ):
            ProjectLifecycle(project, harness.adapter(), **{**harness.options, option: "framerate"})
        assert "Int" in str(info.value), "the column's type is named"
        assert "name a text column" in str(info.value)
        assert updates(sql) == []
        assert harness.row(key) == before
        harness.more_options = {option: harness.columns["title"]}
        assert harness.lifecycle(project).status is Status.PROCESSING, "a text column is taken"

    def test_literals_differing_only_by_case_stay_apart(self, harness: Harness) -> None:
        """DRAFT stored as 'queued' and PROCESSING as 'QUEUED': a stale start is refused.

        MariaDB's default collation says 'queued' = 'QUEUED': a guarded UPDATE comparing
        text would let an object still holding DRAFT start the project another request
        has just moved to PROCESSING, a second render. (The variant stores integers.)
        """
        harness.values = (
            {**INTEGER_LITERALS, Status.DRAFT: 15}
            if harness.variant
            else {
                Status.DRAFT: "queued",
                Status.PROCESSING: ["QUEUED", "Queued"],
                Status.COMPLETED: "done",
                Status.FAILED: "DONE",
            }
        )
        draft, processing = (15, 20) if harness.variant else ("queued", "QUEUED")
        key = harness.insert()
        harness.edit(key, status=draft)
        stale = harness.lifecycle(harness.load(key))
        assert stale.status is Status.DRAFT
        harness.lifecycle(harness.load(key)).start_render()
        assert harness.row(key)["status"] == processing
        with pytest.raises(RenderConflictError):
            stale.start_render()
        assert harness.row(key)["status"] == processing

    def test_unknown_stored_literal(self, harness: Harness) -> None:
        """A row holding a value outside the map raises UnknownStatusError and is not written."""
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        harness.edit(key, status=harness.unknown_literal)
        with pytest.raises(UnknownStatusError):
            lifecycle.start_render()
        assert harness.row(key)["status"] == harness.unknown_literal

    def test_inside_the_callers_transaction(self, harness: Harness) -> None:
        """Inside the caller's transaction others see PROCESSING only once it commits."""
        key = harness.insert()
        with harness.transaction() as tx:
            lifecycle = harness.lifecycle(tx.load(key), tx.adapter)
            lifecycle.start_render()
            assert harness.row(key)["status"] == harness.literal(Status.DRAFT)
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_rolled_back_transaction_undoes_the_start(self, harness: Harness) -> None:
        """When the caller's transaction rolls back, the start is undone with it."""
        key = harness.insert()

        def start_then_raise() -> None:
            with harness.transaction() as tx:
                harness.lifecycle(tx.load(key), tx.adapter).start_render()
                raise LookupError

        with pytest.raises(LookupError):
            start_then_raise()
        assert harness.row(key)["status"] == harness.literal(Status.DRAFT)

    @pytest.mark.parametrize("initial", [Status.DRAFT, Status.PROCESSING])
    def test_rolled_back_transition_is_not_saved_back(
        self, harness: Harness, initial: Status
    ) -> None:
        """After the caller's transaction rolls back, a plain save() writes no phantom status.

        The row is back to DRAFT (or PROCESSING, for a rolled-back complete); an object
        still saying PROCESSING (or COMPLETED) would write it back with the title, leaving
        a project PROCESSING with no render running, refused forever with 409.
        """
        key = harness.insert(initial)
        held: list[Any] = []

        def transition_then_raise() -> None:
            with harness.transaction() as tx:
                project = tx.load(key)
                held.append(project)
                lifecycle = harness.lifecycle(project, tx.adapter)
                if initial is Status.DRAFT:
                    lifecycle.start_render()
                else:
                    lifecycle.complete("projects/1/final.mp4")
                raise LookupError

        with pytest.raises(LookupError):
            transition_then_raise()
        harness.save_title(held[0], "edited after the rollback")
        row = harness.row(key)
        assert row["status"] == harness.literal(initial)
        assert row["output"] == harness.no_output
        assert row["title"] == "edited after the rollback"
        lifecycle = harness.lifecycle(harness.load(key))
        if initial is Status.DRAFT:
            lifecycle.start_render()
        else:
            lifecycle.complete("projects/2/final.mp4")

    def test_committed_transition_survives_a_later_save(self, harness: Harness) -> None:
        """A transition whose transaction committed is kept by the next plain save()."""
        key = harness.insert()
        with harness.transaction() as tx:
            project = tx.load(key)
            harness.lifecycle(project, tx.adapter).start_render()
        harness.save_title(project, "edited after the commit")
        row = harness.row(key)
        assert row["status"] == harness.literal(Status.PROCESSING)
        assert row["title"] == "edited after the commit"

    def test_refusal_inside_a_transaction_reads_the_current_row(self, harness: Harness) -> None:
        """After a refused CAS in a transaction the verdict uses the current row, not a snapshot."""
        key = harness.insert()
        if harness.backend == "sqlite":
            # SQLite has one writer and no snapshot to go stale: edit before the transaction.
            harness.edit(key, status=harness.literal(Status.PROCESSING))
        with harness.transaction() as tx:
            project = tx.load(key)  # takes the transaction's snapshot on MariaDB
            if harness.backend != "sqlite":
                harness.edit(key, status=harness.literal(Status.PROCESSING))
            with pytest.raises(RenderConflictError):
                harness.lifecycle(project, tx.adapter).start_render()
            assert getattr(project, harness.columns["status"]) == harness.literal(Status.PROCESSING)

    @pytest.mark.parametrize("finish", ["complete", "fail"])
    def test_status_is_compared_exactly(self, harness: Harness, finish: str) -> None:
        """A stored literal that differs in case or trailing spaces is unknown; nothing is written.

        MariaDB's default collations say 'processing' = 'PROCESSING  ' = 'PROCESSING'.
        """
        near = [21] if harness.variant else ["processing", "Processing", "PROCESSING  "]
        for stored in near:
            key = harness.insert(Status.PROCESSING, output="projects/1/final.mp4")
            lifecycle = harness.lifecycle(harness.load(key))  # holds PROCESSING
            harness.edit(key, status=stored)
            before = harness.row(key)
            call = functools.partial(
                *(
                    (lifecycle.complete, "projects/2/final.mp4")
                    if finish == "complete"
                    else (lifecycle.fail, None)
                )
            )
            with pytest.raises(UnknownStatusError) as info:
                call()
            assert info.value.value == stored
            assert harness.row(key) == before
            assert before["status"] == stored

    def test_stale_starts_in_transactions_give_one_winner(self, harness: Harness) -> None:
        """Two transactions with stale copies start one render: one wins, one gets 409.

        Each copy still says PROCESSING when the row is already COMPLETED, so each re-reads
        the status before its UPDATE. A shared lock for that read made the two deadlock
        on MariaDB (and could pick an unrelated writer's UPDATE as the victim).
        """
        rounds = 1 if harness.backend == "sqlite" else 6
        for _ in range(rounds):
            key = harness.insert(Status.PROCESSING)
            if harness.backend == "sqlite":
                # One writer at a time: the transactions queue, one after the other.
                stale = [harness.load(key), harness.load(key)]
                harness.edit(key, status=harness.literal(Status.COMPLETED))
                results = []
                for copy in stale:
                    with harness.transaction() as tx:
                        results.append(outcome(harness.lifecycle(copy, tx.adapter).start_render))
                harness.edit(key, title="edited meanwhile")
            else:
                loaded = threading.Barrier(3, timeout=120)
                moved = threading.Barrier(4, timeout=120)

                def start(
                    _: int, key: object = key, loaded: Any = loaded, moved: Any = moved
                ) -> str:
                    try:
                        with harness.transaction() as tx:
                            lifecycle = harness.lifecycle(tx.load(key), tx.adapter)
                            loaded.wait()
                            moved.wait()
                            return outcome(lifecycle.start_render)
                    finally:
                        harness.release()

                def edit_title(key: object = key, moved: Any = moved) -> str:
                    moved.wait()
                    return outcome(lambda: harness.edit(key, title="edited meanwhile"))

                with ThreadPoolExecutor(3) as pool:
                    starts = [pool.submit(start, n) for n in range(2)]
                    title = pool.submit(edit_title)
                    loaded.wait()
                    harness.edit(key, status=harness.literal(Status.COMPLETED))
                    moved.wait()
                    results = [f.result(timeout=120) for f in starts]
                    assert title.result(timeout=120) == "won"
            assert sorted(results) == ["conflict", "won"], results
            row = harness.row(key)
            assert row["status"] == harness.literal(Status.PROCESSING)
            assert row["title"] == "edited meanwhile"

    def test_random_interleavings_keep_the_row_right(self, harness: Harness) -> None:
        """Random lifecycle calls mixed with direct edits leave the row as the model predicts."""
        run_state_machine_as_test(
            lambda: LifecycleMachine(harness),
            settings=settings(
                max_examples=25,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )


class AsyncAdapterContract(AdapterContract):
    """The whole contract through an async adapter, plus races written as asyncio tasks.

    The inherited tests drive the async adapter's ``apply``/``refresh_status`` through
    :class:`BlockingAdapter` (each thread's call is a task on the harness loop); the tests
    below are asyncio-native: sixteen tasks, each with its own connection.
    """

    @pytest.mark.parametrize("initial", [Status.DRAFT, Status.COMPLETED, Status.FAILED])
    def test_sixteen_tasks_one_winner(self, harness: Harness, initial: Status) -> None:
        """Of 16 asyncio tasks on separate connections awaiting astart_render, one wins."""
        assert isinstance(harness, AsyncHarness)
        key = harness.insert(initial)
        status = harness.columns["status"]

        async def race() -> list[tuple[str, object]]:
            loaded = 0
            all_loaded = asyncio.Event()

            async def start() -> tuple[str, object]:
                nonlocal loaded
                async with harness.connection_scope():
                    project = await harness.aload(key)
                    lifecycle = harness.async_lifecycle(project)
                    loaded += 1
                    if loaded == THREADS:
                        all_loaded.set()
                    await all_loaded.wait()
                    try:
                        await lifecycle.astart_render()
                    except RenderConflictError:
                        return "conflict", getattr(project, status)
                    except Exception as exc:
                        return f"error: {exc!r}", None
                    return "won", getattr(project, status)

            return list(await asyncio.gather(*(start() for _ in range(THREADS))))

        results = run(race())
        outcomes = sorted(result for result, _ in results)
        assert outcomes == ["conflict"] * (THREADS - 1) + ["won"], results
        # Every loser's object was refreshed to the winner's PROCESSING.
        assert {held for _, held in results} == {harness.literal(Status.PROCESSING)}
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_sixteen_task_transactions_one_winner(self, harness: Harness) -> None:
        """Of 16 tasks each inside its own open transaction (own connection), one wins."""
        assert isinstance(harness, AsyncHarness)
        key = harness.insert()

        async def race() -> list[str]:
            ready = 0
            go = asyncio.Event()

            async def start() -> str:
                nonlocal ready
                ready += 1
                if ready == THREADS:
                    go.set()
                # Released together, before their transactions: on SQLite the first
                # BEGIN IMMEDIATE holds the write lock until it commits.
                await go.wait()
                async with harness.async_transaction() as tx:
                    lifecycle = harness.async_lifecycle(await tx.load(key), tx.adapter)
                    try:
                        await lifecycle.astart_render()
                    except RenderConflictError:
                        return "conflict"
                    except Exception as exc:
                        return f"error: {exc!r}"
                    return "won"

            return list(await asyncio.gather(*(start() for _ in range(THREADS))))

        results = run(race())
        assert sorted(results) == ["conflict"] * (THREADS - 1) + ["won"], results
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_foreign_objects_are_a_type_error(self, harness: Harness) -> None:
        """A plain object or another ORM's object is a TypeError naming the async adapter."""
        assert isinstance(harness, AsyncHarness)
        adapter = harness.async_adapter()
        name = type(adapter).__name__
        for project in foreign_objects(harness.orm):
            lifecycle = ProjectLifecycle(project, adapter)
            for call in (
                lambda lifecycle=lifecycle: run(lifecycle.astart_render()),
                lambda lifecycle=lifecycle: lifecycle.project_key,
                lambda project=project: run(adapter.refresh_status(project, "status")),
                lambda project=project: adapter.empty_output(project, "output_path"),
            ):
                expected = f"{name} stores .*got a .*{type(project).__name__}"
                with pytest.raises(TypeError, match=expected):
                    call()
            assert project.status == "DRAFT"  # type: ignore[attr-defined]

    def test_async_lifecycle_refuses_the_sync_methods(self, harness: Harness) -> None:
        """A lifecycle over the async adapter refuses start_render() and names astart_render."""
        assert isinstance(harness, AsyncHarness)
        key = harness.insert()
        lifecycle = harness.async_lifecycle(harness.load(key))
        with pytest.raises(TypeError, match="astart_render"):
            lifecycle.start_render()
        assert harness.row(key)["status"] == harness.literal(Status.DRAFT)

    def test_refused_apply_refreshes_inside_the_async_transaction(self, harness: Harness) -> None:
        """A refusal in an open async transaction reads the current row, not its snapshot."""
        assert isinstance(harness, AsyncHarness)
        key = harness.insert()
        status = harness.columns["status"]
        if harness.backend == "sqlite":
            harness.edit(key, status=harness.literal(Status.PROCESSING))

        async def attempt() -> tuple[bool, object]:
            async with harness.async_transaction() as tx:
                project = await tx.load(key)  # takes the snapshot on MariaDB
                if harness.backend != "sqlite":
                    await asyncio.to_thread(
                        harness.edit, key, status=harness.literal(Status.PROCESSING)
                    )
                applied: bool = await tx.adapter.apply(project, harness.start_change(Status.DRAFT))
                return applied, getattr(project, status)

        assert run(attempt(), contextvars.Context()) == (
            False,
            harness.literal(Status.PROCESSING),
        )

    def test_async_apply_of_a_deleted_row_is_not_found(self, harness: Harness) -> None:
        """Awaiting apply or refresh_status on a deleted row raises ProjectNotFoundError."""
        assert isinstance(harness, AsyncHarness)
        key = harness.insert()
        project = harness.load(key)
        harness.delete(key)
        adapter = harness.async_adapter()
        with pytest.raises(ProjectNotFoundError):
            run(adapter.apply(project, harness.start_change(Status.DRAFT)))
        with pytest.raises(ProjectNotFoundError):
            run(adapter.refresh_status(project, harness.columns["status"]))


class LifecycleMachine(RuleBasedStateMachine):
    """Lifecycle calls interleaved with other writers; the row is checked after every step.

    Other writers move the status and the output under a possibly stale object; the
    database's status always decides (the core refreshes the object before refusing),
    and after every call the object holds the stored status.
    """

    def __init__(self, harness: Harness) -> None:
        super().__init__()
        self.harness = harness
        self.key: object = None
        self.expected: dict[str, Any] = {}
        self.held = Status.DRAFT

    @initialize()
    def new_project(self) -> None:
        self.key = self.harness.insert()
        self.lifecycle = self.harness.lifecycle(self.harness.load(self.key))
        self.expected = {"status": Status.DRAFT, "output": self.harness.no_output, "title": "t"}
        self.held = Status.DRAFT

    def _expect(self, trigger: Trigger, call: Callable[[], object]) -> bool:
        self.held = self.expected["status"]
        target = EDGES.get((trigger, self.held))
        if target is None:
            with pytest.raises(InvalidTransitionError):
                call()
            return False
        call()
        self.expected["status"] = self.held = target
        return True

    @rule()
    def start_render(self) -> None:
        self._expect(Trigger.START_RENDER, self.lifecycle.start_render)

    @rule(n=st.integers(0, 2))
    def complete(self, n: int) -> None:
        path = f"projects/p/{n}.mp4"
        if self._expect(Trigger.COMPLETE, lambda: self.lifecycle.complete(path)):
            self.expected["output"] = path

    @rule(clear=st.booleans())
    def fail(self, clear: bool) -> None:
        if self._expect(Trigger.FAIL, lambda: self.lifecycle.fail(clear_output=clear)) and clear:
            self.expected["output"] = self.harness.no_output

    @rule(title=st.text("abcxyz", min_size=1, max_size=8))
    def edit_title(self, title: str) -> None:
        self.harness.edit(self.key, title=title)
        self.expected["title"] = title

    @rule(n=st.integers(0, 3))
    def another_worker_edits_the_output(self, n: int) -> None:
        output = self.harness.no_output if n == 0 else f"projects/q/{n}.mp4"
        self.harness.edit(self.key, output=output)
        self.expected["output"] = output

    @rule(status=st.sampled_from(Status))
    def another_worker_moves_the_status(self, status: Status) -> None:
        self.harness.edit(self.key, status=self.harness.literal(status))
        self.expected["status"] = status

    @rule()
    def reload(self) -> None:
        self.lifecycle = self.harness.lifecycle(self.harness.load(self.key))
        self.held = self.expected["status"]

    @invariant()
    def row_matches(self) -> None:
        if self.key is None:
            return
        row = self.harness.row(self.key)
        assert row["status"] == self.harness.literal(self.expected["status"])
        assert row["output"] == self.expected["output"]
        assert row["title"] == self.expected["title"]
        assert self.lifecycle.status is self.held
