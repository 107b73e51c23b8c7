"""The async lifecycle: a-methods, async adapters, and what the event loop sees.

The behaviours shared with the sync methods run three ways in ``tests/test_lifecycle.py``;
this file covers what only the async path has.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import renderstate.testing
from renderstate import (
    Change,
    Edge,
    InvalidTransitionError,
    ProjectLifecycle,
    RenderConflictError,
    Status,
    TransitionRecord,
)
from renderstate.adapters.memory import AsyncMemoryAdapter, MemoryAdapter
from renderstate.testing import MemoryProject, RecordingObserver


async def race(lifecycles: list[ProjectLifecycle[Any]]) -> list[TransitionRecord | BaseException]:
    return await asyncio.gather(*(lc.astart_render() for lc in lifecycles), return_exceptions=True)


def test_sixteen_tasks_racing_one_start_have_exactly_one_winner() -> None:
    """16 asyncio tasks start one project through an async adapter: one record, 15 conflicts."""
    project = MemoryProject()
    adapter = AsyncMemoryAdapter()
    recorder = RecordingObserver()
    lifecycles = [ProjectLifecycle(project, adapter, observers=[recorder]) for _ in range(16)]
    outcomes = asyncio.run(race(lifecycles))
    winners = [o for o in outcomes if isinstance(o, TransitionRecord)]
    conflicts = [o for o in outcomes if isinstance(o, RenderConflictError)]
    assert len(winners) == 1
    assert len(conflicts) == 15
    assert winners[0].edge is Edge.RENDER
    assert all(c.status_code == 409 for c in conflicts)
    assert adapter.applied == 1
    assert recorder.records == winners
    assert project.status == "PROCESSING"


def test_the_race_interleaves_the_tasks() -> None:
    """The adapter yields before its compare-and-set, so every task decided from DRAFT first."""
    project = MemoryProject()
    adapter = AsyncMemoryAdapter()
    outcomes = asyncio.run(race([ProjectLifecycle(project, adapter) for _ in range(16)]))
    # Each loser first tried DRAFT -> PROCESSING (its write refused, 16 writes in all, one
    # applied), then found PROCESSING: the 409 came from the store, not from a serial order.
    assert adapter.applied == 1
    assert adapter.refreshes == 0
    assert sum(isinstance(o, RenderConflictError) for o in outcomes) == 15


def test_sixteen_tasks_over_a_sync_adapter_have_exactly_one_winner() -> None:
    """Over a sync adapter each task's write runs in a worker thread; one still wins."""
    project = MemoryProject()
    outcomes = asyncio.run(race([ProjectLifecycle(project, MemoryAdapter()) for _ in range(16)]))
    assert sum(isinstance(o, TransitionRecord) for o in outcomes) == 1
    assert sum(isinstance(o, RenderConflictError) for o in outcomes) == 15


def test_a_sync_adapter_runs_off_the_event_loop() -> None:
    """A blocking adapter call runs in a worker thread: the loop keeps serving other tasks."""
    released = threading.Event()
    threads: list[int] = []

    class Blocking(MemoryAdapter):
        def apply(self, project: object, change: Change) -> bool:
            threads.append(threading.get_ident())
            # If this ran on the loop's thread, the task that sets the event could not run.
            if not released.wait(timeout=10):
                raise AssertionError("the event loop was blocked by the adapter")
            return super().apply(project, change)

    async def main() -> TransitionRecord:
        async def release() -> None:
            await asyncio.sleep(0.01)
            released.set()

        releaser = asyncio.create_task(release())
        record = await ProjectLifecycle(MemoryProject(), Blocking()).astart_render()
        await releaser
        threads.append(threading.get_ident())
        return record

    record = asyncio.run(main())
    assert record.target is Status.PROCESSING
    assert threads[0] != threads[1]


