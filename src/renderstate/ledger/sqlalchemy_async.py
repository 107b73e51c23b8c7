"""The SQLAlchemy attempt store for asyncio: the ledger on an ``AsyncSession``.

Install with ``pip install 'renderstate[sqlalchemy-async]'`` (and your server's async
driver: asyncpg or psycopg 3, asyncmy or aiomysql). One async engine serves both your app
and the ledger::

    from renderstate.ledger import AsyncLedger
    from renderstate.ledger.sqlalchemy import attempt_table
    from renderstate.ledger.sqlalchemy_async import AsyncSQLAlchemyAttemptStore

    attempts = attempt_table(Base.metadata)
    ledger = AsyncLedger(AsyncSQLAlchemyAttemptStore(async_sessionmaker(engine), table=attempts))
    record, attempt = await ledger.start(ProjectLifecycle(project, async_adapter))

Each call runs the synchronous :class:`~renderstate.ledger.sqlalchemy.SQLAlchemyAttemptStore`
and :class:`~renderstate.adapters.sqlalchemy.SQLAlchemyAdapter` unchanged, through
SQLAlchemy's greenlet bridge (:meth:`~sqlalchemy.ext.asyncio.AsyncSession.run_sync`): their
statements go out on the async driver, in the event loop's thread, and every wait for the
database is an ``await`` of the loop. No thread, no second engine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

try:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
    from sqlalchemy.orm import Session, sessionmaker
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        "renderstate.ledger.sqlalchemy_async needs SQLAlchemy's asyncio support; "
        "install it with: pip install 'renderstate[sqlalchemy-async]'"
    )
    raise ImportError(msg) from exc

from renderstate.adapters.sqlalchemy import SQLAlchemyAdapter
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore, SQLAlchemyLoader
from renderstate.typing import ProjectT

__all__ = ["AsyncSQLAlchemyAttemptStore", "AsyncSQLAlchemyLoader"]

T = TypeVar("T")


class AsyncSQLAlchemyAttemptStore:
    """Keeps the attempt ledger in a table, reached through an ``AsyncSession``.

    Implements :class:`~renderstate.ledger.AsyncAttemptStore` for
    :class:`~renderstate.ledger.AsyncLedger`.

    Args:
        session: An :class:`~sqlalchemy.ext.asyncio.async_sessionmaker` (each ledger call
            runs in fresh sessions of it, committed at once, exactly as the synchronous
            store with a ``sessionmaker``: share the store across the application), or an
            :class:`~sqlalchemy.ext.asyncio.AsyncSession` used as it is (its transaction
            is joined; a ledger transaction inside it is a savepoint). Never await two
            calls on one ``AsyncSession`` at once.
        table: The table from :func:`~renderstate.ledger.sqlalchemy.attempt_table`; by
            default one declared on the store's own metadata (:meth:`create_table`).

    Raises:
        TypeError: ``session`` is a synchronous ``Session`` or ``sessionmaker``.
        ValueError: ``table`` lacks ledger columns.
    """

    def __init__(
        self,
        session: AsyncSession | async_sessionmaker[AsyncSession],
        *,
        table: Table | None = None,
    ) -> None:
        if isinstance(session, AsyncSession):
            self._session: AsyncSession | None = session
            self._factory: async_sessionmaker[AsyncSession] | None = None
            sync: Session | sessionmaker[Session] = session.sync_session
        elif isinstance(session, async_sessionmaker):
            self._session = None
            self._factory = session
            # A "sessionmaker" of the synchronous Sessions inside fresh AsyncSessions: the
            # sync store and adapter use it exactly as a sessionmaker, inside run() only.
            sync = cast("sessionmaker[Session]", _SyncSessions(session))
        else:  # callers without a type checker do pass a Session or a sessionmaker
            msg = (  # type: ignore[unreachable]
                f"AsyncSQLAlchemyAttemptStore takes an AsyncSession or an async_sessionmaker, "
                f"not {type(session).__name__}; for a Session or sessionmaker use "
                f"SQLAlchemyAttemptStore"
            )
            raise TypeError(msg)
        self._store = SQLAlchemyAttemptStore(sync, table=table)
        self._adapter = SQLAlchemyAdapter(sync)
        self._sync = sync
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<AsyncSQLAlchemyAttemptStore table={self.table.name}>"

    @property
    def table(self) -> Table:
        """The ledger's table."""
        return self._store.table

    @property
    def store(self) -> SQLAlchemyAttemptStore:
        """The synchronous store the ledger's code runs, through :meth:`run` only."""
        return self._store

    @property
    def adapter(self) -> SQLAlchemyAdapter:
        """The synchronous adapter that writes projects inside the ledger's transactions."""
        return self._adapter

    def scope(self, project: Any) -> str:
        """Return the name of the table the project's class is mapped to."""
        return self._store.scope(project)

    async def run(self, call: Callable[[], T]) -> T:
        """Await ``call()``, run through SQLAlchemy's greenlet bridge on the event loop.

        Every statement ``call`` sends through :attr:`store` and :attr:`adapter` goes out
        on the async driver; its waits are awaits of the loop.
        """
        self._loop = asyncio.get_running_loop()
        if self._session is not None:
            return await self._session.run_sync(_call, call)
        assert self._factory is not None
        # A session of the factory only to enter the bridge: it never connects, the
        # sync store opens sessions of its own as it would with a sessionmaker.
        async with self._factory() as bridge:
            return await bridge.run_sync(_call, call)

    def submit(self, call: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``call()`` by :meth:`run` on the event loop, from another thread.

        The async engine's connections belong to the loop the store last ran on, so the
        call is run there (``run_coroutine_threadsafe``); wait for the future returned.

        Raises:
            RuntimeError: the store has not run on an event loop yet, that loop is closed,
                or this thread is running it (the wait would never end).
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            msg = (
                f"{self!r} has not run on a running event loop yet: threads reach the "
                "database through the loop of the async engine, so await one of its calls "
                "there first (at an app's start-up: await store.create_table())"
            )
            raise RuntimeError(msg)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            msg = (
                "a synchronous ledger call was made on the event loop that runs it, where "
                "its wait would never end: await the AsyncLedger's method instead"
            )
            raise RuntimeError(msg)
        return asyncio.run_coroutine_threadsafe(self.run(call), loop)

    async def create_table(self, bind: AsyncEngine | None = None) -> None:
        """Create the ledger's table, or add the columns it lacks; see the sync store's."""
        if bind is None:
            await self.run(self._store.create_table)
            return
        async with bind.begin() as connection:
            await connection.run_sync(self._store.create_table)

    def loader(self, model: type[ProjectT]) -> AsyncSQLAlchemyLoader[ProjectT]:
        """Return a loader of ``model`` instances by key text (recovery, a runner's jobs).

        It loads through the store's sessions: directly where the ledger's code runs
        (inside :meth:`run`), and from another thread through :meth:`submit`.
        """
        return AsyncSQLAlchemyLoader(self, SQLAlchemyLoader(model, self._sync))

    def _on_its_loop(self) -> bool:
        """Whether this thread runs the loop the store runs on (so: inside :meth:`run`)."""
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False


class AsyncSQLAlchemyLoader(Generic[ProjectT]):
    """Loads instances of one mapped class by key text, on the async store's engine.

    Called by the ledger's code inside the store's :meth:`~AsyncSQLAlchemyAttemptStore.run`
    it loads at once; called from another thread (a runner re-queueing what recovery
    failed), it hands the load to the store and waits.
    """

    def __init__(self, store: AsyncSQLAlchemyAttemptStore, inner: SQLAlchemyLoader[ProjectT]):
        self._store = store
        self._inner = inner
        self.scope = inner.scope
        """The table the model is mapped to."""

    def __call__(self, key: str, /) -> ProjectT | None:
        """Return the instance whose key text is ``key``, or ``None``."""
        if self._store._on_its_loop():
            return self._inner(key)
        return self._store.submit(functools.partial(self._inner, key)).result()


class _SyncSessions:
    """Makes the synchronous ``Session`` of a fresh ``AsyncSession``, as a sessionmaker would."""

    __slots__ = ("_factory",)

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory

    def __repr__(self) -> str:
        return f"<sessions of {self._factory!r}>"

    def __call__(self) -> Session:
        return self._factory().sync_session


def _call(_session: Session, call: Callable[[], T]) -> T:
    return call()
