"""The in-memory attempt store: for tests, scripts and plain objects in one process."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic

from renderstate._attempts import ACTIVE_STATES, Attempt, AttemptState, encode_key
from renderstate.typing import ProjectT

__all__ = ["MemoryAttemptStore", "MemoryLoader"]


class MemoryAttemptStore:
    """Keeps attempt records in a dict, behind one re-entrant lock.

    :meth:`atomic` holds that lock and undoes the block's ledger writes if it raises, so a
    start and its record, or a fenced finish, are atomic against every other ledger call
    on this store. The project's own attributes are the in-memory adapter's business.

    Args:
        scope: Returns the scope of a project; by default its class name.
    """

    def __init__(self, *, scope: Callable[[object], str] | None = None) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._attempts: dict[int, Attempt] = {}
        self._journal: list[dict[int, Attempt | None]] | None = None
        self._scope = scope

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
            stored = dataclasses.replace(attempt, id=next(self._ids))
            self._remember(stored.id)
            self._attempts[stored.id] = stored
            return stored

    def update(
        self,
        attempt_id: int,
        values: Mapping[str, object],
        *,
        states: Collection[AttemptState],
        lease_before: float | None = None,
        worker: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """Set ``values`` if the state is in ``states`` (and the lease, worker, owner match)."""
        with self._lock:
            current = self._attempts.get(attempt_id)
            if current is None or current.state not in states:
                return False
            if worker is not None and current.worker != worker:
                return False
            if owner is not None and current.owner != owner:
                return False
            if lease_before is not None and not (
                current.lease_expires_at is not None and current.lease_expires_at < lease_before
            ):
                return False
            changes = dict(values)
            if "state" in changes:
                changes["state"] = AttemptState(changes["state"])
            self._remember(attempt_id)
            self._attempts[attempt_id] = dataclasses.replace(current, **changes)  # type: ignore[arg-type]
            return True

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

    def expired(self, now: float, *, scope: str | None = None) -> list[Attempt]:
        """Return the live attempts whose lease expired before ``now``, oldest first."""
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
