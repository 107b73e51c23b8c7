"""The ledger contract's synchronous calls, each awaited on an :class:`AsyncLedger`.

The contract (``contract.py``) is written once, in synchronous calls from its threads and
processes. :class:`AwaitedLedger` runs each of them as a coroutine of the async ledger on
the tests' one event loop (``adapters.contract.run``), where the async engines live: 16
threads starting one project are 16 tasks on that loop, each on its own connection.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from adapters.contract import run
from renderstate import RenderConflictError
from renderstate.ledger import AsyncLedger, Ledger, Recovered
from renderstate.typing import AttemptStore, ProjectLoader

from .contract import LEASE, QUEUE_TIMEOUT, LedgerHarness

T = TypeVar("T")

_INSIDE = threading.local()


class Marking:
    """An async store whose calls mark the thread they run in, while they run."""

    def __init__(self, store: Any) -> None:
        self.inner = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def run(self, call: Callable[[], T]) -> T:
        def marked() -> T:
            _INSIDE.call = True
            try:
                return call()
            finally:
                _INSIDE.call = False

        result: T = await self.inner.run(marked)
        return result


class AwaitedLedger:
    """Looks like a :class:`Ledger`; every call is the async ledger's, awaited on the loop.

    Args:
        ledger: The async ledger under test.
        store: The synchronous store on the same table, for the contract's direct reads.
        loader: The project loader that works where the async store runs the ledger.
    """

    def __init__(
        self, ledger: AsyncLedger, store: AttemptStore, loader: ProjectLoader[Any]
    ) -> None:
        self.awaited = ledger
        self.store = store
        self._sync = Ledger(
            store,
            lease=ledger.lease,
            progress_interval=ledger.progress_interval,
            queue_timeout=ledger.queue_timeout,
            clock=ledger.ledger._clock,
        )
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.awaited, name)
        if not inspect.iscoroutinefunction(found):
            return found

        def awaited(*args: Any, **kwargs: Any) -> Any:
            if getattr(_INSIDE, "call", False):
                # Called from inside a call the store runs (a log handler of the contract
                # that plays another process): that process uses the synchronous ledger.
                return getattr(self._sync, name)(*args, **kwargs)
            return run(found(*args, **kwargs))

        return awaited

    def recover(self, adapter: object, loader: object, **options: Any) -> list[Recovered]:
        """The async ledger writes projects with its store's adapter and loads with its own."""
        del adapter, loader
        return run(self.awaited.recover(self._loader, **options))


def awaited_ledger(
    store: Any, sync_store: AttemptStore, loader: ProjectLoader[Any], clock: Callable[[], float]
) -> Ledger:
    """The contract's ledger: an :class:`AsyncLedger` over ``store``, awaited per call."""
    ledger = AsyncLedger(
        Marking(store), lease=LEASE, progress_interval=1.0, queue_timeout=QUEUE_TIMEOUT, clock=clock
    )
    return cast("Ledger", AwaitedLedger(ledger, sync_store, loader))


class AwaitedHarness(LedgerHarness):
    """A ledger harness whose ledger under test is an AsyncLedger over ``async_store()``."""

    model: Any

    def async_store(self) -> Any:
        raise NotImplementedError

    def ledger(self, clock: Callable[[], float]) -> Ledger:
        store = self.async_store()
        return awaited_ledger(store, self.store(), store.loader(self.model), clock)


async def sixteen_starts(start: Callable[[], Awaitable[object]]) -> list[str]:
    """Run ``start`` in sixteen tasks at once: ``won``, or ``conflict <HTTP status>``, sorted."""

    async def one() -> str:
        try:
            await start()
        except RenderConflictError as exc:
            return f"conflict {exc.status_code}"
        return "won"

    return sorted(await asyncio.gather(*(one() for _ in range(16))))
