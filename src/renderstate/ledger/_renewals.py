"""Renewing many leases at once: one transaction per worker per tick, whatever its renders.

:meth:`Ledger.renew <renderstate.ledger.Ledger.renew>` is this module's :func:`renew`. It
hands every renewal of a tick to the store's ``renew`` in one call: one transaction, one
set-based ``UPDATE`` of every lease that is still its owner's (and of the progress that
came with it), and one read of the rows it renewed or refused. A row that another
transaction holds locked (a completion under way, a cancel in a caller's transaction) is
skipped, not waited for (``SKIP LOCKED`` on PostgreSQL and MySQL/MariaDB), so one blocked
row delays nothing but itself; the caller renews it at its next tick. A store without
``renew`` (one written for an earlier version) gets one fenced ``UPDATE`` per renewal, as
:meth:`~renderstate.ledger.Ledger.heartbeat` writes it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final, NamedTuple, cast

from renderstate._attempts import ACTIVE_STATES, Attempt, DatabaseTime
from renderstate.ledger._checks import check_id, check_progress, is_token, plain
from renderstate.ledger._fencing import owned_update, takes_cancel_requests

if TYPE_CHECKING:
    from renderstate.ledger._ledger import Ledger
    from renderstate.ledger._turns import TurnClaim

__all__ = [
    "BATCH",
    "PROGRESS_FIELDS",
    "Renewal",
    "RenewalOutcome",
    "Renewed",
    "RowRenewal",
    "matches",
    "renew",
    "skips_locked",
]

PROGRESS_FIELDS: Final = ("phase", "done", "total", "fraction", "eta_seconds", "label")
"""The columns a renewal may write besides the lease, in the order stores write them."""
BATCH: Final = 50
"""The most renewals one store call (one transaction, one ``UPDATE``) carries. Every
renewal is a term of the statement's ``WHERE``: SQLite refuses an expression deeper than
1000 terms, and parses Peewee's (each term nested in parentheses) on a stack that
overflowed from about 70; a worker holding more renders renews them in several."""


class Renewal(NamedTuple):
    """One lease to renew in :meth:`Ledger.renew <renderstate.ledger.Ledger.renew>`.

    As the arguments of :meth:`~renderstate.ledger.Ledger.heartbeat`: the attempt (as
    :meth:`~renderstate.ledger.Ledger.start` or :meth:`~renderstate.ledger.Ledger.begin`
    returned it, fenced by its owner token; a bare id renews whoever holds it), the
    progress to record with it, if any, and whether to renew only while nobody asked the
    attempt to cancel.
    """

    attempt: Attempt | int
    progress: Mapping[str, object] | None = None
    unless_cancelled: bool = False


class RenewalOutcome(enum.Enum):
    """What became of one :class:`Renewal`."""

    RENEWED = "renewed"
    """The lease was renewed and the progress written."""
    CANCEL_REQUESTED = "cancel requested"
    """Someone asked the attempt to cancel (``unless_cancelled``): nothing was written.
    The owner is still the owner: renew without the condition while the render stops."""
    LOST = "lost"
    """The attempt ended, or another owner holds it: nothing was written; stop."""
    SKIPPED = "skipped"
    """Nothing was written: another transaction held the row locked (a completion or a
    cancel under way), or the attempt is not in the ledger yet (its start has not
    committed). Not lost: renew it again at the next tick."""


class Renewed(NamedTuple):
    """One renewal's outcome, and the attempt as the ledger held it then."""

    outcome: RenewalOutcome
    stored: Attempt | None
    """The row that refused it (``CANCEL_REQUESTED``: its ``cancel_reason``; ``LOST``: who
    holds it now, or how it ended), read under the transaction's lock; ``None`` for a
    renewal that was renewed or skipped."""


class RowRenewal(NamedTuple):
    """One row of a store's ``renew``: write ``progress`` and the lease if the fences hold.

    The fences are those of the store's ``update``: the state is live, and ``owner``,
    ``worker`` and ``uncancelled`` as there (``None``/``False``: not fenced by it).
    """

    id: int
    progress: Mapping[str, object]
    owner: str | None = None
    worker: str | None = None
    uncancelled: bool = False


def matches(row: RowRenewal, stored: Attempt) -> bool:
    """Whether a store's fenced write of ``row`` matches ``stored`` (the row as it is)."""
    return (
        stored.state in ACTIVE_STATES
        and (row.owner is None or stored.owner == row.owner)
        and (row.worker is None or stored.worker == row.worker)
        and not (row.uncancelled and stored.cancel_requested_at is not None)
    )


def skips_locked(vendor: str, version: tuple[int | str, ...] | None) -> bool:
    """Whether ``SELECT ... FOR UPDATE SKIP LOCKED`` runs on this database.

    PostgreSQL (9.5+), MariaDB 10.6+ and MySQL 8.0.1+; never SQLite, which locks the
    whole database instead of rows.
    """
    if vendor in ("postgresql", "postgres"):
        return True
    if vendor in ("mysql", "mariadb") and version:
        # MySQL has no version 10 yet: 10.6 and later are MariaDB's.
        numbers = tuple(part for part in version if isinstance(part, int))
        return numbers >= (10, 6) or (8, 0, 1) <= numbers < (10,)
    return False


