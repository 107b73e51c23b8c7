"""The sweep turn: one process of a fleet sweeps per interval, the others skip it.

Every task-queue worker process sweeps (:meth:`Ledger.sweep
<renderstate.ledger.Ledger.sweep>`), so that a dead worker's render is taken over without
an operator; but a sweep's query lists every live attempt that missed a renewal, and N
processes running it every interval is N queries where one is enough. Before it sweeps, a
process takes the *turn* (:func:`take`): one row per task system and kind of project in a
small table beside the ledger's, claimed by one conditional ``UPDATE ... SET holder = ?,
expires_at = <now> + interval WHERE name = ? AND expires_at < <now>`` on the database's
clock. Of many processes claiming at once exactly one matches; the others skip the sweep.
A turn is not renewed: it expires after one interval whatever becomes of its holder, so a
holder that died delays the next sweep by at most one interval, and "at most one worker
acting per attempt" still rests on each attempt's own fenced ``UPDATE``, not on the turn.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING, Final, NamedTuple

from renderstate._attempts import DatabaseTime
from renderstate.ledger._owners import this_worker

if TYPE_CHECKING:
    from renderstate.ledger._ledger import Ledger

__all__ = [
    "LOOK_AGAIN_EVERY",
    "NAME_WIDTH",
    "TABLE_NAME",
    "TurnClaim",
    "TurnRows",
    "claim",
    "folds",
    "name",
    "table_name",
    "take",
    "unfold",
]

logger = logging.getLogger("renderstate.ledger")

TABLE_NAME: Final = "renderstate_sweep_turn"
"""The turns' table beside the ledger's default table ``renderstate_attempt``."""
NAME_WIDTH: Final = 360
"""The most characters of a turn's name: an executor (255), a space and a scope (100)."""
HOLDER_WIDTH: Final = 255

_WARNED: set[int] = set()
"""The stores (by id) whose turn could not be taken once already (logged once each)."""
_TAKEN: set[int] = set()
"""The stores (by id) whose turn was asked for alone once without an error: their
database has the turns' table, so a heartbeat may ask for it in its own transaction."""


LOOK_AGAIN_EVERY: Final = 4
"""A store that found a turn's row looks for it again (and inserts it if it is missing)
once every this many claims refused in a row: a row deleted since (a flushed or recreated
database) would otherwise refuse this process the turn for good, and with it every process
that had found it: nobody would sweep again until they restart."""


class TurnRows:
    """Which turns' rows a store found (or inserted), and when it looks for one again.

    Keyed by whatever tells a store's turns apart (a name; a database alias and a name).
    A refused claim cannot tell a turn held from a turn whose row is missing; looking is
    a plain read of the row, not an ``INSERT`` that would find it there: on MySQL/MariaDB
    that takes a shared lock on the row, and two claims that each hold one and then want
    to write it deadlock (in a heartbeat's transaction, losing its renewals).
    """

    def __init__(self) -> None:
        self._refused: dict[Hashable, int] = {}
        """The key of each turn whose row this store found, with the claims refused in a
        row since it last found it or took the turn."""

    def look(self, key: Hashable) -> bool:
        """A claim of turn ``key`` was refused: whether to look for its row (insert it if missing).

        The first time, and again every :data:`LOOK_AGAIN_EVERY` refusals in a row.
        """
        refused = self._refused.get(key)
        if refused is None:
            return True
        refused += 1
        self._refused[key] = refused % LOOK_AGAIN_EVERY
        return refused >= LOOK_AGAIN_EVERY

    def found(self, key: Hashable) -> None:
        """The row of turn ``key`` is there (found, or inserted)."""
        self._refused[key] = 0

    def taken(self, key: Hashable) -> None:
        """Turn ``key`` was taken: its row is there."""
        if key in self._refused:
            self._refused[key] = 0


class TurnClaim(NamedTuple):
    """A claim of one sweep turn, as a store's ``take_turn`` is given it, on the ledger's clock."""

    name: str
    holder: str
    until: float | DatabaseTime
    now: float | DatabaseTime


def claim(ledger: Ledger, executor: str, scope: str, seconds: float) -> TurnClaim:
    """The claim of ``executor``'s turn over ``scope`` for ``seconds`` from now."""
    now = ledger._time()
    return TurnClaim(name(executor, scope), this_worker()[:HOLDER_WIDTH], now + seconds, now)


def unfold(ledger: Ledger) -> None:
    """A claim in a renewal's transaction failed there: claim alone until one works again."""
    _TAKEN.discard(id(ledger.store))


def folds(ledger: Ledger) -> bool:
    """Whether a heartbeat may claim the turn in its own transaction on ``ledger``'s store.

    Only once a claim alone has worked there: a missing table would otherwise fail the
    renewals with it.
    """
    return id(ledger.store) in _TAKEN and hasattr(ledger.store, "renew_taking_turn")


def table_name(attempts: str) -> str:
    """The turns' table beside the ledger's table ``attempts``."""
    return TABLE_NAME if attempts == "renderstate_attempt" else f"{attempts}_sweep_turn"


def name(executor: str, scope: str) -> str:
    """The turn of ``executor``'s workers over ``scope``'s projects: one per task system."""
    return f"{executor} {scope}"


def take(ledger: Ledger, executor: str, scope: str, seconds: float) -> bool:
    """Take the turn for ``seconds`` if nobody holds it; see :meth:`Ledger.take_sweep_turn`."""
    store = ledger.store
    take_turn = getattr(store, "take_turn", None)
    if take_turn is None:  # a store written for an earlier version: every process sweeps
        return True
    try:
        won = bool(take_turn(*claim(ledger, executor, scope, seconds)))
    except Exception:
        # Most likely a database whose turns' table was never created (migrations not
        # run): sweep, as every process did before there were turns.
        if id(store) not in _WARNED:
            _WARNED.add(id(store))
            logger.warning(
                "could not take the sweep turn (is the %s table there? run your "
                "migrations, or the store's create_table()); this process sweeps every time",
                TABLE_NAME,
                exc_info=True,
            )
        return True
    _TAKEN.add(id(store))
    return won
