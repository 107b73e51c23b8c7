"""The SQLAlchemy store's statements: built once per shape, the database's clock inside.

Every value is a bound parameter, so :class:`~renderstate.ledger.sqlalchemy.SQLAlchemyAttemptStore`
keeps each statement it sends (per database and shape) and SQLAlchemy keys and compiles it
once; a time the database chooses is its clock (:func:`~renderstate.ledger._clock.now_sql`)
plus a parameter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, cast

from sqlalchemy import (
    Double,
    Table,
    and_,
    bindparam,
    case,
    event,
    exists,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import ColumnElement

from renderstate._attempts import ACTIVE_STATES, FIELDS, DatabaseTime
from renderstate.ledger._clock import now_sql
from renderstate.ledger._renewals import PROGRESS_FIELDS, RowRenewal

__all__ = [
    "InsertParts",
    "UpdateParts",
    "UpdateShape",
    "compared",
    "database_time",
    "fold_parameters",
    "folded_insert",
    "folded_update",
    "insert_after_update",
    "insert_finding_live",
    "insert_parts",
    "renew_statement",
    "returned",
    "sends_then",
    "sent_then",
    "then",
    "then_parameters",
    "update_parts",
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


def returned(table: Table, timed: frozenset[str]) -> list[ColumnElement[Any]]:
    """What an attempt's ``INSERT`` returns: its id and the times the database chose.

    Every other column holds what the store sent, so the store builds the attempt as
    stored from those; a row of every column cost the driver and SQLAlchemy a column
    description and a result processor each (25 of them, on every start).
    """
    return [table.c.id, *(table.c[name] for name in sorted(timed))]


def insert_finding_live(table: Table, dialect: Dialect, timed: frozenset[str]) -> Insert:
    """The ``INSERT ... RETURNING`` of ``insert_and_find_live``, every value a parameter.

    A time the database chooses (those named in ``timed``) is its clock plus a parameter,
    so the store builds, keys and compiles the statement once, not once per start. It
    returns :func:`returned` and whether the project has another live attempt.
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
    answer = [*returned(t, timed), others.label("renderstate_others")]
    return insert(t).values(values).returning(*answer)


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


class InsertParts(NamedTuple):
    """The attempt's ``INSERT ... SELECT``, but for what it selects from: built once per shape.

    Every value is a named parameter (:func:`then_parameters`), so the statement around
    the adapter's ``UPDATE`` costs little Python per call.
    """

    names: list[str]
    row: Sequence[ColumnElement[Any]]
    returning: Sequence[ColumnElement[Any]]


def insert_parts(table: Table, dialect: Dialect, timed: frozenset[str]) -> InsertParts:
    """The parts of the attempt's ``INSERT``; ``timed`` names the database's times."""
    t = table
    other = t.alias("renderstate_other")
    named = dialect.identifier_preparer.format_table(t)
    others = (
        select(other.c.id)
        .where(
            other.c.scope == bindparam("renderstate_scope", type_=t.c.scope.type),
            other.c.project_key == bindparam("renderstate_key", type_=t.c.project_key.type),
            # Not IN: an IN's parameters are expanded when the statement runs.
            or_(*[other.c.state == bindparam(f"renderstate_{s.value}") for s in ACTIVE_STATES]),
            other.c.id != literal_column(f"{named}.id"),
        )
        .exists()
    )
    now: ColumnElement[float] = literal_column(now_sql(dialect.name), Double())
    names = [name for name in FIELDS if name != "id"]
    row = [
        (
            now + bindparam(f"renderstate_then_{n}", type_=Double())
            if n in timed
            else bindparam(f"renderstate_then_{n}", type_=t.c[n].type)
        ).label(n)
        for n in names
    ]
    return InsertParts(names, row, [*returned(t, timed), others.label("renderstate_others")])


