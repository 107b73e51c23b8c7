"""The attempt ledger: fencing, leases, shared progress and history over any AttemptStore."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, cast

from renderstate._attempts import ACTIVE_STATES, Attempt, AttemptState, DatabaseTime, encode_key
from renderstate._deciding import extra_fields
from renderstate._layout import StatusValues
from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import TransitionRecord
from renderstate.exceptions import (
    AttemptSupersededError,
    ProjectNotFoundError,
)
from renderstate.ledger._cancelling import cancel as cancel_attempt
from renderstate.ledger._checks import check_id, check_owner, is_real, plain
from renderstate.ledger._checks import check_progress as _check_progress
from renderstate.ledger._checks import check_text as _check_text
from renderstate.ledger._checks import describe as _describe
from renderstate.ledger._fencing import finish, owned_update
from renderstate.ledger._folding import ride_insert
from renderstate.ledger._owners import (
    new_owner,
    this_worker,
)
from renderstate.ledger._recovery import Recovered
from renderstate.ledger._recovery import recover as recover_expired
from renderstate.ledger._renewals import Renewal, Renewed
from renderstate.ledger._renewals import renew as renew_leases
from renderstate.ledger._requeuing import Swept
from renderstate.ledger._requeuing import hand_back as hand_back_attempt
from renderstate.ledger._requeuing import sweep as sweep_attempts
from renderstate.ledger._taking import begin as begin_attempt
from renderstate.ledger._turns import claim as claim_turn
from renderstate.ledger._turns import folds as turn_folds
from renderstate.ledger._turns import take as take_turn
from renderstate.ledger._turns import unfold as turn_unfold
from renderstate.ledger._waiting import pauses
from renderstate.typing import Adapter, AttemptStore, ProjectLoader, ProjectT

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_PROGRESS_INTERVAL",
    "DEFAULT_QUEUE_TIMEOUT",
    "Ledger",
    "Recovered",
    "Swept",
    "new_owner",
    "this_worker",
]

logger = logging.getLogger("renderstate.ledger")

DEFAULT_LEASE: Final = 30.0
"""Seconds a live attempt counts as alive after its last heartbeat."""
DEFAULT_PROGRESS_INTERVAL: Final = 1.0
"""Minimum seconds between two progress writes of one attempt."""
DEFAULT_QUEUE_TIMEOUT: Final = 6 * 3600.0
"""Seconds an attempt handed to a task queue may wait there for a worker (six hours)."""
MAX_LEASE: Final = 3600.0
MAX_QUEUE_TIMEOUT: Final = 7 * 24 * 3600.0
_QUEUED: Final = frozenset({AttemptState.QUEUED})
_SUPERSEDED: Final = "superseded by attempt {id}"
_PROGRESS_FIELDS: Final = frozenset({"phase", "done", "total", "fraction", "eta_seconds", "label"})


class Ledger:
    """One record per render attempt, in the project's own database, fencing every finish.

    Wraps an :class:`~renderstate.typing.AttemptStore` (memory, SQLAlchemy, Django,
    Peewee). With a ledger, a render's start and its attempt record are one transaction;
    its end (and the move of its video into place) applies only while the attempt is the
    project's current, live one, checked under the same row locks; a live attempt keeps a
    lease, and :meth:`recover` fails only projects whose attempt's lease expired.

    Args:
        store: Where the records live.
        lease: Seconds an attempt stays alive after its last heartbeat (at most an hour;
            default 30). The runner renews it about three times per lease.
        progress_interval: Minimum seconds between two progress writes of one attempt, so
            a render costs writes in proportion to its duration, not its frame count; by
            default 1 s, or a third of a shorter lease.
        queue_timeout: Seconds an attempt handed to a task queue (:meth:`hand_off`) may
            wait there for a worker before :meth:`recover` counts it lost (default six
            hours, at least ``lease``, at most a week). Nobody renews a queued attempt
            that sits in a broker, so its lease is this long; once a worker begins it,
            the usual ``lease`` applies.
        clock: Returns the current UNIX time, to use instead of the database's clock. By
            default (``None``) leases and the other times are written and compared with
            the database server's own clock, in the statements that write and compare
            them, so processes whose clocks differ share one time (the memory store reads
            its process's clock). Give a clock only for tests, or a database whose clock
            the stores cannot read: every process must then agree on it to well within
            ``lease``.

    Raises:
        ValueError: ``lease``, ``progress_interval`` or ``queue_timeout`` is out of range.
    """

    def __init__(
        self,
        store: AttemptStore,
        *,
        lease: float = DEFAULT_LEASE,
        progress_interval: float | None = None,
        queue_timeout: float = DEFAULT_QUEUE_TIMEOUT,
        clock: Callable[[], float] | None = None,
    ) -> None:
        # is_real first: a bool is an int to Python, a string does not compare.
        if not is_real(lease) or not 0 < lease <= MAX_LEASE:
            msg = f"lease must be a number of seconds in (0, {MAX_LEASE:g}], got {lease!r}"
            raise ValueError(msg)
        if progress_interval is None:
            progress_interval = min(DEFAULT_PROGRESS_INTERVAL, lease / 3)
        if not is_real(progress_interval) or not 0 <= progress_interval < lease:
            msg = (
                f"progress_interval must be at least 0 and shorter than the lease "
                f"({lease:g} s), got {progress_interval!r}"
            )
            raise ValueError(msg)
        if not is_real(queue_timeout) or not lease <= queue_timeout <= MAX_QUEUE_TIMEOUT:
            msg = (
                f"queue_timeout must be a number of seconds from the lease ({lease:g}) to "
                f"{MAX_QUEUE_TIMEOUT:g} (a week), got {queue_timeout!r}"
            )
            raise ValueError(msg)
        self.store = store
        """The store the records live in."""
        self.lease = float(lease)
        """Seconds an attempt stays alive after its last heartbeat."""
        self.progress_interval = float(progress_interval)
        """Minimum seconds between two progress writes of one attempt."""
        self.queue_timeout = float(queue_timeout)
        """Seconds a handed-off attempt may wait in a task queue for a worker."""
        self._clock = clock

    def __repr__(self) -> str:
        return f"<Ledger store={self.store!r} lease={self.lease:g}s>"

    def now(self) -> float:
        """Return the ledger clock's current UNIX time (this process's, without ``clock``).

        For display (elapsed times); the leases are compared by the store, on the
        database's clock unless the ledger was given one.
        """
        return time.time() if self._clock is None else self._clock()

    def _time(self) -> float | DatabaseTime:
        """Return "now" as the ledger writes it: the clock's time, else the database's."""
        return DatabaseTime() if self._clock is None else self._clock()

    # ------------------------------------------------------------------ identities

    def scope(self, project: object) -> str:
        """Return the text naming ``project``'s kind in the ledger."""
        return self.store.scope(project)

    def key(self, lifecycle: ProjectLifecycle[Any]) -> tuple[str, str]:
        """Return ``(scope, key text)``, how the ledger files ``lifecycle``'s project.

        Raises:
            ProjectNotFoundError: the project has no primary key yet.
        """
        key = lifecycle.project_key
        if key is None:
            raise ProjectNotFoundError(project_key=None)
        return self.store.scope(lifecycle.project), encode_key(key)

    # ------------------------------------------------------------------ the transitions

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
        """Start a render and record its attempt, as one transaction.

        The guarded ``start_render()`` decides; a refused start writes nothing. Any live
        attempt of the project (left by a transition made outside the ledger) is marked
        superseded. The new attempt is held under a fresh owner token (``owner``, or one
        :func:`new_owner` makes): the caller that submitted it renews it under that token
        while it waits for a worker, and :meth:`begin` gives it the worker's own.

        ``task_id``, the task system's id of the render (the Celery executor makes one
        before the start and sends the task under it), is recorded on the attempt
        (:attr:`Attempt.task_id <renderstate.ledger.Attempt.task_id>`) and, when the
        lifecycle names a ``task_id_field``, written to the app's column in the start's
        guarded ``UPDATE``. ``traceparent``, the W3C trace context of the request's span
        (the runner gives it when an OpenTelemetry SDK traces it), is recorded too: a
        render sent again by a sweep carries it (:attr:`Attempt.traceparent
        <renderstate.ledger.Attempt.traceparent>`).

        Returns:
            The transition's record and the new, queued attempt.

        Raises:
            RenderConflictError: a render of the project is already running (HTTP 409).
            ValueError: the project's key (as text), ``output_path``, ``actor``,
                ``owner`` or ``task_id`` is wider than its ledger column (255, 500, 255, 64
                and 255 characters) or contains a NUL character, or ``owner`` is empty;
                nothing was written.
            TypeError: ``output_path``, ``actor``, ``owner`` or ``task_id`` is not a
                string.
        """
        scope, key = self.key(lifecycle)
        _check_text("scope", scope)
        _check_text("project_key", key)
        _check_text("output_path", output_path)
        _check_text("actor", actor)
        _check_text("task_id", task_id)
        _check_text("traceparent", traceparent)
        check_owner(owner)
        token = owner or new_owner()
        now = self._time()
        new = Attempt(
            id=0,
            scope=scope,
            project_key=key,
            state=AttemptState.QUEUED,
            output_path=output_path,
            actor=actor,
            lease_expires_at=_written(now + self.lease),
            created_at=_written(now),
            owner=token,
            task_id=task_id,
            traceparent=traceparent,
        )
        with self._atomic(lifecycle):
            ride = ride_insert(self.store, lifecycle, new)
            if ride is None:
                record = lifecycle.start_render(task_id=task_id)
                attempt, others = self._insert(new)
            else:
                # The attempt's INSERT rides in the project's guarded UPDATE.
                with ride:
                    record = lifecycle.start_render(task_id=task_id)
                landed = ride.landed
                attempt, others = self._insert(new) if landed is None else landed
            for old in self.store.live(scope, key) if others else ():
                if old.id != attempt.id:
                    self.store.update(
                        old.id,
                        {
                            "state": AttemptState.SUPERSEDED,
                            "finished_at": now,
                            "error": _SUPERSEDED.format(id=attempt.id),
                        },
                        states=ACTIVE_STATES,
                    )
        return record, attempt

    def hand_off(
        self,
        attempt: Attempt | int,
        *,
        executor: str | None = None,
        task_id: str | None = None,
        lifecycle: ProjectLifecycle[Any] | None = None,
    ) -> bool:
        """Say that a queued attempt now waits in a task queue, where nobody renews it.

        Its lease becomes :attr:`queue_timeout` (one ``UPDATE``, only while it is still
        queued), so :meth:`recover` spares it while it waits for a worker, however long
        the queue; once a worker begins it (:meth:`begin`), the usual lease applies.

        Args:
            attempt: The attempt sent.
            executor: Which task queue it was sent to (``"celery"``, ``"celery:renders"``):
                recorded on the attempt, so that a worker of that queue can send it again
                if its owner dies (:meth:`sweep`). Recorded even when a worker began the
                attempt already.
            task_id: The task system's id of the render, for a task system that makes it
                only when the task is queued (Django's tasks framework): recorded on the
                attempt (:attr:`Attempt.task_id`) like ``executor``.
            lifecycle: The attempt's project, with the ``task_id_field`` naming the app's
                column for ``task_id``: the id is written there too, in the same
                transaction, and only while the attempt is live (recorded after its
                attempt's row is, so an attempt that ended or was superseded meanwhile,
                whose project another start may have given its own id, writes nothing)
                and the project PROCESSING.

        Returns:
            Whether the attempt was still queued (``False``: a worker already began it,
            or it ended; its lease was left as it was).

        Raises:
            ValueError: ``executor`` or ``task_id`` is empty, wider than 255 characters
                (or than the app's ``task_id_field`` with ``lifecycle``) or holds a NUL;
                nothing was written.
        """
        _check_text("executor", executor)
        _check_text("task_id", task_id)
        for name, given in (("executor", executor), ("task_id", task_id)):
            if given == "":
                # '' is neither a queue a sweep could send it to again nor "no queue":
                # no sweep would ever requeue or fail the attempt.
                msg = (
                    f"hand_off({name}='') names nothing; give its name (for example "
                    f"{'celery' if name == 'executor' else 'the task id'!r}) or leave it None"
                )
                raise ValueError(msg)
        attempt_id = attempt if isinstance(attempt, int) else attempt.id
        labels: dict[str, object] = {}
        if executor is not None:
            labels["executor"] = executor
        if task_id is not None:
            labels["task_id"] = task_id
        values: dict[str, object] = {
            "lease_expires_at": self._time() + self.queue_timeout,
            **labels,
        }
        if task_id is None or lifecycle is None or not lifecycle._names_task_id:
            return self._hand_off(attempt_id, values, labels)[0]
        column = lifecycle._task_id_value(task_id)  # refused before anything is written
        with self._atomic(lifecycle):
            # The attempt's row first, as every fenced write: only a live attempt's id
            # goes to the app's column.
            queued, live = self._hand_off(attempt_id, values, labels)
            if live:
                lifecycle._write_task_id(column)
        return queued

    def _hand_off(
        self, attempt_id: int, values: Mapping[str, object], labels: Mapping[str, object]
    ) -> tuple[bool, bool]:
        """Write :meth:`hand_off`'s values; whether the attempt was queued, and live."""
        if self.store.update(attempt_id, values, states=_QUEUED):
            return True, True
        # A fast worker began it before this: the labels are recorded all the same.
        live = bool(labels) and self.store.update(attempt_id, labels, states=ACTIVE_STATES)
        return False, bool(live)

    def hand_back(self, attempt: Attempt) -> Attempt | None:
        """Give the caller's rendering attempt back to the queue, for another worker.

        What a worker does on a warm shutdown with a render it cannot finish in time: one
        ``UPDATE``, fenced by the caller's owner token (and only while nobody asked the
        attempt to cancel), takes it back to ``queued`` under a fresh owner token, its
        progress back at 0 and a lease of one :attr:`lease`. The project stays
        PROCESSING. The caller then sends it again (and :meth:`hand_off` it), or leaves
        it: once that lease has run out, a worker's :meth:`sweep` sends it again.

        Returns:
            The attempt as queued again; ``None`` if it was not the caller's any more
            (taken over, ended) or someone asked it to cancel: nothing was written.
        """
        return hand_back_attempt(self, attempt)

    def begin(
        self,
        attempt: Attempt,
        *,
        worker: str | None = None,
        cleanup: Callable[[Attempt], None] | None = None,
        owner: str | None = None,
    ) -> Attempt:
        """Make ``attempt`` this caller's render, rendering with a fresh lease and owner token.

        One process renders an attempt at a time. ``begin`` takes a queued attempt, or a
        rendering one whose lease has expired (its worker died or stopped renewing it; a
        task queue delivered the job again), each with one conditional ``UPDATE``. A
        rendering attempt whose lease is live belongs to a worker that is alive: the
        second ``begin`` is refused with :class:`~renderstate.AttemptOwnedError` and
        writes nothing.

        An attempt that is not in the ledger yet was started inside a transaction that
        has not committed (``runner.submit()`` in a view under ``ATOMIC_REQUESTS``: on
        PostgreSQL another connection sees no row, where MySQL and SQLite make the
        ``UPDATE`` wait): ``begin`` waits for it, up to one lease.

        Args:
            attempt: The attempt to render.
            worker: How the ledger names this process; by default :func:`this_worker`.
                For people to read: what fences the attempt from here on is the owner
                token of the attempt returned.
            cleanup: Called with the previous owner's record when ``begin`` takes over an
                attempt whose owner is really gone (a process of this machine that no
                longer exists, or a job of this very process that no longer holds it), to
                remove what it left before this render writes its own. An owner that may
                still be alive (a stalled runner in this process, another machine) keeps
                its files: its own end removes them. Its errors are logged, never raised.
            owner: The owner token to record; by default a fresh :func:`new_owner`. Pass
                one made beforehand to know it even when ``begin`` fails midway (a store
                error after its ``UPDATE`` committed): see :meth:`give_up`.

        Raises:
            AttemptOwnedError: another worker renders the attempt and renewed its lease;
                nothing was written. Its ``retry_after`` says when that lease runs out.
            AttemptSupersededError: the attempt is no longer live (or its start never
                committed within a lease).
            ValueError: ``owner`` is empty, too long or holds a NUL; nothing was written.
        """
        return begin_attempt(self, attempt, worker=worker, cleanup=cleanup, owner=owner)

    def heartbeat(
        self,
        attempt: Attempt | int,
        progress: Mapping[str, object] | None = None,
        *,
        unless_cancelled: bool = False,
    ) -> bool:
        """Renew a live attempt's lease, and record its progress if given.

        ``progress`` holds any of ``phase``, ``done``, ``total``, ``fraction``,
        ``eta_seconds`` and ``label`` (the renderer's description of the phase, or
        ``None``). One ``UPDATE`` by primary key.

        With ``unless_cancelled``, the same ``UPDATE`` matches only while nobody asked
        the attempt to cancel (:meth:`cancel`): ``False`` may then mean a cancel request,
        which :meth:`get` tells (``cancel_requested``); renew without it to keep the
        lease while the render stops. What the runner's heartbeat does: a render sees a
        request from any process at its next heartbeat, at no cost to the others.

        Returns:
            Whether the attempt is still live and, given as :meth:`start` or
            :meth:`begin` returned it, still held under its owner token (``False``: stop,
            it was superseded, recovered or taken over by another owner, and nothing was
            written). A bare id renews whoever holds the attempt.

        Raises:
            ValueError: ``progress`` has an unknown field or a value no store holds (a
                ``fraction`` outside 0..1 or not finite, a ``done``/``total`` outside
                0..2**31 - 1, an ``eta_seconds`` that is negative or not finite, a
                ``phase`` empty, longer than 32 characters or holding a NUL, a ``label``
                that is not text or ``None``, longer than 255 characters or holding a
                NUL), or the bare
                id is not a positive 64-bit integer; nothing was written.
        """
        if isinstance(attempt, int):
            check_id(attempt)
        values: dict[str, object] = {"lease_expires_at": self._time() + self.lease}
        if progress:
            unknown = set(progress) - _PROGRESS_FIELDS
            if unknown:
                msg = (
                    f"heartbeat progress has unknown fields {sorted(unknown)}; use "
                    f"{sorted(_PROGRESS_FIELDS)}"
                )
                raise ValueError(msg)
            _check_progress(progress)
            values.update({name: plain(value) for name, value in progress.items()})
        return owned_update(self.store, attempt, values, uncancelled=unless_cancelled)

    def renew(self, renewals: Sequence[Renewal]) -> list[Renewed]:
        """Renew many live attempts' leases and record their progress, in one transaction.

        What a worker's heartbeat sends once per tick for every render it holds: one
        transaction (per 50 renewals), with one set-based ``UPDATE`` that
        renews each lease still held under its owner token (and nobody asked to cancel,
        for a :class:`Renewal` with ``unless_cancelled``) and writes the progress given
        with it. Each renewal is fenced exactly as :meth:`heartbeat` fences it. A row that
        another transaction holds locked (a completion or a cancel under way) is skipped
        rather than waited for, on PostgreSQL and MySQL/MariaDB (``SKIP LOCKED``): a
        blocked row delays nothing but itself. SQLite locks the whole database, so there
        the transaction waits as any write does. More than 50 renewals are sent 50 per
        transaction: each is a term of the statement, which a database parses only so deep.

        Returns:
            One :class:`Renewed` per renewal, in order: ``RENEWED``, ``CANCEL_REQUESTED``
            (nothing written: renew it without ``unless_cancelled`` to keep the lease while
            the render stops), ``LOST`` (stop: superseded, recovered or taken over) or
            ``SKIPPED`` (nothing written, renew it again at the next tick), with the
            attempt as stored then.

        Raises:
            ValueError: a renewal's progress has an unknown field or a value no store
                holds (as :meth:`heartbeat` says), or a bare id is not a positive 64-bit
                integer; the message names the renewal, and nothing was written.
            TypeError: an item is not a :class:`Renewal`; nothing was written.
        """
        return renew_leases(self, renewals)[0]

    def renew_and_take_sweep_turn(
        self, renewals: Sequence[Renewal], *, executor: str, scope: str, seconds: float
    ) -> tuple[list[Renewed], bool]:
        """:meth:`renew`, and :meth:`take_sweep_turn` in the same transaction.

        A worker that renews its leases anyway asks for the fleet's sweep turn at no extra
        round trip: the turn's one conditional ``UPDATE`` is the transaction's last
        statement, so its row is locked only until the commit that follows at once. Until
        the turn was once asked for alone without an error on this ledger's store (its
        table is there), or with a store that cannot, or with no renewal to send, the
        two are sent one after the other.

        Returns:
            What :meth:`renew` returns, and whether this process has the turn.

        Raises:
            ValueError: as :meth:`renew` and :meth:`take_sweep_turn` say.
            TypeError: as :meth:`renew` says.
        """
        if not is_real(seconds) or not seconds > 0:
            msg = f"seconds must be a positive number, got {seconds!r}"
            raise ValueError(msg)
        if not renewals or not turn_folds(self):
            renewed = self.renew(renewals)
            return renewed, self.take_sweep_turn(executor=executor, scope=scope, seconds=seconds)
        try:
            renewed, won = renew_leases(self, renewals, claim_turn(self, executor, scope, seconds))
        except Exception:
            turn_unfold(self)  # whatever failed, the next claims go alone until one works
            raise
        if won is None:  # nothing was sent (every token a stranger's): ask alone
            won = self.take_sweep_turn(executor=executor, scope=scope, seconds=seconds)
        return renewed, won

    def complete(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        attempt: Attempt,
        output_path: str,
        *,
        publish: Callable[[], None] | None = None,
        fields: Mapping[str, object] | None = None,
    ) -> TransitionRecord:
        """Complete the project for ``attempt``, fenced: only while it is the live attempt.

        The attempt's record and the project's row are written in one transaction (the
        attempt's row first, then the guarded ``UPDATE`` of the project). ``publish``,
        typically the rename of the finished file over the final video, runs inside it,
        after both writes matched and before the commit: a late attempt never replaces
        the current attempt's video, and a failing ``publish`` undoes both writes.

        ``fields`` are other columns of the app's model (``{"duration": 12.5,
        "metadata": {...}}``), written in the project's guarded ``UPDATE`` itself: an
        attempt that is no longer live writes none of them. Their names are checked
        before anything is written.

        Once someone asked the attempt to cancel (:meth:`cancel`, from any process), its
        completion is refused: nothing is written and ``publish`` does not run.

        Raises:
            RenderCancelledError: someone asked the attempt to cancel; nothing was
                changed, and the attempt is still the caller's to :meth:`fail` (as
                cancelled).
            AttemptSupersededError: the attempt is no longer live, or another worker took
                it over from the one that began it; nothing was changed.
            InvalidTransitionError: the project is not PROCESSING (it was moved outside
                the ledger); the attempt is then marked interrupted.
            ValueError: ``fields`` names no column of the model, or its status or output
                column; nothing was written.
        """
        extra = extra_fields(lifecycle, fields)
        now = self._time()
        values: dict[str, object] = {
            "state": AttemptState.COMPLETED,
            "finished_at": now,
            "phase": "done",
            "fraction": 1.0,
            "eta_seconds": 0.0,
            "output_path": output_path,
        }
        return finish(
            self,
            lifecycle,
            attempt,
            values,
            transition=lambda: lifecycle.complete(output_path, fields=extra),
            publish=publish,
            uncancelled=True,
        )

    def fail(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        attempt: Attempt,
        error: BaseException | str | None = None,
        *,
        clear_output: bool = False,
    ) -> TransitionRecord:
        """Fail the project for ``attempt``, fenced like :meth:`complete`.

        Raises:
            AttemptSupersededError: the attempt is no longer live; nothing was changed.
            InvalidTransitionError: the project is not PROCESSING.
        """
        values: dict[str, object] = {
            "state": AttemptState.FAILED,
            "finished_at": self._time(),
            "phase": "failed",
            "error": _describe(error),
        }
        return finish(
            self,
            lifecycle,
            attempt,
            values,
            transition=lambda: lifecycle.fail(error, clear_output=clear_output),
            publish=None,
        )

    def give_up(
        self,
        lifecycle: ProjectLifecycle[ProjectT],
        attempt: Attempt,
        error: BaseException | str | None,
        *,
        owner: str,
    ) -> TransitionRecord | None:
        """Fail ``attempt`` after a :meth:`begin` under ``owner`` that did not complete.

        A begin that raised (a store error, a lock wait timeout) may or may not have
        taken the attempt. This fails it only where that changes nothing the caller does
        not own: while it is held under ``owner`` (the begin did take it), or still
        queued (nobody did) where no task queue holds it (a thread executor's: nobody else
        would render it). An attempt another worker holds, one that has ended, or one a
        task queue holds (recorded by :meth:`hand_off`: another delivery of it, or a
        worker's :meth:`sweep` once its lease runs out, renders it) is left alone and
        ``None`` is returned: the caller saves nothing.

        Returns:
            The project's move to FAILED, or ``None`` if the attempt was not the caller's
            to fail.

        Raises:
            InvalidTransitionError: the project is not PROCESSING.
            TypeError: ``owner`` is not a string (``None`` would fence nothing, and fail
                whoever holds the attempt); nothing was written.
            ValueError: ``owner`` is empty, too long or holds a NUL; nothing was written.
        """
        check_owner(owner, required=True)
        values: dict[str, object] = {
            "state": AttemptState.FAILED,
            "finished_at": self._time(),
            "phase": "failed",
            "error": _describe(error),
        }
        mine = dataclasses.replace(attempt, owner=owner)

        def fence() -> bool:
            if self._owned_update(mine, values):
                return True
            seen = self.store.get(attempt.id)
            if seen is None or seen.state is not AttemptState.QUEUED or seen.executor:
                return False
            # Fenced by the token it is queued under as seen: not one a sweep gave it since.
            return self.store.update(attempt.id, values, states=_QUEUED, owner=seen.owner)

        try:
            return finish(
                self,
                lifecycle,
                mine,
                values,
                transition=lambda: lifecycle.fail(error),
                publish=None,
                fence=fence,
            )
        except AttemptSupersededError:
            return None

    def cancel(self, lifecycle: ProjectLifecycle[ProjectT], reason: str | None = None) -> bool:
        """Ask the project's live attempt to stop, from any process.

        A queued attempt (no worker has begun it, for example one waiting in a task
        queue) is failed at once with its project, as a
        :class:`~renderstate.RenderCancelledError`, by one conditional ``UPDATE`` that
        matches only while it is still queued (a worker that receives it later renders
        nothing). A rendering one gets the request recorded on its row
        (``cancel_requested_at``, ``cancel_reason``): its owner, in whatever process,
        sees it at its next heartbeat, stops at its next progress report and ends FAILED
        as cancelled, its temporary files removed and the previous video untouched. Its
        completion is refused from the moment the request is recorded, so a request
        recorded is a render that ends cancelled.

        Args:
            lifecycle: The project's lifecycle (the queued case fails it).
            reason: Kept in the error (default ``"cancelled"``).

        Returns:
            Whether a live attempt was asked to stop (``False``: the project has none).

        Raises:
            TypeError: ``reason`` is not a string, or the store's ``update`` takes no
                ``uncancelled`` (a store written for an earlier version).
        """
        return cancel_attempt(self, lifecycle, reason)

    # ------------------------------------------------------------------ recovery

    def expired(self, *, scope: str | None = None) -> list[Attempt]:
        """Return the live attempts whose lease has expired, oldest first."""
        return self.store.expired(self._time(), scope=scope)

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
        """Fail exactly the projects whose live attempt's lease has expired.

        Safe at any time, in any process, while others render: a render that is alive
        renews its lease, and each candidate is re-checked (state and lease) under its
        row lock in the same transaction that fails the project. The attempt becomes
        ``interrupted``; the project, if still PROCESSING, FAILED with that reason.

        Args:
            adapter: The project's adapter.
            loader: Loads a project by its key text; its ``scope`` limits the search.
            cleanup: Called for each recovered attempt that ran on this machine (or never
                began), to remove its temporary files there: inside the transaction that
                fails the project, before it commits, so no newer attempt of the project
                can have started (and created its own temporary file) yet. Its errors are
                logged, never raised.
            status_field: Passed to each :class:`~renderstate.ProjectLifecycle`.
            output_field: Passed to each :class:`~renderstate.ProjectLifecycle`.
            values: Passed to each :class:`~renderstate.ProjectLifecycle`.
            error_field: Passed to each :class:`~renderstate.ProjectLifecycle`: the app's
                column that gets the reason of each project failed.
        """
        return recover_expired(
            self,
            adapter,
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
        """Requeue the live attempts whose owner is gone, or fail those nobody can requeue.

        What each task-queue worker runs every so often (the Celery integration every
        half lease), so that a dead worker's render resumes on another within about one
        and a half leases, whatever the broker's redelivery delay. Set-based: one query
        lists the loader's scope's live attempts that missed a renewal; of those, each
        whose lease expired, or whose owner is a process of this machine that is gone,
        is

        - requeued if it was handed to ``executor``'s task queue (:meth:`hand_off` with
          ``executor="celery"`` or ``"celery:<queue>"``): taken back to ``queued`` under
          a fresh owner token (one ``UPDATE`` fenced by the old token and the expired
          lease, so of many workers sweeping at once exactly one acts), the files its
          owner left on this machine removed (``cleanup``, only if that owner is known
          gone), then given to ``send``, which sends it again (a failed send is logged and
          retried at the next sweep, a lease later), then handed off;
        - failed with its project, as :meth:`recover` fails it, if no task queue holds it
          (it ran in its own process's executor, which is gone) or its owner was asked
          to cancel;
        - left alone if another task system queued it: that system's workers sweep it.

        Args:
            adapter: The project's adapter.
            loader: Loads a project by its key text; its ``scope`` limits the search.
            executor: The task system this worker belongs to (``"celery"``).
            send: Sends a requeued attempt to its task queue again.
            cleanup: Removes the temporary files of an attempt whose owner is gone.
            status_field: Passed to each :class:`~renderstate.ProjectLifecycle`.
            output_field: Passed to each :class:`~renderstate.ProjectLifecycle`.
            values: Passed to each :class:`~renderstate.ProjectLifecycle`.
            error_field: Passed to each :class:`~renderstate.ProjectLifecycle`.

        Returns:
            What was done, one :class:`Swept` per attempt requeued or failed.

        Raises:
            ValueError: ``executor`` is empty or wider than its column.
        """
        return sweep_attempts(
            self,
            adapter,
            loader,
            executor=executor,
            send=send,
            cleanup=cleanup,
            options={
                "status_field": status_field,
                "output_field": output_field,
                "values": values,
                "error_field": error_field,
            },
        )

    def take_sweep_turn(self, *, executor: str, scope: str, seconds: float) -> bool:
        """Take the fleet's turn to sweep ``scope``'s attempts for ``executor``, if it is free.

        One conditional ``UPDATE`` of one row (the turns' table beside the ledger's, on
        the database's clock): of every process asking at once exactly one gets the
        turn, and nobody else gets it for ``seconds``, so a fleet whose processes each
        sweep every ``seconds`` runs one :meth:`sweep` per interval in all, not one per
        process. The turn is not renewed and never waits for its holder: it expires after
        ``seconds`` even if its holder died. A store without turns (one written for an
        earlier version), or a database whose turns' table is missing, answers ``True``
        (logged once): every process sweeps, as before.

        Args:
            executor: The task system whose workers share the turn (``"celery"``).
            scope: The kind of project they sweep (the loader's ``scope``).
            seconds: How long the turn is held.

        Returns:
            Whether this process has the turn, and should sweep now.

        Raises:
            ValueError: ``seconds`` is not a positive number.
        """
        if not is_real(seconds) or not seconds > 0:
            msg = f"seconds must be a positive number, got {seconds!r}"
            raise ValueError(msg)
        return take_turn(self, executor, scope, float(seconds))

    # ------------------------------------------------------------------ reading

    def get(self, attempt_id: int, *, wait: bool = False) -> Attempt | None:
        """Return the attempt with that id, if there is one.

        Args:
            attempt_id: The attempt's id (its fencing token).
            wait: If the attempt is not in the ledger (yet), wait for it up to one lease:
                a worker that received a job sent from inside the sender's transaction
                (a view under ``ATOMIC_REQUESTS`` on PostgreSQL) may read before the
                start has committed.
        """
        found = self.store.get(attempt_id)
        if found is not None or not wait:
            return found
        for pause in pauses(self.lease):
            time.sleep(pause)
            found = self.store.get(attempt_id)
            if found is not None:
                break
        return found

    def current(self, scope: str, key: object) -> Attempt | None:
        """Return the project's newest attempt (live or ended), if it has one."""
        newest = self.store.history(scope, _text(key), limit=1)
        return newest[0] if newest else None

    def history(self, scope: str, key: object, *, limit: int | None = None) -> list[Attempt]:
        """Return the project's attempts, newest first: outcome, error, actor, timings."""
        return self.store.history(scope, _text(key), limit=limit)

    def video(self, scope: str, key: object) -> str | None:
        """Return the output path of the project's newest completed attempt, if any.

        For a model with no column for it (``output_field=None``): the ledger is then
        where the project's current video is known.
        """
        for attempt in self.store.history(scope, _text(key)):
            if attempt.state is AttemptState.COMPLETED and attempt.output_path:
                return attempt.output_path
        return None

    def rendering_seconds(self, scope: str, key: object) -> float:
        """Return the total seconds the project's ended attempts spent rendering."""
        return sum(a.rendering_seconds or 0.0 for a in self.store.history(scope, _text(key)))

    # ------------------------------------------------------------------ helpers

    @contextmanager
    def _atomic(self, lifecycle: ProjectLifecycle[Any]) -> Iterator[None]:
        try:
            with self.store.atomic(lifecycle.project):
                yield
        except BaseException:
            # The transaction rolled back, but the adapter may already have set the new
            # values on the object: read back what the row holds, so a later save() of
            # the object cannot write a transition that never happened.
            try:
                lifecycle.refresh()
            except Exception:  # pragma: no cover - the original error matters more
                logger.debug("could not refresh %r after a rollback", lifecycle, exc_info=True)
            raise

    def _insert(self, attempt: Attempt) -> tuple[Attempt, bool]:
        """Insert ``attempt``; return it as stored and whether its project has other live ones.

        A store with ``insert_and_find_live`` answers both in one statement; any other is
        asked with ``insert`` and then ``live``.
        """
        combined = getattr(self.store, "insert_and_find_live", None)
        if combined is None:
            return self.store.insert(attempt), True
        stored, others = combined(attempt)
        return cast("Attempt", stored), bool(others)

    def _owned_update(self, attempt: Attempt | int, values: Mapping[str, object]) -> bool:
        return owned_update(self.store, attempt, values)


def _written(value: float | DatabaseTime) -> float:
    # An Attempt handed to insert() may hold DatabaseTime in its times: the store writes
    # the database's expression there and returns the attempt as stored.
    return cast("float", value)


def _text(key: object) -> str:
    return key if isinstance(key, str) else encode_key(key)
