"""Per-project key locks: what orders the steps of one project's renders in one runner.

A submit's start and registration, a job's supersession check and what it guards (replacing
the video, saving the end) never interleave for one project; other projects never wait.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio


class _Held:
    """The state of one project's key lock (guarded by ``_KeyLocks._changed``)."""

    __slots__ = ("depth", "loop_thread", "owner", "users", "waiters")

    def __init__(self) -> None:
        self.owner: object = None
        """The holder: a thread's ident, or an asyncio task."""
        self.loop_thread: int | None = None
        """For a task holder, the thread its event loop runs in."""
        self.depth = 0
        self.users = 0
        """Holders and waiters: the entry is dropped when none is left."""
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        """Tasks waiting for the lock, woken on their own loops."""


class _KeyLocks:
    """One lock per project key, created on demand and dropped when nobody holds or wants it.

    Re-entrant for its holder, which is a thread (:meth:`hold`) or an asyncio task
    (:meth:`ahold`, which waits without blocking its event loop): a job saving its end
    publishes its video under the lock it already holds.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._locks: dict[object, _Held] = {}

    @contextlib.contextmanager
    def hold(self, key: object) -> Iterator[None]:
        owner = threading.get_ident()
        with self._changed:
            held = self._locks.setdefault(key, _Held())
            held.users += 1
            while held.owner is not None and held.owner != owner:
                if held.loop_thread == owner:
                    self._drop(key, held)
                    msg = (
                        "RenderRunner.submit() was called on an event loop while asubmit() "
                        "of the same project awaits its start on that loop: it would wait "
                        "forever; await runner.asubmit(project) instead"
                    )
                    raise RuntimeError(msg)
                self._changed.wait()
            held.owner = owner
            held.depth += 1
        try:
            yield
        finally:
            self._release(key, held)

    @contextlib.asynccontextmanager
    async def ahold(self, key: object) -> AsyncIterator[None]:
        import asyncio  # noqa: PLC0415 - only async callers pay for importing asyncio

        loop = asyncio.get_running_loop()
        owner = asyncio.current_task()
        with self._changed:
            held = self._locks.setdefault(key, _Held())
            held.users += 1
        try:
            while True:
                with self._changed:
                    if held.owner is None or held.owner is owner:
                        held.owner = owner
                        held.loop_thread = threading.get_ident()
                        held.depth += 1
                        break
                    waiter: asyncio.Future[None] = loop.create_future()
                    held.waiters.append((loop, waiter))
                try:
                    await waiter
                finally:
                    with self._changed:
                        if (loop, waiter) in held.waiters:
                            held.waiters.remove((loop, waiter))
        except BaseException:
            with self._changed:
                self._drop(key, held)
            raise
        try:
            yield
        finally:
            self._release(key, held)

    def _release(self, key: object, held: _Held) -> None:
        with self._changed:
            held.depth -= 1
            if held.depth == 0:
                held.owner = held.loop_thread = None
                waiters, held.waiters = held.waiters, []
                for loop, waiter in waiters:
                    with contextlib.suppress(RuntimeError):  # a loop closed meanwhile
                        loop.call_soon_threadsafe(_wake, waiter)
                self._changed.notify_all()
            self._drop(key, held)

    def _drop(self, key: object, held: _Held) -> None:
        # Called with _changed held.
        held.users -= 1
        if held.users == 0:
            del self._locks[key]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
