"""The database's clock: the expression each database reads its current time with.

With no ``clock`` given, :class:`~renderstate.ledger.Ledger` writes and compares its times
as :class:`~renderstate._attempts.DatabaseTime`, and each store puts the expression below
in the very statement that writes or compares them. Every process sharing the database then
reads one clock, the server's, whatever its own machine's clock says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from renderstate._attempts import DatabaseTime, stored_values

__all__ = ["now_sql", "written"]

ExprT = TypeVar("ExprT")

_NOW: Final = {
    # The statement's own start: the same in every row it touches, and later than the
    # transaction's start (``now()``) in a transaction that waited for a row lock.
    "postgresql": "CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS DOUBLE PRECISION)",
    # UTC_TIMESTAMP(6) does not depend on the session's time zone, and TIMESTAMPDIFF
    # counts from the epoch without one (UNIX_TIMESTAMP(NOW(6)) is ambiguous at a DST
    # change).
    "mysql": "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) / 1000000.0)",
    # julianday('now') has millisecond precision and runs on every SQLite version
    # (unixepoch('subsec') needs 3.42).
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
_ALIASES: Final = {"mariadb": "mysql", "postgres": "postgresql"}


def now_sql(vendor: str) -> str:
    """Return the SQL that reads the database's current UNIX time in seconds.

    Raises:
        NotImplementedError: a database whose clock the ledger does not know how to read.
    """
    found = _NOW.get(_ALIASES.get(vendor, vendor))
    if found is None:
        msg = (
            f"the attempt ledger reads the clock of PostgreSQL, MySQL/MariaDB and SQLite, "
            f"not of {vendor!r}: pass Ledger(store, clock=time.time) to use each "
            f"process's own clock (they must then agree to well within the lease)"
        )
        raise NotImplementedError(msg)
    return found


def written(
    values: Mapping[str, object], expression: Callable[[float], ExprT]
) -> dict[str, object]:
    """Return ``values`` as a store writes them, each DatabaseTime as ``expression(seconds)``."""
    return {
        name: expression(value.seconds) if isinstance(value, DatabaseTime) else value
        for name, value in stored_values(values).items()
    }
