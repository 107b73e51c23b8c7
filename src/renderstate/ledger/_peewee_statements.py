"""The Peewee store's statements: the database's clock inside them, the start's one INSERT.

:class:`~renderstate.ledger.peewee.PeeweeAttemptStore` writes a time the database chooses
(:class:`~renderstate._attempts.DatabaseTime`) as its clock expression
(:func:`~renderstate.ledger._clock.now_sql`), and starts with one ``INSERT ... RETURNING``
that also says whether the project has another live attempt.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import peewee

from renderstate._attempts import ACTIVE_STATES, FIELDS, Attempt, DatabaseTime
from renderstate.ledger._clock import now_sql, written

__all__ = ["compared", "database_time", "insert_finding_live", "returns"]


def insert_finding_live(model: Any, attempt: Attempt, at: Callable[[float], Any]) -> Any:
    """The ``INSERT ... RETURNING`` of ``attempt``, and whether its project has another live.

    It returns every column, and ``renderstate_others``: whether the project has another
    queued or rendering attempt.
    """
    other = model.alias("renderstate_other")
    # The new row, named by its table (the INSERT's own row in RETURNING): on MariaDB and
    # SQLite the subquery sees it too.
    new_id = peewee.Entity(model._meta.table_name, "id")
    others = peewee.fn.EXISTS(
        other.select(other.id).where(
            (other.scope == attempt.scope)
            & (other.project_key == attempt.project_key)
            & other.state.in_([s.value for s in ACTIVE_STATES])
            & (other.id != new_id)
        )
    )
    values = {name: getattr(attempt, name) for name in FIELDS if name != "id"}
    return model.insert(**written(values, at)).returning(
        *model._meta.sorted_fields, others.alias("renderstate_others")
    )


def database_time(database: Any) -> Callable[[float], Any]:
    """What stands for DatabaseTime(seconds) in a statement on ``database``."""
    target = getattr(database, "obj", None) or database  # a DatabaseProxy's database
    if isinstance(target, peewee.PostgresqlDatabase):
        vendor = "postgresql"
    elif isinstance(target, peewee.MySQLDatabase):
        vendor = "mysql"
    elif isinstance(target, peewee.SqliteDatabase):
        vendor = "sqlite"
    else:
        vendor = type(target).__name__

    def at(seconds: float) -> Any:
        now = peewee.SQL(now_sql(vendor))
        return now + seconds if seconds else now

    return at


def compared(value: float | DatabaseTime, at: Callable[[float], Any]) -> Any:
    return at(value.seconds) if isinstance(value, DatabaseTime) else value


def returns(database: Any) -> bool:
    """Whether an ``INSERT`` on ``database`` can return its row (``RETURNING``)."""
    if isinstance(database, peewee.SqliteDatabase):
        return sqlite3.sqlite_version_info >= (3, 35)
    if isinstance(database, peewee.MySQLDatabase):
        # MariaDB 10.5+ (MySQL has no version 10 yet, nor INSERT ... RETURNING); the
        # version is known once connected, as the store's transaction is.
        version = database.server_version
        return isinstance(version, tuple) and version >= (10, 5)
    return bool(database.returning_clause)
