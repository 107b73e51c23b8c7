"""AsyncDjangoAdapter: the shared contract and the Django checks, through Django's async ORM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from renderstate.adapters.django import AsyncDjangoAdapter, DjangoAdapter

from .contract import AsyncAdapterContract, AsyncHarness, AsyncTransaction, Harness, run
from .test_django import DjangoChecks, DjangoHarness


class AsyncDjangoHarness(AsyncHarness, DjangoHarness):
    """Rows are made and read on the other writer's thread; the adapter under test is async.

    As under ASGI, where each request gets its own ORM thread, a transaction (or a task in
    :meth:`connection_scope`) runs its ORM calls in a ``ThreadSensitiveContext``: a thread,
    hence a connection, of its own. Calls outside one share asgiref's single ORM thread.
    """

    def async_adapter(self) -> AsyncDjangoAdapter:
        return AsyncDjangoAdapter()

    async def aload(self, key: object) -> Any:
        return await self.model._base_manager.using(self.alias).aget(pk=key)

    @asynccontextmanager
    async def connection_scope(self) -> AsyncIterator[object]:
        async with ThreadSensitiveContext():
            try:
                yield None
            finally:
                await sync_to_async(self._close)()

    def _close(self) -> None:
        # Looked up in the ORM thread: connections[...] is that thread's connection there.
        connections[self.alias].close()

    @asynccontextmanager
    async def async_transaction(self) -> AsyncIterator[AsyncTransaction]:
        # Django runs transactions in its ORM thread only: enter and leave atomic() there,
        # and keep every call of this transaction in that one thread.
        async with self.connection_scope():
            atomic = transaction.atomic(using=self.alias)
            await sync_to_async(atomic.__enter__)()
            try:
                yield AsyncTransaction(AsyncDjangoAdapter(), self.aload)
            except BaseException as exc:
                await sync_to_async(atomic.__exit__)(type(exc), exc, exc.__traceback__)
                raise
            await sync_to_async(atomic.__exit__)(None, None, None)

    def release(self) -> None:
        """Nothing to close here: each scope closes its own ORM thread's connection."""

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        # The queries run in asgiref's shared ORM thread: capture on its connection.
        statements: list[str] = []
        context = run(sync_to_async(lambda: CaptureQueriesContext(connections[self.alias]))())
        run(sync_to_async(context.__enter__)())
        try:
            yield statements
        finally:
            run(sync_to_async(context.__exit__)(None, None, None))
            statements.extend(query["sql"] for query in context.captured_queries)

    def save_fields(self, project: Any, fields: list[str]) -> None:
        """Save ``fields`` of ``project`` as async code does: ``asave(update_fields=...)``."""
        run(project.asave(update_fields=fields))


class TestAsyncDjangoAdapter(DjangoChecks, AsyncAdapterContract):
    harness_class = AsyncDjangoHarness

    def test_using_follows_the_sync_adapter(self, harness: Harness) -> None:
        """The alias option and the schema answers are the sync adapter's."""
        assert isinstance(harness, AsyncDjangoHarness)
        adapter = AsyncDjangoAdapter(using=harness.alias)
        assert adapter.using == harness.alias
        assert repr(adapter) == f"<AsyncDjangoAdapter using={harness.alias!r}>"
        project = harness.unsaved()
        assert adapter.project_key(project) is None
        output = harness.columns["output"]
        assert adapter.empty_output(project, output) == DjangoAdapter().empty_output(
            project, output
        )
