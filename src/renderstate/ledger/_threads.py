"""An async ledger's thread side: a :class:`Ledger` and an adapter for render threads.

A runner's render and heartbeat threads call the ledger synchronously. With an
:class:`~renderstate.ledger.AsyncLedger`, :class:`ThreadLedger` hands each of those calls
whole to the async store (:meth:`~renderstate.ledger.AsyncAttemptStore.submit`), which
runs it where it runs every ledger call (SQLAlchemy: on the event loop, whose engine
it uses; Django: in the calling thread, on its own connection), and waits for the answer.
The ``publish`` of a completion is run in the calling thread all the same, inside the
store's transaction, which waits for it.
So an app with one async engine needs no second, synchronous one for its render threads.
"""

from __future__ import annotations

import concurrent.futures
import functools
import queue
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from renderstate._attempts import Attempt
from renderstate._fields import column_lengths, non_text_columns
from renderstate._layout import StatusValues
from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import Change, TransitionRecord
from renderstate.ledger._ledger import Ledger, Recovered, Swept
from renderstate.ledger._renewals import Renewal, Renewed
from renderstate.ledger._waiting import pauses
from renderstate.typing import Adapter, ProjectLoader, ProjectT

if TYPE_CHECKING:
    from renderstate.ledger._async import AsyncLedger

__all__ = ["ThreadAdapter", "ThreadLedger"]

T = TypeVar("T")


