"""The attempt ledger, awaited: the same :class:`Ledger`, run where async code can await it.

:class:`AsyncLedger` holds a :class:`~renderstate.ledger.Ledger` and awaits each of its
calls through an :class:`AsyncAttemptStore`, which runs the ledger's synchronous code
where its store and adapter reach the database without blocking the event loop: on an
``AsyncSession``'s connection through SQLAlchemy's greenlet bridge
(:mod:`renderstate.ledger.sqlalchemy_async`), or in Django's ORM thread
(:mod:`renderstate.ledger.django_async`). Nothing of the ledger is written twice: the same
decisions, the same statements, the same transactions and the same fencing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from renderstate._attempts import Attempt
from renderstate._layout import StatusValues
from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import TransitionRecord
from renderstate.exceptions import AttemptSupersededError
from renderstate.ledger._ledger import (
    DEFAULT_LEASE,
    DEFAULT_QUEUE_TIMEOUT,
    Ledger,
    Recovered,
)
from renderstate.ledger._renewals import Renewal, Renewed
from renderstate.ledger._threads import ThreadAdapter, ThreadLedger
from renderstate.ledger._waiting import pauses
from renderstate.typing import Adapter, AttemptStore, ProjectLoader, ProjectT

__all__ = ["AsyncAttemptStore", "AsyncLedger"]

T = TypeVar("T")


class AsyncAttemptStore(Protocol):
    """Runs the ledger's synchronous code where it can reach the database, awaited.

    What :class:`AsyncLedger` needs of an ORM: its synchronous attempt store and adapter,
    and a way to await a call that uses them. The SQLAlchemy and Django async stores
    implement it.
    """

    @property
    def store(self) -> AttemptStore:
        """The synchronous store whose statements :meth:`run` lets reach the database."""
        ...

    @property
    def adapter(self) -> Adapter[Any]:
        """The synchronous adapter that writes the projects inside :meth:`run`."""
        ...

    async def run(self, call: Callable[[], T]) -> T:
        """Await ``call()``, run where :attr:`store` and :attr:`adapter` reach the database."""
        ...

    def submit(self, call: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``call()`` as :meth:`run` runs it, from a thread that is not a loop's.

        For a runner's render and heartbeat threads, which wait for the future returned.
        """
        ...


