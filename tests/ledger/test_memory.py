"""MemoryAttemptStore: the ledger contract the SQL stores pass, on plain objects in one process."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from renderstate import Status
from renderstate.ledger.memory import MemoryAttemptStore, MemoryLoader
from renderstate.testing import MemoryAdapter, MemoryProject

from .contract import LedgerContract, LedgerHarness


class MemoryLedgerHarness(LedgerHarness):
    """Plain projects in a dict: the object is the row, so every load returns it."""

    def __init__(self) -> None:
        super().__init__(None, variant=False)  # type: ignore[arg-type]  # no database
        self._lock = threading.Lock()
        self._projects: dict[str, MemoryProject] = {}
        self._adapter = MemoryAdapter()  # one lock for every thread's compare-and-set
        self._store = MemoryAttemptStore()

    @property
    def backend(self) -> str:
        return "memory"

    def prepare(self) -> None:
        pass

    def adapter(self) -> MemoryAdapter:
        return self._adapter

    def store(self) -> MemoryAttemptStore:
        return self._store

    def loader(self) -> MemoryLoader[MemoryProject]:
        with self._lock:
            projects = list(self._projects.values())
        loader = MemoryLoader(projects, scope=self._store.scope)
        # With no project left (all deleted), a loader names no scope of its own.
        loader.scope = "MemoryProject"
        return loader

    def attempts(self) -> int:
        with self._lock:
            keys = list(self._projects)
        return sum(len(self._store.history("MemoryProject", key)) for key in keys)

    def insert(self, status: Status = Status.DRAFT, output: str | None = None) -> object:
        project = MemoryProject(title="t", status=status.value, output_path=output)
        with self._lock:
            self._projects[str(project.id)] = project
        return str(project.id)

    def load(self, key: object) -> MemoryProject:
        with self._lock:
            return self._projects[str(key)]

    def row(self, key: object) -> dict[str, Any]:
        project = self.load(key)
        return {
            "status": project.status,
            "output": project.output_path,
            "title": project.title,
            "timeline": project.timeline,
        }

    def edit(self, key: object, **values: Any) -> None:
        project = self.load(key)
        names = {"status": "status", "output": "output_path", "title": "title"}
        for name, value in values.items():
            setattr(project, names.get(name, name), value)

    def delete(self, key: object) -> None:
        with self._lock:
            self._projects.pop(str(key), None)

    def unsaved(self) -> MemoryProject:
        return MemoryProject(id=uuid.uuid4())


class TestMemoryLedger(LedgerContract):
    harness_class = MemoryLedgerHarness

    # A memory store lives in one process: the contract's cross-process races have no
    # shared store to race on (its threads' races do run).
    test_sixteen_processes_one_attempt = None  # type: ignore[assignment]
    test_fencing_across_processes = None  # type: ignore[assignment]


@pytest.fixture
def harness() -> MemoryLedgerHarness:
    """A fresh memory harness per test (no database, so no backend parameter)."""
    return MemoryLedgerHarness()
