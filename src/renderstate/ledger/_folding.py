"""Folding the attempt's write into the project's guarded ``UPDATE``, where a store can.

Without a ledger a transition is one statement; with one, the attempt's row is written
too. A store that can put that write in the adapter's own statement (the SQLAlchemy store
with the SQLAlchemy adapter, on PostgreSQL and MySQL/MariaDB) offers the optional methods
of :class:`FoldingStore`; the ledger then wraps the transition in the :class:`Ride` it
returns. Any other store, adapter or database returns no ride, and the ledger writes the
attempt's row with a statement of its own, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from renderstate._attempts import Attempt, AttemptState
from renderstate._lifecycle import ProjectLifecycle
from renderstate.typing import AttemptStore

__all__ = ["FoldingStore", "Ride", "ride_insert", "ride_update"]

T_co = TypeVar("T_co", covariant=True)


class Ride(AbstractContextManager[None], Protocol[T_co]):
    """The attempt's write, riding in the next guarded ``UPDATE`` of the block.

    :attr:`landed` is what the folded statement wrote, once it did: ``None`` if the
    adapter sent a statement of its own (the ledger then writes the attempt's row itself).
    """

    @property
    def landed(self) -> T_co | None:
        """What the folded statement wrote (``None``: it did not run)."""


class FoldingStore(Protocol):
    """The optional methods of an :class:`~renderstate.typing.AttemptStore` that folds."""

    def ride_insert(self, adapter: object, attempt: Attempt) -> Ride[tuple[Attempt, bool]] | None:
        """A ride that inserts ``attempt`` in the start's ``UPDATE`` of the project.

        It lands as ``insert_and_find_live`` answers: the attempt as stored, and whether
        its project has another live one. ``None``: this store cannot fold into
        ``adapter``'s statement here (another ORM, another connection, a database
        without the statement).
        """

    def ride_update(
        self,
        adapter: object,
        attempt_id: int,
        values: Mapping[str, object],
        *,
        states: Collection[AttemptState],
        worker: str | None,
        owner: str | None,
        uncancelled: bool,
        refused: Callable[[], BaseException],
    ) -> Ride[bool] | None:
        """A ride that writes ``values`` to the attempt in the end's ``UPDATE`` of the project.

        Fenced as :meth:`~renderstate.typing.AttemptStore.update` is; the project's row
        is written only where the fence holds too. When the statement wrote nothing
        because the fence does not hold, ``refused()`` is raised from it.
        """


def ride_insert(
    store: AttemptStore, lifecycle: ProjectLifecycle[Any], attempt: Attempt
) -> Ride[tuple[Attempt, bool]] | None:
    """The store's ride for a start's insert of ``attempt``, if it folds one."""
    method = getattr(store, "ride_insert", None)
    if method is None:
        return None
    ride: Ride[tuple[Attempt, bool]] | None = method(lifecycle._adapter, attempt)
    return ride


def ride_update(
    store: AttemptStore,
    lifecycle: ProjectLifecycle[Any],
    *,
    attempt_id: int,
    values: Mapping[str, object],
    fences: Mapping[str, Any],
    refused: Callable[[], BaseException],
) -> Ride[bool] | None:
    """The store's ride for an end's fenced write of the attempt, if it folds one."""
    method = getattr(store, "ride_update", None)
    if method is None:
        return None
    ride: Ride[bool] | None = method(
        lifecycle._adapter,
        attempt_id,
        values,
        states=fences["states"],
        worker=fences.get("worker"),
        owner=fences.get("owner"),
        uncancelled=fences.get("uncancelled", False),
        refused=refused,
    )
    return ride