class AsyncLedger:
    """:class:`~renderstate.ledger.Ledger` for asyncio: every call awaited, nothing else new.

    Each method awaits the :class:`Ledger` method of the same name through ``store``:
    the start and its attempt are one transaction, the ends are fenced by the attempt
    and its owner token under the same row locks, leases are on the database's clock.
    Where a lifecycle is passed, only its project and its options (fields, literals,
    observers) are used: the project's row is written by ``store``'s own adapter, on the
    connection and in the transaction of the ledger's writes.

    Args:
        store: An :class:`AsyncAttemptStore`:
            :class:`~renderstate.ledger.sqlalchemy_async.AsyncSQLAlchemyAttemptStore` or
            :class:`~renderstate.ledger.django_async.AsyncDjangoAttemptStore`.
        lease: As for :class:`Ledger`.
        progress_interval: As for :class:`Ledger`.
        queue_timeout: As for :class:`Ledger`.
        clock: As for :class:`Ledger`.

    Raises:
        TypeError: ``store`` is not an async store (a synchronous one needs a ``Ledger``).
        ValueError: ``lease``, ``progress_interval`` or ``queue_timeout`` is out of range.
    """

    def __init__(
        self,
        store: AsyncAttemptStore,
        *,
        lease: float = DEFAULT_LEASE,
        progress_interval: float | None = None,
        queue_timeout: float = DEFAULT_QUEUE_TIMEOUT,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(getattr(store, "run", None)):
            msg = (
                f"AsyncLedger takes an async attempt store (AsyncSQLAlchemyAttemptStore, "
                f"AsyncDjangoAttemptStore), not {type(store).__name__}; for a synchronous "
                f"store use Ledger"
            )
            raise TypeError(msg)
        self.store = store
        """Where the records live, and how the ledger's calls reach them."""
        self.ledger = Ledger(
            store.store,
            lease=lease,
            progress_interval=progress_interval,
            queue_timeout=queue_timeout,
            clock=clock,
        )
        """The synchronous ledger whose calls this one awaits (over ``store.store``)."""
        self.threads: Ledger = ThreadLedger(self)
        """This ledger for threads (a runner's render and heartbeat threads): each call is
        handed to the store, run where the store runs every call, and waited for."""
        self.thread_adapter: Adapter[Any] = ThreadAdapter(self)
        """The store's adapter for threads: the adapter of a runner whose render threads
        have no synchronous database connection of their own (one async engine)."""

    def __repr__(self) -> str:
        return f"<AsyncLedger store={self.store!r} lease={self.ledger.lease:g}s>"

    @property
    def lease(self) -> float:
        """Seconds an attempt stays alive after its last heartbeat."""
        return self.ledger.lease

    @property
    def progress_interval(self) -> float:
        """Minimum seconds between two progress writes of one attempt."""
        return self.ledger.progress_interval

    @property
    def queue_timeout(self) -> float:
        """Seconds a handed-off attempt may wait in a task queue for a worker."""
        return self.ledger.queue_timeout

    def now(self) -> float:
        """Return the ledger clock's current UNIX time; see :meth:`Ledger.now`."""
        return self.ledger.now()

    def scope(self, project: object) -> str:
        """Return the text naming ``project``'s kind in the ledger."""
        return self.ledger.scope(project)

    def key(self, lifecycle: ProjectLifecycle[Any]) -> tuple[str, str]:
        """Return ``(scope, key text)``; see :meth:`Ledger.key`."""
        return self.ledger.key(lifecycle)

    # ------------------------------------------------------------------ the transitions

    async def start(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        *,
        output_path: str | None = None,
        actor: str | None = None,
        owner: str | None = None,
        task_id: str | None = None,
        traceparent: str | None = None,
    ) -> tuple[TransitionRecord, Attempt]:
        """Start a render and record its attempt, as one transaction; see :meth:`Ledger.start`.

        Raises:
            RenderConflictError: a render of the project is already running (HTTP 409).
        """
        start = functools.partial(
            self.ledger.start,
            self._rebound(lifecycle),
            output_path=output_path,
            actor=actor,
            owner=owner,
            task_id=task_id,
            traceparent=traceparent,
        )
        return await self.store.run(start)

    async def hand_off(
        self,
        attempt: Attempt | int,
        *,
        executor: str | None = None,
        task_id: str | None = None,
        lifecycle: ProjectLifecycle[Any] | None = None,
    ) -> bool:
        """Say that a queued attempt now waits in a task queue; see :meth:`Ledger.hand_off`."""
        handing = functools.partial(
            self.ledger.hand_off,
            attempt,
            executor=executor,
            task_id=task_id,
            lifecycle=None if lifecycle is None else self._rebound(lifecycle),
        )
        return await self.store.run(handing)

    async def begin(
        self,
        attempt: Attempt,
        *,
        worker: str | None = None,
        cleanup: Callable[[Attempt], None] | None = None,
        owner: str | None = None,
    ) -> Attempt:
        """Make ``attempt`` this caller's render; see :meth:`Ledger.begin`.

        An attempt whose start has not committed yet is waited for here, without blocking
        the event loop, before the ledger's ``begin`` runs.

        Raises:
            AttemptOwnedError: another worker renders the attempt and renewed its lease.
            AttemptSupersededError: the attempt is no longer live (or its start never
                committed within a lease).
        """
        if await self.get(attempt.id, wait=True) is None:
            raise AttemptSupersededError(
                project_key=attempt.project_key, attempt_id=attempt.id, state=None
            )
        begin = functools.partial(
            self.ledger.begin, attempt, worker=worker, cleanup=cleanup, owner=owner
        )
        return await self.store.run(begin)

    async def heartbeat(
        self, attempt: Attempt | int, progress: Mapping[str, object] | None = None
    ) -> bool:
        """Renew a live attempt's lease and record its progress; see :meth:`Ledger.heartbeat`."""
        return await self.store.run(functools.partial(self.ledger.heartbeat, attempt, progress))

    async def renew(self, renewals: Sequence[Renewal]) -> list[Renewed]:
        """Renew many leases and their progress in one transaction; see :meth:`Ledger.renew`."""
        return await self.store.run(functools.partial(self.ledger.renew, renewals))

    async def complete(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        attempt: Attempt,
        output_path: str,
        *,
        publish: Callable[[], None] | None = None,
        fields: Mapping[str, object] | None = None,
    ) -> TransitionRecord:
        """Complete the project for ``attempt``, fenced; see :meth:`Ledger.complete`.

        ``fields``, the app's other columns, are written in the project's guarded
        ``UPDATE``, as with the ledger.

        ``publish`` runs inside the transaction, as with the ledger, and so where the
        store runs the ledger's code (on the event loop's thread for SQLAlchemy): keep it
        short, such as a rename.

        Raises:
            AttemptSupersededError: the attempt is no longer live, or another owner took it.
            InvalidTransitionError: the project is not PROCESSING.
        """
        complete = functools.partial(
            self.ledger.complete,
            self._rebound(lifecycle),
            attempt,
            output_path,
            publish=publish,
            fields=fields,
        )
        return await self.store.run(complete)

    async def fail(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        attempt: Attempt,
        error: BaseException | str | None = None,
        *,
        clear_output: bool = False,
    ) -> TransitionRecord:
        """Fail the project for ``attempt``, fenced; see :meth:`Ledger.fail`.

        Raises:
            AttemptSupersededError: the attempt is no longer live; nothing was changed.
            InvalidTransitionError: the project is not PROCESSING.
        """
        fail = functools.partial(
            self.ledger.fail,
            self._rebound(lifecycle),
            attempt,
            error,
            clear_output=clear_output,
        )
        return await self.store.run(fail)

    async def give_up(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        attempt: Attempt,
        error: BaseException | str | None,
        *,
        owner: str,
    ) -> TransitionRecord | None:
        """Fail ``attempt`` after a begin that did not complete; see :meth:`Ledger.give_up`."""
        give_up = functools.partial(
            self.ledger.give_up, self._rebound(lifecycle), attempt, error, owner=owner
        )
        return await self.store.run(give_up)

    # ------------------------------------------------------------------ recovery

    async def expired(self, *, scope: str | None = None) -> list[Attempt]:
        """Return the live attempts whose lease has expired, oldest first."""
        return await self.store.run(functools.partial(self.ledger.expired, scope=scope))

    async def recover(
        self,
        loader: ProjectLoader[ProjectT],
        *,
        cleanup: Callable[[Attempt], None] | None = None,
        status_field: str = "status",
        output_field: str = "output_path",
        values: StatusValues | None = None,
        error_field: str | None = None,
    ) -> list[Recovered]:
        """Fail exactly the projects whose live attempt's lease expired; see :meth:`Ledger.recover`.

        The projects are written through the store's own adapter.

        Args:
            loader: Loads a project by its key text, where the store runs the ledger's
                code (``store.loader(Model)``).
            cleanup: As for :meth:`Ledger.recover`.
            status_field: As for :meth:`Ledger.recover`.
            output_field: As for :meth:`Ledger.recover`.
            values: As for :meth:`Ledger.recover`.
            error_field: As for :meth:`Ledger.recover`.
        """
        recover = functools.partial(
            self.ledger.recover,
            self.store.adapter,
            loader,
            cleanup=cleanup,
            status_field=status_field,
            output_field=output_field,
            values=values,
            error_field=error_field,
        )
        return await self.store.run(recover)

    # ------------------------------------------------------------------ reading

    async def get(self, attempt_id: int, *, wait: bool = False) -> Attempt | None:
        """Return the attempt with that id, if there is one; see :meth:`Ledger.get`.

        With ``wait``, the wait for an attempt whose start has not committed yet sleeps
        on the event loop.
        """
        read = functools.partial(self.ledger.get, attempt_id)
        found = await self.store.run(read)
        if found is not None or not wait:
            return found
        for pause in pauses(self.ledger.lease):
            await asyncio.sleep(pause)
            found = await self.store.run(read)
            if found is not None:
                break
        return found

    async def current(self, scope: str, key: object) -> Attempt | None:
        """Return the project's newest attempt (live or ended), if it has one."""
        return await self.store.run(functools.partial(self.ledger.current, scope, key))

    async def history(self, scope: str, key: object, *, limit: int | None = None) -> list[Attempt]:
        """Return the project's attempts, newest first: outcome, error, actor, timings."""
        return await self.store.run(functools.partial(self.ledger.history, scope, key, limit=limit))

    async def rendering_seconds(self, scope: str, key: object) -> float:
        """Return the total seconds the project's ended attempts spent rendering."""
        return await self.store.run(functools.partial(self.ledger.rendering_seconds, scope, key))

    # ------------------------------------------------------------------ helpers

    def _rebound(self, lifecycle: ProjectLifecycle[ProjectT]) -> ProjectLifecycle[ProjectT]:
        return lifecycle._rebound(self.store.adapter)
