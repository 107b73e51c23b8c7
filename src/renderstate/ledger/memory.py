"""The in-memory attempt store: for tests, scripts and plain objects in one process."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Generic

from renderstate._attempts import ACTIVE_STATES, Attempt, AttemptState, DatabaseTime, encode_key
from renderstate.ledger._renewals import RowRenewal, matches
from renderstate.ledger._turns import TurnClaim
from renderstate.typing import ProjectT

__all__ = ["MemoryAttemptStore", "MemoryLoader"]


class MemoryAttemptStore:
    """Keeps attempt records in a dict, behind one re-entrant lock.

    :meth:`atomic` holds that lock and undoes the block's ledger writes if it raises, so a
    start and its record, or a fenced finish, are atomic against every other ledger call
    on this store. The project's own attributes are the in-memory adapter's business.

    Args:
        scope: Returns the scope of a project; by default its class name.
        clock: The process's clock, which stands for the database's
            (:class:`~renderstate.ledger.DatabaseTime`): one clock per process, as the
            store is.
    """

    def __init__(
        self,
        *,
        scope: Callable[[object], str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._attempts: dict[int, Attempt] = {}
        self._journal: list[dict[int, Attempt | None]] | None = None
        self._scope = scope
        self._turns: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"<MemoryAttemptStore attempts={len(self._attempts)}>"

    @contextmanager
    def atomic(self, project: Any) -> Iterator[None]:
        """Hold the store's lock; undo this block's writes (and the object's) if it raises."""
        with self._lock:
            outer = self._journal
            journal: dict[int, Attempt | None] = {}
            self._journal = [*(outer or []), journal]
            # A plain object is its own store: put its attributes back on rollback too.
            saved = dict(vars(project)) if hasattr(project, "__dict__") else None
            try:
                yield
            except BaseException:
                if saved is not None:
                    vars(project).clear()
                    vars(project).update(saved)
                for attempt_id, before in journal.items():
                    if before is None:
                        self._attempts.pop(attempt_id, None)
                    else:
                        self._attempts[attempt_id] = before
                raise
            finally:
                self._journal = outer
            if outer:
                # A nested block that succeeded: its writes belong to the enclosing one.
                for attempt_id, before in journal.items():
                    outer[-1].setdefault(attempt_id, before)

    def _remember(self, attempt_id: int) -> None:
        if self._journal:
            self._journal[-1].setdefault(attempt_id, self._attempts.get(attempt_id))

    def scope(self, project: Any) -> str:
        """Return the scope function's answer, else the project's class name."""
        return self._scope(project) if self._scope is not None else type(project).__name__

    def insert(self, attempt: Attempt) -> Attempt:
        """Store ``attempt`` under the next id."""
        with self._lock:
            times = self._resolved({f: getattr(attempt, f) for f in _TIMES})
            stored = dataclasses.replace(attempt, id=next(self._ids), **times)
            self._remember(stored.id)
            self._attempts[stored.id] = stored
            return stored

    def update(
        self,
        attempt_id: int,
        values: Mapping[str, object],
        *,
        states: Collection[AttemptState],
        lease_before: float | DatabaseTime | None = None,
        worker: str | None = None,
        owner: str | None = None,
        uncancelled: bool = False,
    ) -> bool:
        """Set ``values`` if the state is in ``states`` (and the lease, worker, owner match).

        With ``uncancelled``, only if nobody asked the attempt to cancel.
        """
        with self._lock:
            current = self._attempts.get(attempt_id)
            if current is None or current.state not in states:
                return False
            if worker is not None and current.worker != worker:
                return False
            if owner is not None and current.owner != owner:
                return False
            if uncancelled and current.cancel_requested_at is not None:
                return False
            if isinstance(lease_before, DatabaseTime):
                lease_before = lease_before.at(self._clock())
            if lease_before is not None and not (
                current.lease_expires_at is not None and current.lease_expires_at < lease_before
            ):
                return False
            changes = self._resolved(values)
            if "state" in changes:
                changes["state"] = AttemptState(changes["state"])
            self._remember(attempt_id)
            self._attempts[attempt_id] = dataclasses.replace(current, **changes)
            return True

    def renew(
        self, rows: Sequence[RowRenewal], lease_expires_at: float | DatabaseTime
    ) -> dict[int, Attempt]:
        """Renew each row's lease and write its progress where its fences hold, atomically.

        Returns every row's attempt as it stands afterwards (by id); see
        :meth:`renderstate.ledger.Ledger.renew`.
        """
        with self._lock:
            (lease,) = self._resolved({"lease_expires_at": lease_expires_at}).values()
            seen: dict[int, Attempt] = {}
            for row in rows:
                current = self._attempts.get(row.id)
                if current is None:
                    continue
                if matches(row, current):
                    self._remember(row.id)
                    changes: dict[str, Any] = {**row.progress, "lease_expires_at": lease}
                    current = dataclasses.replace(current, **changes)
                    self._attempts[row.id] = current
                seen[row.id] = current
            return seen

    def renew_taking_turn(
        self,
        rows: Sequence[RowRenewal],
        lease_expires_at: float | DatabaseTime,
        turn: TurnClaim,
    ) -> tuple[dict[int, Attempt], bool]:
        """:meth:`renew` and :meth:`take_turn` at once, under the store's lock."""
        with self._lock:
            return self.renew(rows, lease_expires_at), self.take_turn(*turn)

    def take_turn(
        self, name: str, holder: str, until: float | DatabaseTime, now: float | DatabaseTime
    ) -> bool:
        """Claim the turn ``name`` until ``until`` if it expired before ``now`` (or is new).

        See :meth:`Ledger.take_sweep_turn <renderstate.ledger.Ledger.take_sweep_turn>`.
        """
        with self._lock:
            ends, starts = self._resolved({"until": until, "now": now}).values()
            held = self._turns.get(name)
            if held is not None and not held[1] < starts:
                return False
            self._turns[name] = (holder, ends)
            return True

    def _resolved(self, values: Mapping[str, object]) -> dict[str, Any]:
        now: float | None = None
        resolved: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, DatabaseTime):
                now = self._clock() if now is None else now
                value = value.at(now)  # noqa: PLW2901 - the value as written
            resolved[name] = value
        return resolved

    def get(self, attempt_id: int) -> Attempt | None:
        """Return the attempt with that id."""
        with self._lock:
            return self._attempts.get(attempt_id)

    def _of(self, scope: str, key: str) -> list[Attempt]:
        return [a for a in self._attempts.values() if a.scope == scope and a.project_key == key]

    def history(self, scope: str, key: str, *, limit: int | None = None) -> list[Attempt]:
        """Return the project's attempts, newest first."""
        with self._lock:
            found = sorted(self._of(scope, key), key=lambda a: a.id, reverse=True)
        return found if limit is None else found[:limit]

    def live(self, scope: str, key: str) -> list[Attempt]:
        """Return the project's queued or rendering attempts."""
        with self._lock:
            return [a for a in self._of(scope, key) if a.state in ACTIVE_STATES]

    def expired(self, now: float | DatabaseTime, *, scope: str | None = None) -> list[Attempt]:
        """Return the live attempts whose lease expired before ``now``, oldest first."""
        if isinstance(now, DatabaseTime):
            now = now.at(self._clock())
        with self._lock:
            return sorted(
                (
                    a
                    for a in self._attempts.values()
                    if a.state in ACTIVE_STATES
                    and a.lease_expires_at is not None
                    and a.lease_expires_at < now
                    and (scope is None or a.scope == scope)
                ),
                key=lambda a: a.id,
            )

    def loader(self, projects: Iterable[ProjectT], *, key: str = "id") -> MemoryLoader[ProjectT]:
        """Return a loader that finds a project among ``projects`` by attribute ``key``."""
        return MemoryLoader(projects, key=key, scope=self.scope)


_TIMES = ("lease_expires_at", "created_at", "started_at", "finished_at", "cancel_requested_at")


class MemoryLoader(Generic[ProjectT]):
    """Finds plain projects by key text among a known collection (tests, scripts).

    Args:
        projects: The projects it can load; all of one kind.
        key: The attribute holding each project's key.
        scope: Returns a project's scope, as the store does.
    """

    def __init__(
        self,
        projects: Iterable[ProjectT],
        *,
        key: str = "id",
        scope: Callable[[object], str] = lambda p: type(p).__name__,
    ) -> None:
        self._by_key: dict[str, ProjectT] = {}
        scopes = set()
        for project in projects:
            self._by_key[encode_key(getattr(project, key))] = project
            scopes.add(scope(project))
        if len(scopes) > 1:
            msg = f"a loader loads one kind of project; got {sorted(scopes)}"
            raise ValueError(msg)
        self.scope = scopes.pop() if scopes else ""
        """The kind of project it loads."""

    def __call__(self, key: str, /) -> ProjectT | None:
        """Return the project whose key text is ``key``."""
        return self._by_key.get(key)