def folded_insert(update: Update, table: Table, parts: InsertParts) -> Insert:
    """The project's guarded ``UPDATE`` with the attempt's insert, as one statement (PostgreSQL).

    ``WITH renderstate_fold_project AS (UPDATE <project> ... WHERE <guard> RETURNING <key>)
    INSERT INTO <attempts> (...) SELECT ... FROM renderstate_fold_project RETURNING ...``:
    the attempt is inserted exactly when the guarded ``UPDATE`` wrote the project's row,
    and the row returned says, as :func:`insert_finding_live`'s does, whether the project
    has another live attempt. No row: nothing was written. Its parameters are
    :func:`then_parameters`.
    """
    written = update.returning(*_key(update)).cte("renderstate_fold_project")
    row = select(*parts.row).select_from(written)
    return insert(table).from_select(parts.names, row).returning(*parts.returning)


class UpdateParts(NamedTuple):
    """The attempt's fenced write, built once per shape (every value a named parameter)."""

    fence: list[ColumnElement[bool]]
    sets: dict[Any, ColumnElement[Any]]
    held: Any
    """PostgreSQL: the attempt's row where the fence holds, locked (a CTE)."""


def update_parts(
    table: Table,
    dialect: Dialect,
    values: Mapping[str, object],
    *,
    states: Sequence[str],
    worker: bool,
    owner: bool,
    uncancelled: bool,
) -> UpdateParts:
    """The parts of the attempt's fenced write; its parameters are :func:`fold_parameters`.

    The fence is :func:`update_statement`'s: live (``states``), and the worker or owner
    that holds it, and nobody asked to cancel it (``uncancelled``).
    """
    c = table.c
    fence = [c.id == bindparam("renderstate_fence_id", type_=c.id.type), c.state.in_(states)]
    if worker:
        fence.append(c.worker == bindparam("renderstate_fence_worker", type_=c.worker.type))
    if owner:
        fence.append(c.owner == bindparam("renderstate_fence_owner", type_=c.owner.type))
    if uncancelled:
        fence.append(c.cancel_requested_at.is_(None))
    now: ColumnElement[float] = literal_column(now_sql(dialect.name), Double())
    # Named: SQLAlchemy names an anonymous value after its column, which may be the
    # project's column's name too.
    sets = {
        c[n]: now + bindparam(f"renderstate_set_{n}", type_=Double())
        if isinstance(v, DatabaseTime)
        else bindparam(f"renderstate_set_{n}", type_=c[n].type)
        for n, v in values.items()
    }
    held = (
        select(literal(1).label("held"))
        .select_from(table)
        .where(*fence)
        .with_for_update()
        .cte("renderstate_fold_attempt")
    )
    return UpdateParts(fence, sets, held)


def fold_parameters(
    values: Mapping[str, object], attempt_id: int, worker: str | None, owner: str | None
) -> dict[str, object]:
    """The parameters of :func:`folded_update`."""
    params: dict[str, object] = {
        f"renderstate_set_{n}": v.seconds if isinstance(v, DatabaseTime) else v
        for n, v in values.items()
    }
    params["renderstate_fence_id"] = attempt_id
    if worker is not None:
        params["renderstate_fence_worker"] = worker
    if owner is not None:
        params["renderstate_fence_owner"] = owner
    return params


def folded_update(update: Update, table: Table, dialect: Dialect, parts: UpdateParts) -> Update:
    """The project's guarded ``UPDATE`` with the attempt's fenced write, as one statement.

    PostgreSQL: ``WITH renderstate_fold_attempt AS (SELECT ... FROM <attempts> WHERE
    <fence> FOR UPDATE), renderstate_fold_project AS (UPDATE <project> ... WHERE <guard>
    AND EXISTS (renderstate_fold_attempt) RETURNING <key>) UPDATE <attempts> ... WHERE
    <fence> AND EXISTS (renderstate_fold_project)``: the attempt's row is locked first (as
    when it was written first), and both rows are written, or neither. MySQL/MariaDB:
    one multi-table ``UPDATE <project>, <attempts> SET ... WHERE <guard> AND <fence>``,
    which writes both rows or neither.
    """
    if dialect.name != "postgresql":
        # Always true, but it names both tables in one comparison: without it SQLAlchemy
        # warns of a cartesian product (there is one: one row by one row).
        key = _key(update)[0]
        linked = tuple_(table.c.id, key) == tuple_(table.c.id, key)
        return update.where(*parts.fence, linked).values(parts.sets)
    written = (
        update.where(exists(select(parts.held.c.held)))
        .returning(*_key(update))
        .cte("renderstate_fold_project")
    )
    after = exists(select(literal(1)).select_from(written))
    return table.update().where(*parts.fence, after).values(parts.sets)


