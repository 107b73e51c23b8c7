"""The heartbeat's thread lives while its runner holds attempts, and no longer.

An app that builds a runner per request (with a ledger) and drops it must not leave one
thread per request behind, each holding its ledger for the life of the process; and a
runner that went idle must renew its next render's lease all the same.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from renderstate import RenderRunner, Status
from renderstate.adapters.memory import MemoryAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.testing import FakeRenderer, MemoryProject

NAME = "renderstate-heartbeat"


def _heartbeats() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == NAME}


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (a bound that fails a hung test, not a timing)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def test_runners_built_per_request_leave_no_heartbeat_thread(tmp_path: Path) -> None:
    before = _heartbeats()
    store = MemoryAttemptStore()
    ledgers: list[weakref.ref[Ledger]] = []
    for number in range(5):
        project = MemoryProject()
        ledger = Ledger(store, lease=3.0)
        ledgers.append(weakref.ref(ledger))
        runner = RenderRunner(
            MemoryAdapter(),
            FakeRenderer(frames=4, frame_delay=0.02),
            media_root=tmp_path / str(number),
            ledger=ledger,
            loader=store.loader([project]),
        )
        job = runner.submit(project)
        # While the render runs, its lease is renewed from the heartbeat's thread.
        assert _heartbeats() - before, "no heartbeat thread while a render runs"
        assert job.wait(30) is Status.COMPLETED
        del runner, ledger, job
    gc.collect()
    _wait_for(lambda: not (_heartbeats() - before), "the dropped runners' heartbeats ended")
    gc.collect()
    assert all(ref() is None for ref in ledgers), "a dropped runner's ledger is still held"


def test_an_idle_runner_renews_its_next_render_s_lease(tmp_path: Path) -> None:
    """The thread ended while idle; the next render starts another, which renews it."""
    before = _heartbeats()
    store = MemoryAttemptStore()
    first, second = MemoryProject(), MemoryProject()
    lease = 0.6
    with RenderRunner(
        MemoryAdapter(),
        # Five leases long: without renewals the attempt is lost and the render fails.
        FakeRenderer(frames=60, frame_delay=0.05),
        media_root=tmp_path,
        ledger=Ledger(store, lease=lease),
        loader=store.loader([first, second]),
    ) as runner:
        assert runner.submit(first).wait(60) is Status.COMPLETED
        _wait_for(lambda: not (_heartbeats() - before), "the idle runner's heartbeat ended")
        job = runner.submit(second)
        assert _heartbeats() - before, "the next render started no heartbeat thread"
        assert job.wait(60) is Status.COMPLETED, job.error()
        assert second.status == "COMPLETED"
        assert job.attempt is not None
        stored = store.get(job.attempt.id)
        assert stored is not None
        assert stored.state.value == "completed"