class ThreadLedger(Ledger):
    """The :class:`Ledger` of an :class:`AsyncLedger`, for threads: each call is handed over.

    Every method runs the async ledger's :class:`Ledger` method of the same name through
    its store's ``submit``; a lifecycle passed in is written through the store's adapter.
    """

    def __init__(self, awaited: AsyncLedger) -> None:
        inner = awaited.ledger
        super().__init__(
            inner.store,
            lease=inner.lease,
            progress_interval=inner.progress_interval,
            queue_timeout=inner.queue_timeout,
            clock=inner._clock,
        )
        self._awaited = awaited

    def __repr__(self) -> str:
        return f"<ThreadLedger of {self._awaited!r}>"

    def _wait(self, method: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return self._awaited.store.submit(functools.partial(method, *args, **kwargs)).result()

    def _rebound(self, lifecycle: ProjectLifecycle[ProjectT]) -> ProjectLifecycle[ProjectT]:
        return lifecycle._rebound(self._awaited.store.adapter)

    def start(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        *,
        output_path: str | None = None,
        actor: str | None = None,
        owner: str | None = None,
        task_id: str | None = None,
        traceparent: str | None = None,
    ) -> tuple[TransitionRecord, Attempt]:
        """See :meth:`Ledger.start`."""
        inner = self._awaited.ledger
        twin = self._rebound(lifecycle)
        return self._wait(
            inner.start,
            twin,
            output_path=output_path,
            actor=actor,
            owner=owner,
            task_id=task_id,
            traceparent=traceparent,
        )

    def hand_off(
        self,
        attempt: Attempt | int,
        *,
        executor: str | None = None,
        task_id: str | None = None,
        lifecycle: ProjectLifecycle[Any] | None = None,
    ) -> bool:
        """See :meth:`Ledger.hand_off`."""
        return self._wait(
            self._awaited.ledger.hand_off,
            attempt,
            executor=executor,
            task_id=task_id,
            lifecycle=None if lifecycle is None else self._rebound(lifecycle),
        )

    def hand_back(self, attempt: Attempt) -> Attempt | None:
        """See :meth:`Ledger.hand_back`."""
        return self._wait(self._awaited.ledger.hand_back, attempt)

    def begin(
        self,
        attempt: Attempt,
        *,
        worker: str | None = None,
        cleanup: Callable[[Attempt], None] | None = None,
        owner: str | None = None,
    ) -> Attempt:
        """See :meth:`Ledger.begin`."""
        inner = self._awaited.ledger
        return self._wait(inner.begin, attempt, worker=worker, cleanup=cleanup, owner=owner)

    def heartbeat(
        self,
        attempt: Attempt | int,
        progress: Mapping[str, object] | None = None,
        *,
        unless_cancelled: bool = False,
    ) -> bool:
        """See :meth:`Ledger.heartbeat`."""
        return self._wait(
            self._awaited.ledger.heartbeat, attempt, progress, unless_cancelled=unless_cancelled
        )

    def renew(self, renewals: Sequence[Renewal]) -> list[Renewed]:
        """See :meth:`Ledger.renew`: the whole batch is one call, one transaction."""
        return self._wait(self._awaited.ledger.renew, renewals)

    def renew_and_take_sweep_turn(
        self, renewals: Sequence[Renewal], *, executor: str, scope: str, seconds: float
    ) -> tuple[list[Renewed], bool]:
        """See :meth:`Ledger.renew_and_take_sweep_turn`: one call, one transaction."""
        return self._wait(
            self._awaited.ledger.renew_and_take_sweep_turn,
            renewals,
            executor=executor,
            scope=scope,
            seconds=seconds,
        )

    def take_sweep_turn(self, *, executor: str, scope: str, seconds: float) -> bool:
        """See :meth:`Ledger.take_sweep_turn`."""
        return self._wait(
            self._awaited.ledger.take_sweep_turn, executor=executor, scope=scope, seconds=seconds
        )

    def cancel(self, lifecycle: ProjectLifecycle[ProjectT], reason: str | None = None) -> bool:
        """See :meth:`Ledger.cancel`."""
        return self._wait(self._awaited.ledger.cancel, self._rebound(lifecycle), reason)

    def video(self, scope: str, key: object) -> str | None:
        """See :meth:`Ledger.video`."""
        return self._wait(self._awaited.ledger.video, scope, key)

    def complete(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        attempt: Attempt,
        output_path: str,
        *,
        publish: Callable[[], None] | None = None,
        fields: Mapping[str, object] | None = None,
    ) -> TransitionRecord:
        """See :meth:`Ledger.complete`."""
        inner = self._awaited.ledger
        twin = self._rebound(lifecycle)
        if publish is None:
            return self._wait(inner.complete, twin, attempt, output_path, fields=fields)
        # publish runs in this thread, which may hold what it needs (the runner's key
        # lock), while the store's call it runs inside waits for it.
        requests: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        here = threading.get_ident()

        def relayed() -> None:
            if threading.get_ident() == here:
                publish()
                return
            done: concurrent.futures.Future[None] = concurrent.futures.Future()

            def run_here() -> None:
                try:
                    publish()
                except BaseException as exc:  # noqa: BLE001 - raised in the transaction
                    done.set_exception(exc)
                else:
                    done.set_result(None)

            requests.put(run_here)
            done.result()

        call = functools.partial(
            inner.complete, twin, attempt, output_path, publish=relayed, fields=fields
        )
        ending = self._awaited.store.submit(call)
        ending.add_done_callback(lambda _: requests.put(None))
        while (request := requests.get()) is not None:
            request()
        return ending.result()

    def fail(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        attempt: Attempt,
        error: BaseException | str | None = None,
        *,
        clear_output: bool = False,
    ) -> TransitionRecord:
        """See :meth:`Ledger.fail`."""
        inner = self._awaited.ledger
        twin = self._rebound(lifecycle)
        return self._wait(inner.fail, twin, attempt, error, clear_output=clear_output)

    def give_up(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        attempt: Attempt,
        error: BaseException | str | None,
        *,
        owner: str,
    ) -> TransitionRecord | None:
        """See :meth:`Ledger.give_up`."""
        inner = self._awaited.ledger
        return self._wait(inner.give_up, self._rebound(lifecycle), attempt, error, owner=owner)

    def expired(self, *, scope: str | None = None) -> list[Attempt]:
        """See :meth:`Ledger.expired`."""
        return self._wait(self._awaited.ledger.expired, scope=scope)

    def recover(
        self,
        adapter: Adapter[ProjectT],
        loader: ProjectLoader[ProjectT],
        *,
        cleanup: Callable[[Attempt], None] | None = None,
        status_field: str = "status",
        output_field: str | None = "output_path",
        values: StatusValues | None = None,
        error_field: str | None = None,
    ) -> list[Recovered]:
        """See :meth:`Ledger.recover`; the projects are written through the store's adapter."""
        del adapter
        return self._wait(
            self._awaited.ledger.recover,
            self._awaited.store.adapter,
            loader,
            cleanup=cleanup,
            status_field=status_field,
            output_field=output_field,
            values=values,
            error_field=error_field,
        )

    def sweep(
        self,
        adapter: Adapter[ProjectT],
        loader: ProjectLoader[ProjectT],
        *,
        executor: str,
        send: Callable[[Attempt], None],
        cleanup: Callable[[Attempt], None] | None = None,
        status_field: str = "status",
        output_field: str | None = "output_path",
        values: StatusValues | None = None,
        error_field: str | None = None,
    ) -> list[Swept]:
        """See :meth:`Ledger.sweep`; the projects are written through the store's adapter."""
        del adapter
        return self._wait(
            self._awaited.ledger.sweep,
            self._awaited.store.adapter,
            loader,
            executor=executor,
            send=send,
            cleanup=cleanup,
            status_field=status_field,
            output_field=output_field,
            values=values,
            error_field=error_field,
        )

    def get(self, attempt_id: int, *, wait: bool = False) -> Attempt | None:
        """See :meth:`Ledger.get`; the wait sleeps in the calling thread."""
        read = functools.partial(self._awaited.ledger.get, attempt_id)
        found = self._wait(read)
        if found is not None or not wait:
            return found
        for pause in pauses(self.lease):
            time.sleep(pause)
            found = self._wait(read)
            if found is not None:
                break
        return found

    def current(self, scope: str, key: object) -> Attempt | None:
        """See :meth:`Ledger.current`."""
        return self._wait(self._awaited.ledger.current, scope, key)

    def history(self, scope: str, key: object, *, limit: int | None = None) -> list[Attempt]:
        """See :meth:`Ledger.history`."""
        return self._wait(self._awaited.ledger.history, scope, key, limit=limit)

    def rendering_seconds(self, scope: str, key: object) -> float:
        """See :meth:`Ledger.rendering_seconds`."""
        return self._wait(self._awaited.ledger.rendering_seconds, scope, key)


class ThreadAdapter:
    """The async store's adapter, for threads: each call handed over like a ledger call.

    For a runner whose render threads have no synchronous connection of their own (an app
    with one async engine): pass it as the runner's adapter.
    """

    __slots__ = ("_awaited",)

    def __init__(self, awaited: AsyncLedger) -> None:
        self._awaited = awaited

    def __repr__(self) -> str:
        return f"<ThreadAdapter of {self._awaited!r}>"

    def apply(self, project: object, change: Change) -> bool:
        """See :meth:`renderstate.typing.Adapter.apply`."""
        store = self._awaited.store
        return store.submit(functools.partial(store.adapter.apply, project, change)).result()

    def refresh_status(self, project: object, status_field: str) -> None:
        """See :meth:`renderstate.typing.Adapter.refresh_status`."""
        store = self._awaited.store
        refresh = functools.partial(store.adapter.refresh_status, project, status_field)
        store.submit(refresh).result()

    def project_key(self, project: object) -> object:
        """See :meth:`renderstate.typing.Adapter.project_key`."""
        return self._awaited.store.adapter.project_key(project)

    def empty_output(self, project: object, field: str) -> str | None:
        """See :meth:`renderstate.typing.Adapter.empty_output`."""
        return self._awaited.store.adapter.empty_output(project, field)

    def check_fields(self, project: object, names: Collection[str]) -> Mapping[str, int | None]:
        """See :meth:`renderstate.typing.Adapter.check_fields`."""
        return column_lengths(self._awaited.store.adapter, project, names)

    def non_text_fields(self, project: object, names: Collection[str]) -> Mapping[str, str]:
        """See :class:`renderstate.typing.Adapter`."""
        return non_text_columns(self._awaited.store.adapter, project, names)