@pytest.mark.parametrize(
    ("call", "instead"),
    [
        (lambda lc: lc.start_render(), "await lifecycle.astart_render()"),
        (lambda lc: lc.complete("projects/1/final.mp4"), "await lifecycle.acomplete(output_path)"),
        (lambda lc: lc.fail("boom"), "await lifecycle.afail(error)"),
    ],
)
def test_sync_methods_with_an_async_adapter_name_the_method_to_await(
    call: Any, instead: str
) -> None:
    """Calling start_render() on an async adapter is a TypeError naming the a-method."""
    project = MemoryProject(status="PROCESSING", output_path="projects/1/old.mp4")
    adapter = AsyncMemoryAdapter()
    with pytest.raises(TypeError, match=r"AsyncMemoryAdapter is an async adapter") as info:
        call(ProjectLifecycle(project, adapter))
    assert instead in str(info.value)
    assert (project.status, project.output_path) == ("PROCESSING", "projects/1/old.mp4")
    assert adapter.applied == 0


def test_async_refusals_raise_the_same_errors() -> None:
    """acomplete() from DRAFT is the same InvalidTransitionError, after one refresh."""
    adapter = AsyncMemoryAdapter()
    project = MemoryProject(id=7)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransitionError, match="Project 7 is DRAFT; complete applies only"):
        asyncio.run(ProjectLifecycle(project, adapter).acomplete("projects/7/final.mp4"))
    assert (adapter.refreshes, adapter.applied) == (1, 0)


def test_an_adapter_with_an_async_apply_set_on_the_instance_is_detected() -> None:
    """Detection looks at the adapter's apply, not only at its class."""

    class Plain:
        def refresh_status(self, project: object, status_field: str) -> None: ...
        def project_key(self, project: object) -> object:
            return None

        def empty_output(self, project: object, field: str) -> str | None:
            return None

    sync_adapter = Plain()
    sync_adapter.apply = MemoryAdapter().apply  # type: ignore[attr-defined]
    async_adapter = Plain()
    async_adapter.apply = AsyncMemoryAdapter().apply  # type: ignore[attr-defined]
    ProjectLifecycle(MemoryProject(), sync_adapter).start_render()  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="astart_render"):
        ProjectLifecycle(MemoryProject(), async_adapter).start_render()  # type: ignore[arg-type]


def test_the_async_memory_adapter_is_a_shipped_test_double() -> None:
    """renderstate.testing offers the same AsyncMemoryAdapter as renderstate.adapters.memory."""
    assert renderstate.testing.AsyncMemoryAdapter is AsyncMemoryAdapter
    assert AsyncMemoryAdapter().project_key(MemoryProject(id=3)) == 3  # type: ignore[arg-type]


def test_arefresh_reads_through_an_async_adapter() -> None:
    """arefresh() awaits the adapter's two reads and returns the status; refresh() names it."""
    project = MemoryProject(status="COMPLETED")
    adapter = AsyncMemoryAdapter()
    lifecycle = ProjectLifecycle(project, adapter)
    assert asyncio.run(lifecycle.arefresh()) is Status.COMPLETED
    assert adapter.refreshes == 2
    with pytest.raises(TypeError, match=r"await lifecycle\.arefresh\(\)"):
        lifecycle.refresh()


def test_arefresh_over_a_sync_adapter_reads_in_a_worker_thread() -> None:
    """Over a sync adapter, arefresh() runs each read off the event loop's thread."""
    readers: list[int] = []

    class Store(MemoryAdapter):
        def refresh_status(self, project: object, status_field: str) -> None:
            readers.append(threading.get_ident())
            if status_field == "status":
                setattr(project, status_field, "FAILED")

    async def main() -> tuple[Status, int]:
        status = await ProjectLifecycle(MemoryProject(), Store()).arefresh()
        return status, threading.get_ident()

    status, loop_thread = asyncio.run(main())
    assert status is Status.FAILED
    assert len(readers) == 2
    assert loop_thread not in readers
