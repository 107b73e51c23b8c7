"""AsyncDjangoAdapter: the shared contract through Django's async ORM, plus its signals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connections, transaction
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext

from renderstate import Status
from renderstate.adapters.django import AsyncDjangoAdapter, DjangoAdapter

from .contract import AsyncAdapterContract, AsyncHarness, AsyncTransaction, Harness, run
from .test_django import DjangoHarness


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


class TestAsyncDjangoAdapter(AsyncAdapterContract):
    harness_class = AsyncDjangoHarness

    def test_signals_are_sent_as_asave_sends_them(self, harness: Harness) -> None:
        """pre_save/post_save carry update_fields; async receivers are awaited too."""
        assert isinstance(harness, AsyncDjangoHarness)
        key = harness.insert()
        project = harness.load(key)
        seen: list[tuple[str, object]] = []

        def on_pre_save(instance: Any, update_fields: frozenset[str], **kwargs: Any) -> None:
            status = getattr(instance, harness.columns["status"])
            seen.append(("pre_save", (update_fields, status, kwargs["using"])))

        async def on_post_save(instance: Any, update_fields: frozenset[str], **kwargs: Any) -> None:
            await asyncio.sleep(0)
            details = (update_fields, kwargs["created"], instance is project)
            seen.append(("async post_save", details))

        pre_save.connect(on_pre_save, sender=harness.model, weak=False)
        post_save.connect(on_post_save, sender=harness.model, weak=False)
        try:
            harness.lifecycle(project).start_render()
        finally:
            pre_save.disconnect(on_pre_save, sender=harness.model)
            post_save.disconnect(on_post_save, sender=harness.model)
        status = harness.columns["status"]
        fields = frozenset({status} if harness.variant else {status, "updated_at"})
        assert seen == [
            ("pre_save", (fields, harness.literal(Status.PROCESSING), harness.alias)),
            ("async post_save", (fields, False, True)),
        ]

    def test_a_refused_start_sends_no_post_save(self, harness: Harness) -> None:
        """A start refused by the row sends pre_save (as save() would) but never post_save."""
        assert isinstance(harness, AsyncDjangoHarness)
        key = harness.insert(Status.PROCESSING)
        project = harness.load(key)
        setattr(project, harness.columns["status"], harness.literal(Status.DRAFT))  # stale
        sent: list[str] = []

        def on_post_save(**kwargs: Any) -> None:
            sent.append("post_save")

        post_save.connect(on_post_save, sender=harness.model, weak=False)
        try:
            adapter = harness.async_adapter()
            applied = run(adapter.apply(project, harness.start_change(Status.DRAFT)))
        finally:
            post_save.disconnect(on_post_save, sender=harness.model)
        assert applied is False
        assert sent == []
        assert getattr(project, harness.columns["status"]) == harness.literal(Status.PROCESSING)

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
