"""Many threads starting one render: exactly one wins, everyone else gets a 409."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from renderstate import ProjectLifecycle, RenderConflictError, Status
from renderstate.adapters.memory import MemoryAdapter
from renderstate.testing import MemoryProject

THREADS = 16


def race(project: MemoryProject, adapter: MemoryAdapter | None) -> list[object]:
    barrier = threading.Barrier(THREADS)

    def start() -> object:
        lifecycle = ProjectLifecycle(project, adapter)
        barrier.wait()
        try:
            return lifecycle.start_render()
        except RenderConflictError as exc:
            return exc

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda _: start(), range(THREADS)))


@pytest.mark.parametrize("rounds", [50])
@pytest.mark.parametrize("adapter", [None, MemoryAdapter()], ids=["default", "own-adapter"])
@pytest.mark.parametrize("initial", ["DRAFT", "COMPLETED", "FAILED"])
def test_sixteen_threads_one_winner(
    rounds: int, adapter: MemoryAdapter | None, initial: str
) -> None:
    """Of 16 simultaneous start_render() calls on one object, exactly one succeeds."""
    for _ in range(rounds):
        project = MemoryProject(status=initial)
        outcomes = race(project, adapter)
        winners = [o for o in outcomes if not isinstance(o, RenderConflictError)]
        conflicts = [o for o in outcomes if isinstance(o, RenderConflictError)]
        assert len(winners) == 1
        assert len(conflicts) == THREADS - 1
        assert project.status == Status.PROCESSING


def test_switching_interval_race_still_one_winner() -> None:
    """With the interpreter switching threads every microsecond, the lock still holds."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(20):
            project = MemoryProject()
            outcomes = race(project, None)
            assert sum(not isinstance(o, RenderConflictError) for o in outcomes) == 1
    finally:
        sys.setswitchinterval(old)


class YieldingProject:
    """A project whose status read gives up the GIL, like an ORM descriptor or a proxy."""

    def __init__(self) -> None:
        self._status = "DRAFT"
        self.output_path: str | None = None

    @property
    def status(self) -> str:
        value = self._status
        time.sleep(0.0005)  # another thread runs between this read and any write
        return value

    @status.setter
    def status(self, value: str) -> None:
        self._status = value


def test_one_winner_even_when_reading_the_status_yields() -> None:
    """The compare-and-set is atomic, not a read-then-write that a thread switch can split."""
    for _ in range(10):
        project = YieldingProject()
        barrier = threading.Barrier(THREADS)

        def start(project: YieldingProject = project, barrier: threading.Barrier = barrier) -> bool:
            lifecycle = ProjectLifecycle(project)
            barrier.wait()
            try:
                lifecycle.start_render()
            except RenderConflictError:
                return False
            return True

        with ThreadPoolExecutor(THREADS) as pool:
            wins = sum(pool.map(lambda _: start(), range(THREADS)))
        assert wins == 1
        assert project.status == "PROCESSING"
