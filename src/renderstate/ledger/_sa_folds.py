"""The SQLAlchemy store's folded writes: the attempt's row in the project's guarded ``UPDATE``.

The statements (built once per shape, every value a parameter) and :class:`Folds`, which
keeps them per adapter statement and write shape and hands the ledger a :class:`Ride`
for each start and end; see :mod:`renderstate.ledger._folding` for the ledger's side and
:class:`~renderstate.adapters.sqlalchemy.Rider` for the adapter's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Final, Generic, NamedTuple, TypeVar, cast

from sqlalchemy import (
    Double,
    Table,
    bindparam,
    event,
    exists,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import ColumnElement

from renderstate._attempts import (
    ACTIVE_STATES,
    FIELDS,
    Attempt,
    AttemptState,
    DatabaseTime,
    stored_values,
)
from renderstate.adapters.sqlalchemy import riding
from renderstate.ledger._clock import now_sql
from renderstate.ledger._sa_statements import landed, returned

__all__ = [
    "MULTI_STATEMENTS",
    "Folds",
    "InsertParts",
    "Ride",
    "UpdateParts",
    "fold_parameters",
    "folded_insert",
    "folded_update",
    "insert_after_update",
    "insert_parts",
    "sends_then",
    "sent_then",
    "then",
    "then_parameters",
    "update_parts",
]

T = TypeVar("T")

_MOST_FOLDS: Final = 256


class Folds:
    """The folded statements of one store's table, built once per shape.

    Args:
        table: The ledger's table.
        alone: The store's ``insert_and_find_live``, for a start whose ``UPDATE`` went
            without the attempt's ``INSERT``.
        transaction: The store's session in its current transaction (the joined one).
    """

    def __init__(
        self,
        table: Table,
        *,
        alone: Callable[[Attempt], tuple[Attempt, bool]],
        transaction: Callable[[], AbstractContextManager[Session]],
    ) -> None:
        self.table = table
        self._alone = alone
        self._transaction = transaction
        self._thens: dict[tuple[str, frozenset[str]], str] = {}
        self._inserted: dict[tuple[str, frozenset[str]], InsertParts] = {}
        self._written: dict[tuple[Any, ...], UpdateParts] = {}
        self._folds: dict[tuple[Any, ...], Executable] = {}

    def insert(self, connection: Connection, attempt: Attempt) -> Ride[tuple[Attempt, bool]] | None:
        """Insert ``attempt`` with the start's guarded ``UPDATE`` of the project.

        ``connection`` is the one the adapter writes on: on PostgreSQL one statement where there
        were two (a data-modifying ``WITH``); on MySQL/MariaDB, which cannot insert and
        update in one statement, both statements in one round trip where the connection
        was opened with the multi-statements flag (``client_flag``, with PyMySQL; the
        command line's store opens its own so). Elsewhere ``None``, and the ledger
        inserts with the store's ``insert_and_find_live``.
        """
        values = stored_values({name: getattr(attempt, name) for name in FIELDS})
        del values["id"]
        table = self.table
        dialect = connection.dialect
        timed = frozenset(n for n, v in values.items() if isinstance(v, DatabaseTime))
        params = then_parameters(values, attempt.scope, attempt.project_key)
        if dialect.name == "postgresql":
            parts = self._inserted.get((dialect.name, timed))
            if parts is None:
                parts = insert_parts(table, dialect, timed)
                self._inserted[dialect.name, timed] = parts

            def fold(update: Update, dialect: Dialect) -> tuple[Executable, Mapping[str, Any]]:
                return self._folded(
                    (update, dialect.name, timed), lambda: folded_insert(update, table, parts)
                ), params

            def land(result: CursorResult[Any]) -> tuple[Attempt, bool] | None:
                row = result.first()
                return None if row is None else landed(attempt, row)

            return Ride(fold, land)
        if not sends_then(connection):
            return None
        sql = self._thens.get((dialect.name, timed))
        if sql is None:
            sql = insert_after_update(table, dialect, timed)
            self._thens[dialect.name, timed] = sql

        def send(update: Update, dialect: Dialect) -> tuple[Executable, Mapping[str, Any]]:
            return then(update, sql, params), {}

        def read(result: CursorResult[Any]) -> tuple[Attempt, bool] | None:
            if not sent_then(result):  # the UPDATE went alone: insert after it
                return self._alone(attempt) if result.rowcount == 1 else None
            row = result.first()
            return None if row is None else landed(attempt, row)

        return Ride(send, read)

    def update(
        self,
        connection: Connection,
        attempt_id: int,
        values: Mapping[str, object],
        *,
        states: Collection[AttemptState],
        worker: str | None,
        owner: str | None,
        uncancelled: bool,
        refused: Callable[[], BaseException],
    ) -> Ride[bool] | None:
        """Write ``values`` to the attempt in the end's guarded ``UPDATE`` of the project.

        Fenced as the store's ``update`` is, in the same statement as the project's row
        (see :func:`folded_update`), on PostgreSQL and MySQL/MariaDB. When the statement
        wrote nothing and the attempt's fence does not hold (read again, under a lock on
        MySQL/MariaDB), ``refused()`` is raised.
        """
        dialect = connection.dialect
        table = self.table
        stored = stored_values(values)
        live = tuple(sorted(AttemptState(s).value for s in states))
        shape = (
            dialect.name,
            tuple((n, isinstance(v, DatabaseTime)) for n, v in stored.items()),
            live,
            worker is not None,
            owner is not None,
            uncancelled,
        )
        parts = self._written.get(shape)
        if parts is None:
            parts = update_parts(
                table,
                dialect,
                stored,
                states=live,
                worker=worker is not None,
                owner=owner is not None,
                uncancelled=uncancelled,
            )
            self._written[shape] = parts
        params = fold_parameters(stored, attempt_id, worker, owner)
        # A multi-table UPDATE counts the rows it matched in both tables.
        both = 1 if dialect.name == "postgresql" else 2

        def fold(update: Update, dialect: Dialect) -> tuple[Executable, Mapping[str, Any]]:
            return self._folded(
                (update, shape), lambda: folded_update(update, table, dialect, parts)
            ), params

        def land(result: CursorResult[Any]) -> bool | None:
            if result.rowcount == both:
                return True
            # Nothing was written: the attempt's fence, or the project's guard?
            query = select(table.c.id).where(*parts.fence).params(params)
            if both == 2:
                query = query.with_for_update()  # REPEATABLE READ: not the old snapshot
            with self._transaction() as session:
                if session.execute(query).first() is None:
                    raise refused()
            return None

        return Ride(fold, land)

    def _folded(self, key: tuple[Any, ...], build: Callable[[], Executable]) -> Executable:
        """The folded statement of ``key`` (the adapter's statement and the write's shape).

        The adapter keeps one statement per shape, so each folded statement is built once
        and SQLAlchemy keys it once, where building and keying it took longer than the
        round trip it saves.
        """
        folded = self._folds.get(key)
        if folded is None:
            folded = build()
            if len(self._folds) >= _MOST_FOLDS:
                self._folds.clear()
            self._folds[key] = folded
        return folded


class Ride(Generic[T]):
    """One write of the ledger's table riding in the adapter's guarded ``UPDATE``.

    A :class:`~renderstate.adapters.sqlalchemy.Rider` for the adapter and a
    :class:`~renderstate.ledger._folding.Ride` for the ledger: ``with`` it, the next
    guarded ``UPDATE`` on the joined session is ``fold``'s statement, and :attr:`landed`
    what ``land`` read from its result once it wrote.
    """

    def __init__(
        self,
        fold: Callable[[Update, Dialect], tuple[Executable, Mapping[str, Any]]],
        land: Callable[[CursorResult[Any]], T | None],
    ) -> None:
        self._fold = fold
        self._land = land
        self._riding: Any = None
        self.landed: T | None = None
        """What the folded statement wrote, once it did."""

    def fold(self, update: Update, dialect: Dialect) -> tuple[Executable, Mapping[str, Any]] | None:
        return None if self.landed is not None else self._fold(update, dialect)

    def wrote(self, result: CursorResult[Any]) -> bool:
        self.landed = self._land(result)
        return self.landed is not None

    def __enter__(self) -> None:
        self._riding = riding(self)
        self._riding.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._riding.__exit__(kind, error, traceback)


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
