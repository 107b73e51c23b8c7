"""The SQLAlchemy store's sweep turns: claiming a turn's row, and making it when missing.

See :mod:`renderstate.ledger._turns` for what a turn is and
:meth:`Ledger.take_sweep_turn <renderstate.ledger.Ledger.take_sweep_turn>` for who claims one.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from renderstate._attempts import DatabaseTime
from renderstate.ledger import _turns
from renderstate.ledger._renewals import skips_locked
from renderstate.ledger._sa_statements import compared, database_time

__all__ = ["take_turn"]


def take_turn(  # noqa: PLR0917 - the store's take_turn, with its session, table and rows
    session: Session,
    t: Table,
    made: _turns.TurnRows,
    name: str,
    holder: str,
    until: float | DatabaseTime,
    now: float | DatabaseTime,
) -> bool:
    """Claim the turn ``name`` in table ``t`` on ``session``; see the store's ``take_turn``.

    ``made`` remembers, per store, whether the turn's row was looked for lately.
    """
    at = database_time(session)
    dialect = session.connection().dialect
    expired = (t.c.name == name, t.c.expires_at < compared(now, at))
    claim = update(t).where(*expired).values(holder=holder, expires_at=compared(until, at))
    # A row another transaction holds locked is someone claiming the turn now: not
    # waited for. A holder frozen (or cut off) between its claim and its commit
    # would otherwise stall every process's claim behind it, and with a claim in
    # the heartbeat's transaction, every renewal of the fleet.
    free = select(t.c.name).where(*expired).with_for_update(skip_locked=True)
    skips = skips_locked(dialect.name, dialect.server_version_info)
    if skips and dialect.name == "postgresql":
        claim = claim.where(t.c.name.in_(free))

    def claimed() -> bool:
        # MySQL/MariaDB's UPDATE waits for a row whatever its subquery skips: the
        # row is locked first, or skipped, by a SELECT of its own.
        if skips and dialect.name != "postgresql" and session.execute(free).first() is None:
            return False
        return cast("CursorResult[Any]", session.execute(claim)).rowcount == 1

    if claimed():
        made.taken(name)
        return True
    if not made.look(name):
        return False
    there = session.execute(select(t.c.name).where(t.c.name == name)).first()
    made.found(name)
    if there is not None:
        return False  # held
    session.execute(_insert_ignoring(t, dialect.name, name))
    return claimed()


def _insert_ignoring(turns: Table, dialect: str, name: str) -> Insert:
    """An ``INSERT`` of the turn ``name`` (expired) that does nothing if it is there."""
    values = {"name": name, "holder": None, "expires_at": 0.0}
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

        return pg_insert(turns).values(values).on_conflict_do_nothing()
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

        return sqlite_insert(turns).values(values).on_conflict_do_nothing()
    # MySQL/MariaDB
    return insert(turns).values(values).prefix_with("IGNORE")