# ------------------------------------------------------------------ sent with the project's
# MySQL/MariaDB cannot insert and update in one statement. A connection opened with the
# protocol's multi-statements flag takes both in one round trip: the guarded UPDATE, then
# an INSERT that inserts only where the UPDATE matched the row (ROW_COUNT() = 1).

MULTI_STATEMENTS: Final = 1 << 16
"""CLIENT.MULTI_STATEMENTS, the MySQL protocol's flag (PyMySQL and mysqlclient alike)."""

_THEN: Final = "renderstate_then"
_SENT: Final = "renderstate_then_sent"
_HOOKING = threading.Lock()


def insert_after_update(table: Table, dialect: Dialect, timed: frozenset[str]) -> str:
    """The attempt's ``INSERT`` sent after the start's guarded ``UPDATE`` (MySQL/MariaDB).

    ``INSERT ... SELECT ... FROM DUAL WHERE ROW_COUNT() = 1 RETURNING ...``: it inserts
    the attempt only when the ``UPDATE`` sent before it matched the project's row
    (SQLAlchemy asks for found rows, not changed rows), and returns it with whether the
    project has another live attempt, as :func:`insert_finding_live` does. Its parameters
    are :func:`then_parameters` (named, so they do not meet the ``UPDATE``'s); the SQL is
    compiled once per shape.
    """
    parts = insert_parts(table, dialect, timed)
    row = select(*parts.row).where(text("ROW_COUNT() = 1"))
    stmt = insert(table).from_select(parts.names, row).returning(*parts.returning)
    return str(stmt.compile(dialect=dialect))


def then_parameters(values: Mapping[str, object], scope: str, key: str) -> dict[str, object]:
    """The parameters of :func:`insert_after_update` for an attempt's stored values."""
    params: dict[str, object] = {
        f"renderstate_then_{name}": value.seconds if isinstance(value, DatabaseTime) else value
        for name, value in values.items()
    }
    params["renderstate_scope"] = scope
    params["renderstate_key"] = key
    params.update({f"renderstate_{s.value}": s.value for s in ACTIVE_STATES})
    return params


def sends_then(connection: Connection) -> bool:
    """Whether a statement can follow the adapter's ``UPDATE`` on ``connection`` in one trip.

    A MySQL/MariaDB connection opened with :data:`MULTI_STATEMENTS` whose driver takes
    named parameters (PyMySQL). Its engine then gets, once, the two hooks that send the
    statement :func:`then` names and read its result.
    """
    dbapi = connection.connection.dbapi_connection
    flags = getattr(dbapi, "client_flag", 0)
    if not isinstance(flags, int) or not flags & MULTI_STATEMENTS:
        return False
    if connection.dialect.paramstyle != "pyformat":
        return False
    engine = connection.engine
    with _HOOKING:
        if not event.contains(engine, "before_cursor_execute", _send_then):
            event.listen(engine, "before_cursor_execute", _send_then, retval=True)
            event.listen(engine, "after_cursor_execute", _read_then)
    return True


def then(update: Update, sql: str, params: Mapping[str, object]) -> Update:
    """``update``, to be sent with ``sql`` after it in one round trip (see :func:`sends_then`).

    Its result is then ``sql``'s: the rows it returns.
    """
    return update.execution_options(**{_THEN: (sql, params)})


def sent_then(result: CursorResult[Any]) -> bool:
    """Whether the statement :func:`then` named was sent with the ``UPDATE``.

    ``False``: the hook missed a connection made before it was installed, and the
    ``UPDATE`` went alone.
    """
    return bool(getattr(result.context, _SENT, False))


def _send_then(  # noqa: PLR0917 - SQLAlchemy's event signature
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    then = None if context is None else context.execution_options.get(_THEN)
    if then is None or executemany or not isinstance(parameters, dict):
        return statement, parameters
    sql, params = then
    setattr(context, _SENT, True)
    return f"{statement}; {sql}", {**parameters, **params}


def _read_then(  # noqa: PLR0917 - SQLAlchemy's event signature
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    if getattr(context, _SENT, False):
        cursor.nextset()  # the INSERT's result: the rows the statement's result holds
