"""The Django attempt store for asyncio: the ledger from async views, in Django's ORM thread.

Install with ``pip install 'renderstate[django]'`` and add the ledger's app (see
:mod:`renderstate.ledger.django`). Then, in an async view::

    from renderstate.ledger import AsyncLedger
    from renderstate.ledger.django_async import AsyncDjangoAttemptStore

    ledger = AsyncLedger(AsyncDjangoAttemptStore())
    record, attempt = await ledger.start(ProjectLifecycle(project, AsyncDjangoAdapter()))

Django's transactions are synchronous: ``transaction.atomic()`` cannot be awaited. So each
ledger call runs the synchronous :class:`~renderstate.ledger.django.DjangoAttemptStore` and
:class:`~renderstate.adapters.django.DjangoAdapter` whole, in one hop to Django's ORM thread
(``sync_to_async(thread_sensitive=True)``), as Django's own async ORM methods do: the event
loop does not block, but the statements run in that thread, not on the loop.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

try:
    from asgiref.sync import sync_to_async
except ImportError as exc:  # pragma: no cover - asgiref comes with Django
    msg = (
        "renderstate.ledger.django_async needs Django; "
        "install it with: pip install 'renderstate[django]'"
    )
    raise ImportError(msg) from exc

from renderstate.adapters.django import DjangoAdapter
from renderstate.ledger.django import DjangoAttemptStore, DjangoLoader
from renderstate.typing import ProjectT

__all__ = ["AsyncDjangoAttemptStore"]

T = TypeVar("T")


class AsyncDjangoAttemptStore:
    """Keeps the attempt ledger in Django's ``renderstate_attempt`` table, for async code.

    Implements :class:`~renderstate.ledger.AsyncAttemptStore` for
    :class:`~renderstate.ledger.AsyncLedger`: each ledger call is the synchronous ledger's,
    run whole in Django's ORM thread.

    Args:
        using: The database alias of the ledger and the projects; see
            :class:`~renderstate.ledger.django.DjangoAttemptStore`.
    """

    __slots__ = ("_adapter", "_store")

    def __init__(self, using: str | None = None) -> None:
        self._store = DjangoAttemptStore(using)
        self._adapter = DjangoAdapter(using)

    def __repr__(self) -> str:
        return f"<AsyncDjangoAttemptStore using={self._store.using!r}>"

    @property
    def store(self) -> DjangoAttemptStore:
        """The synchronous store the ledger's code runs in the ORM thread."""
        return self._store

    @property
    def adapter(self) -> DjangoAdapter:
        """The synchronous adapter that writes projects inside the ledger's transactions."""
        return self._adapter

    def scope(self, project: object) -> str:
        """Return the project model's label."""
        return self._store.scope(project)

    async def run(self, call: Callable[[], T]) -> T:
        """Await ``call()``, run in Django's ORM thread (``sync_to_async``, thread-sensitive)."""
        return await sync_to_async(call, thread_sensitive=True)()

    def submit(self, call: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``call()`` now, in this thread on its own connection, as a sync ledger does."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            done.set_result(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter, as a thread would
            done.set_exception(exc)
        return done

    def loader(self, model: type[ProjectT] | str) -> DjangoLoader[ProjectT]:
        """Return a loader of ``model`` instances by key text, for :meth:`AsyncLedger.recover`."""
        return self._store.loader(model)
