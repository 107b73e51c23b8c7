"""The SQLAlchemy store's statements: built once per shape, the database's clock inside.

Every value is a bound parameter, so :class:`~renderstate.ledger.sqlalchemy.SQLAlchemyAttemptStore`
keeps each statement it sends (per database and shape) and SQLAlchemy keys and compiles it
once; a time the database chooses is its clock (:func:`~renderstate.ledger._clock.now_sql`)
plus a parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Double,
    Table,
    and_,
    bindparam,
    case,
    exists,
    insert,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import ColumnElement

from renderstate._attempts import ACTIVE_STATES, FIELDS, DatabaseTime
from renderstate.ledger._clock import now_sql
from renderstate.ledger._renewals import PROGRESS_FIELDS, RowRenewal

__all__ = [
    "UpdateShape",
    "attempt_fence",
    "compared",
    "database_time",
    "folded_insert",
    "folded_update",
    "insert_finding_live",
    "renew_statement",
    "update_statement",
]


class UpdateShape(NamedTuple):
    """What makes two of the store's ``UPDATE`` statements the same statement."""

    values: tuple[tuple[str, bool], ...]
    """The columns set, each with whether the database's clock sets it."""
    states: tuple[str, ...]
    lease: bool | None
    """Whether a lease fence is the database's time (``None``: no lease fence)."""
    worker: bool
    owner: bool
    uncancelled: bool = False
    """Whether it matches only an attempt nobody asked to cancel."""


def insert_finding_live(table: Table, dialect: Dialect, timed: frozenset[str]) -> Insert:
    """The ``INSERT ... RETURNING`` of ``insert_and_find_live``, every value a parameter.

    A time the database chooses (those named in ``timed``) is its clock plus a parameter,
    so the store builds, keys and compiles the statement once, not once per start.
    """
    t = table
    other = t.alias("renderstate_other")
    # The new row, named by its table (the INSERT's own row in RETURNING): on MariaDB
    # and SQLite the subquery sees it too.
    named = dialect.identifier_preparer.format_table(t)
    new_id: ColumnElement[Any] = literal_column(f"{named}.id")
    others = (
        select(other.c.id)
        .where(
            other.c.scope == bindparam("renderstate_scope"),
            other.c.project_key == bindparam("renderstate_key"),
            other.c.state.in_([s.value for s in ACTIVE_STATES]),
            other.c.id != new_id,
        )
        .exists()
    )
    now: ColumnElement[float] = literal_column(now_sql(dialect.name), Double())
    values = {
        name: now + bindparam(name, type_=Double())
        if name in timed
        else bindparam(name, type_=t.c[name].type)
        for name in FIELDS
        if name != "id"
    }
    return insert(t).values(values).returning(*t.c, others.label("renderstate_others"))


def update_statement(table: Table, dialect: Dialect, shape: UpdateShape) -> Update:
    """The store's ``UPDATE`` of that shape, every value a parameter.

    The parameters are ``rs_<column>`` for the values set, and ``rs_id``, ``rs_if_lease``,
    ``rs_if_worker`` and ``rs_if_owner`` for the fences: a fence on a column the same
    statement also sets (a takeover fenced by the old owner that writes a new one) needs a
    parameter of its own, or both would be bound to one value.
    A heartbeat, a begin and an end each send the same few shapes again and again, so the
    store builds, keys and compiles each once, not once per call.
    """
    c = table.c
    now: ColumnElement[float] = literal_column(now_sql(dialect.name), Double())

    def value(name: str, type_: Any, timed: bool) -> ColumnElement[Any]:
        return now + bindparam(name, type_=Double()) if timed else bindparam(name, type_=type_)

    where = [c.id == bindparam("rs_id", type_=c.id.type), c.state.in_(shape.states)]
    if shape.lease is not None:
        where.append(c.lease_expires_at < value("rs_if_lease", Double(), shape.lease))
    if shape.worker:
        where.append(c.worker == bindparam("rs_if_worker", type_=c.worker.type))
    if shape.owner:
        where.append(c.owner == bindparam("rs_if_owner", type_=c.owner.type))
    if shape.uncancelled:
        where.append(c.cancel_requested_at.is_(None))
    sets = {name: value(f"rs_{name}", c[name].type, timed) for name, timed in shape.values}
    return update(table).where(*where).values(sets)


def database_time(session: Session) -> Callable[[float], ColumnElement[float]]:
    """What stands for DatabaseTime(seconds) in a statement on ``session``'s database."""
    name = session.connection().dialect.name

    def at(seconds: float) -> ColumnElement[float]:
        now: ColumnElement[float] = literal_column(now_sql(name), Double())
        return now + seconds if seconds else now

    return at


def compared(
    value: float | DatabaseTime, at: Callable[[float], ColumnElement[float]]
) -> float | ColumnElement[float]:
    return at(value.seconds) if isinstance(value, DatabaseTime) else value


def renew_statement(
    table: Table, rows: Sequence[RowRenewal], lease: float | ColumnElement[float]
) -> Update:
    """The one ``UPDATE`` of a store's ``renew``: every lease, and each row's own progress.

    Each row's fences (live, its owner or worker, not asked to cancel) are one term of the
    ``WHERE``, and pick its progress out of a ``CASE`` per column, so two owners of one
    attempt in one batch are told apart as two statements would.
    """
    c = table.c
    fences: list[ColumnElement[bool]] = []
    for row in rows:
        terms = [c.id == literal(row.id, c.id.type)]
        if row.owner is not None:
            terms.append(c.owner == literal(row.owner, c.owner.type))
        if row.worker is not None:
            terms.append(c.worker == literal(row.worker, c.worker.type))
        if row.uncancelled:
            terms.append(c.cancel_requested_at.is_(None))
        fences.append(and_(*terms))
    sets: dict[str, Any] = {"lease_expires_at": lease}
    for name in PROGRESS_FIELDS:
        whens = [
            (fence, literal(row.progress[name], c[name].type))
            for fence, row in zip(fences, rows, strict=True)
            if name in row.progress
        ]
        if whens:
            sets[name] = case(*whens, else_=c[name])
    live = [s.value for s in ACTIVE_STATES]
    ids = sorted({row.id for row in rows})
    return update(table).where(c.id.in_(ids), c.state.in_(live), or_(*fences)).values(sets)


