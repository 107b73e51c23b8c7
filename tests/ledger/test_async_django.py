"""AsyncLedger over AsyncDjangoAttemptStore: the ledger contract from async code, on Django.

Each call of the contract is awaited on the tests' event loop; the store runs the ledger in
Django's ORM thread. Sixteen tasks, each in its own ``ThreadSensitiveContext`` (as ASGI
gives each request), hence on its own connection, start one project.
"""

from __future__ import annotations

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connections

from adapters.contract import run
from renderstate import ProjectLifecycle, Status
from renderstate.adapters.django import AsyncDjangoAdapter
from renderstate.ledger import AsyncLedger
from renderstate.ledger.django_async import AsyncDjangoAttemptStore

from .awaited import AwaitedHarness, sixteen_starts
from .contract import Clock, LedgerContract
from .test_django import DjangoLedgerHarness


class AsyncDjangoLedgerHarness(AwaitedHarness, DjangoLedgerHarness):
    """Rows are made and read as in the sync harness; the ledger under test is async."""

    def async_store(self) -> AsyncDjangoAttemptStore:
        return AsyncDjangoAttemptStore(using=self.alias)


class TestAsyncDjangoLedger(LedgerContract):
    harness_class = AsyncDjangoLedgerHarness

    def test_sixteen_tasks_one_attempt(self, harness: AsyncDjangoLedgerHarness) -> None:
        """Sixteen asyncio tasks, each with its own ORM thread and connection, start one
        project: one wins, fifteen get RenderConflictError (409), one attempt is written."""
        key = harness.insert(Status.COMPLETED, output="projects/1/final.mp4")
        before = harness.attempts()
        ledger = AsyncLedger(harness.async_store(), clock=Clock())
        manager = harness.model._base_manager.using(harness.alias)
        connections_seen: set[int] = set()

        def close() -> None:
            connections_seen.add(id(connections[harness.alias]))
            connections[harness.alias].close()

        async def start() -> None:
            async with ThreadSensitiveContext():
                try:
                    project = await manager.aget(pk=key)
                    lifecycle = ProjectLifecycle(project, AsyncDjangoAdapter(), **harness.options)
                    await ledger.start(lifecycle, output_path="projects/1/final.mp4")
                finally:
                    await sync_to_async(close)()

        assert run(sixteen_starts(start)) == ["conflict 409"] * 15 + ["won"]
        assert len(connections_seen) == 16
        assert harness.attempts() == before + 1
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)