def renew(
    ledger: Ledger, renewals: Sequence[Renewal], turn: TurnClaim | None = None
) -> tuple[list[Renewed], bool | None]:
    """Renew the leases of ``renewals``, :data:`BATCH` per transaction; see :meth:`Ledger.renew`.

    With ``turn``, the first transaction also claims that sweep turn (the store's
    ``renew_taking_turn``), and whether it was won is returned; ``None`` if it was not
    claimed (no renewal to send with it).
    """
    rows: list[RowRenewal | None] = [_row(i, r) for i, r in enumerate(renewals)]
    lease: float | DatabaseTime = ledger._time() + ledger.lease
    store = ledger.store
    batch = getattr(store, "renew", None)
    wanted = [i for i, row in enumerate(rows) if row is not None]
    won: bool | None = None
    # Each renewal's outcome is read from the rows its own store call read.
    seen: dict[int, Mapping[int, Attempt]] = {}
    if batch is not None:
        for first in range(0, len(wanted), BATCH):
            chunk = wanted[first : first + BATCH]
            sent = [rows[i] for i in chunk]
            read: Mapping[int, Attempt]
            if turn is not None and won is None:
                read, won = store.renew_taking_turn(sent, lease, turn)  # type: ignore[attr-defined]
            else:
                read = batch(sent, lease)
            seen.update(dict.fromkeys(chunk, read))
    results: list[Renewed] = []
    for index, (renewal, row) in enumerate(zip(renewals, rows, strict=True)):
        if row is None:  # a token no owner holds: matches nothing anywhere
            results.append(Renewed(RenewalOutcome.LOST, None))
        elif batch is None:
            results.append(_one(ledger, renewal, row, lease))
        else:
            results.append(_outcome(row, seen[index].get(row.id)))
    return results, won


def _outcome(row: RowRenewal, stored: Attempt | None) -> Renewed:
    """What the store's fenced write of ``row`` did, from the row as it then stood."""
    if stored is None:
        return Renewed(RenewalOutcome.SKIPPED, None)
    if matches(row, stored):
        return Renewed(RenewalOutcome.RENEWED, None)
    if row.uncancelled and matches(row._replace(uncancelled=False), stored):
        return Renewed(RenewalOutcome.CANCEL_REQUESTED, stored)
    return Renewed(RenewalOutcome.LOST, stored)


def _row(index: int, renewal: Renewal) -> RowRenewal | None:
    """The store's row for ``renewal``, checked; ``None`` for an owner no token can be."""
    if not isinstance(cast("object", renewal), Renewal):  # an Attempt given alone
        msg = (
            f"renewal {index} is a {type(renewal).__name__}; give Renewal(attempt, progress, "
            f"unless_cancelled=...) for each lease"
        )
        raise TypeError(msg)
    attempt, progress, unless = renewal
    values: dict[str, object] = {}
    if progress:
        unknown = set(progress) - set(PROGRESS_FIELDS)
        if unknown:
            msg = (
                f"renewal {index} has unknown progress fields {sorted(unknown)}; use "
                f"{list(PROGRESS_FIELDS)}"
            )
            raise ValueError(msg)
        try:
            check_progress(progress)
        except ValueError as exc:
            msg = f"renewal {index} (attempt {_id(attempt)}): {exc}; nothing was written"
            raise ValueError(msg) from exc
        values = {name: plain(progress[name]) for name in PROGRESS_FIELDS if name in progress}
    if isinstance(attempt, int):
        check_id(attempt)
        return RowRenewal(attempt, values, uncancelled=bool(unless))
    if attempt.owner is not None:
        if not is_token(attempt.owner):
            return None
        return RowRenewal(attempt.id, values, owner=attempt.owner, uncancelled=bool(unless))
    return RowRenewal(attempt.id, values, worker=attempt.worker, uncancelled=bool(unless))


def _id(attempt: Attempt | int) -> object:
    return attempt if isinstance(attempt, int) else attempt.id


def _one(ledger: Ledger, renewal: Renewal, row: RowRenewal, lease: float | DatabaseTime) -> Renewed:
    """A store without ``renew``: one fenced ``UPDATE``, then the row if it matched nothing."""
    unless = row.uncancelled and takes_cancel_requests(ledger.store)
    values = {"lease_expires_at": lease, **row.progress}
    if owned_update(ledger.store, renewal.attempt, values, uncancelled=unless):
        return Renewed(RenewalOutcome.RENEWED, None)
    found = _outcome(row._replace(uncancelled=unless), ledger.store.get(row.id))
    # Matching now what the write did not match: the row appeared (a start committed).
    if found.outcome is RenewalOutcome.RENEWED:
        return Renewed(RenewalOutcome.SKIPPED, None)
    return found