# ------------------------------------------------------------------ folded into the project's
# SQLAlchemy keeps the Python-side defaults (a model's ``onupdate``) of one DML statement
# per compiled statement, the last one it compiles: a CTE's, compiled after the statement
# around it. So the project's UPDATE is the CTE here, never the statement around one.


def _key(update: Update) -> list[ColumnElement[Any]]:
    """The primary key columns of the table ``update`` writes."""
    return list(cast("Table", update.table).primary_key.columns)


def _value(value: object, column: Any, now: ColumnElement[float]) -> ColumnElement[Any]:
    if isinstance(value, DatabaseTime):
        return now + literal(value.seconds, Double())
    return literal(value, column.type)


def folded_insert(
    update: Update, table: Table, dialect: Dialect, values: Mapping[str, object]
) -> Insert:
    """The project's guarded ``UPDATE`` with the attempt's insert, as one statement (PostgreSQL).

    ``WITH renderstate_fold_project AS (UPDATE <project> ... WHERE <guard> RETURNING <key>)
    INSERT INTO <attempts> (...) SELECT ... FROM renderstate_fold_project RETURNING ...``:
    the attempt is inserted exactly when the guarded ``UPDATE`` wrote the project's row,
    and the row returned says, as :func:`insert_finding_live`'s does, whether the project
    has another live attempt. No row: nothing was written.
    """
    t = table
    other = t.alias("renderstate_other")
    named = dialect.identifier_preparer.format_table(t)
    others = (
        select(other.c.id)
        .where(
            other.c.scope == literal(values["scope"], t.c.scope.type),
            other.c.project_key == literal(values["project_key"], t.c.project_key.type),
            other.c.state.in_([s.value for s in ACTIVE_STATES]),
            other.c.id != literal_column(f"{named}.id"),
        )
        .exists()
    )
    now: ColumnElement[float] = literal_column(now_sql(dialect.name), Double())
    names = [name for name in FIELDS if name != "id"]
    written = update.returning(*_key(update)).cte("renderstate_fold_project")
    row = select(*[_value(values[n], t.c[n], now).label(n) for n in names]).select_from(written)
    return insert(t).from_select(names, row).returning(*t.c, others.label("renderstate_others"))


def attempt_fence(
    table: Table,
    attempt_id: int,
    *,
    states: Sequence[str],
    worker: str | None,
    owner: str | None,
    uncancelled: bool,
) -> list[ColumnElement[bool]]:
    """The ``WHERE`` of an owner's write of its attempt, as :func:`update_statement`'s."""
    c = table.c
    where = [c.id == literal(attempt_id, c.id.type), c.state.in_(states)]
    if worker is not None:
        where.append(c.worker == literal(worker, c.worker.type))
    if owner is not None:
        where.append(c.owner == literal(owner, c.owner.type))
    if uncancelled:
        where.append(c.cancel_requested_at.is_(None))
    return where


def folded_update(
    update: Update,
    table: Table,
    dialect: Dialect,
    values: Mapping[str, object],
    fence: Sequence[ColumnElement[bool]],
) -> Update:
    """The project's guarded ``UPDATE`` with the attempt's fenced write, as one statement.

    PostgreSQL: ``WITH renderstate_fold_attempt AS (SELECT ... FROM <attempts> WHERE
    <fence> FOR UPDATE), renderstate_fold_project AS (UPDATE <project> ... WHERE <guard>
    AND EXISTS (renderstate_fold_attempt) RETURNING <key>) UPDATE <attempts> ... WHERE
    <fence> AND EXISTS (renderstate_fold_project)``: the attempt's row is locked first (as
    when it was written first), and both rows are written, or neither. MySQL/MariaDB:
    one multi-table ``UPDATE <project>, <attempts> SET ... WHERE <guard> AND <fence>``,
    which writes both rows or neither.
    """
    now: ColumnElement[float] = literal_column(now_sql(dialect.name), Double())
    # Named: SQLAlchemy names an anonymous value after its column, which may be the
    # project's column's name too.
    sets = {
        table.c[n]: now + bindparam(f"renderstate_set_{n}", v.seconds, Double())
        if isinstance(v, DatabaseTime)
        else bindparam(f"renderstate_set_{n}", v, table.c[n].type)
        for n, v in values.items()
    }
    if dialect.name != "postgresql":
        # Always true, but it names both tables in one comparison: without it SQLAlchemy
        # warns of a cartesian product (there is one: one row by one row).
        key = next(iter(_key(update)))
        linked = tuple_(table.c.id, key) == tuple_(table.c.id, key)
        return update.where(*fence, linked).values(sets)
    held = (
        select(literal(1).label("held"))
        .select_from(table)
        .where(*fence)
        .with_for_update()
        .cte("renderstate_fold_attempt")
    )
    written = (
        update.where(exists(select(held.c.held)))
        .returning(*_key(update))
        .cte("renderstate_fold_project")
    )
    after = exists(select(literal(1)).select_from(written))
    return table.update().where(*fence, after).values(sets)
