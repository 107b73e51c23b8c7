"""The SQLAlchemy adapter: one conditional ``UPDATE`` per transition, through your session.

Install with ``pip install 'renderstate[sqlalchemy]'``. The mapped class needs no mixin,
column or migration::

    from renderstate import ProjectLifecycle
    from renderstate.adapters.sqlalchemy import SQLAlchemyAdapter

    ProjectLifecycle(project, adapter=SQLAlchemyAdapter(session)).start_render()

With an :class:`~sqlalchemy.ext.asyncio.AsyncSession` (``pip install
'renderstate[sqlalchemy-async]'``), :class:`AsyncSQLAlchemyAdapter` writes the same
statement without blocking the event loop; both share every step below but the I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Final, Protocol, cast

try:
    from sqlalchemy import (
        CursorResult,
        Enum,
        String,
        Table,
        bindparam,
        inspect,
        select,
        type_coerce,
        update,
    )
    from sqlalchemy import cast as sql_cast
    from sqlalchemy.dialects.mysql import BINARY
    from sqlalchemy.engine import Dialect
    from sqlalchemy.orm import Mapper, Session, sessionmaker
    from sqlalchemy.orm.attributes import set_committed_value
    from sqlalchemy.orm.state import InstanceState
    from sqlalchemy.schema import Column
    from sqlalchemy.sql.base import Executable
    from sqlalchemy.sql.dml import Update
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        "renderstate.adapters.sqlalchemy needs SQLAlchemy; "
        "install it with: pip install 'renderstate[sqlalchemy]'"
    )
    raise ImportError(msg) from exc

try:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
except ImportError as exc:  # SQLAlchemy without greenlet: the sync adapter still works
    _ASYNC_MISSING: ImportError | None = exc
else:
    _ASYNC_MISSING = None

from renderstate._fields import unknown_columns
from renderstate._records import Change
from renderstate.adapters._checks import check_length, foreign_object
from renderstate.exceptions import ProjectNotFoundError

__all__ = ["AsyncSQLAlchemyAdapter", "Rider", "SQLAlchemyAdapter", "joined", "riding"]

_JOINED: ContextVar[Session | None] = ContextVar("renderstate_sqlalchemy_joined", default=None)
_RIDER: ContextVar[Rider | None] = ContextVar("renderstate_sqlalchemy_rider", default=None)


class Rider(Protocol):
    """Another table's write that travels in the adapter's guarded ``UPDATE``: one statement.

    The attempt ledger's SQLAlchemy store is one: with a ledger, a start's attempt row and
    a completion's fenced write of it ride in the project's own guarded ``UPDATE`` (a
    data-modifying ``WITH`` on PostgreSQL, a multi-table ``UPDATE`` on MySQL/MariaDB), so
    a transition with a ledger costs the database one statement, as without one.
    """

    def fold(self, update: Update, dialect: Dialect) -> tuple[Executable, Mapping[str, Any]] | None:
        """Return the statement to send instead of ``update`` and its own parameters.

        The statement returned writes the project's row exactly as ``update`` (the
        guarded ``UPDATE``) would, and only where the rider's own condition holds too;
        where either does not hold it writes nothing at all. ``None``: send ``update`` as
        it is (a rider that has written returns it).
        """

    def wrote(self, result: CursorResult[Any]) -> bool:
        """Whether the folded statement wrote the project's row (and so the rider's).

        When it wrote nothing, the rider may raise its own refusal (its condition did not
        hold); returning ``False`` lets the lifecycle read the project's status and decide.
        """


@contextmanager
def riding(rider: Rider) -> Iterator[None]:
    """Fold ``rider`` into the next guarded ``UPDATE`` on the session :func:`joined` set.

    An adapter on any other session (or none joined) sends its own statement and never
    asks the rider.
    """
    token = _RIDER.set(rider)
    try:
        yield
    finally:
        _RIDER.reset(token)


@contextmanager
def joined(session: Session) -> Iterator[Session]:
    """Make every :class:`SQLAlchemyAdapter` call in this block use ``session``.

    The attempt ledger uses it to put a transition and its ledger writes in one
    transaction; the caller manages ``session``'s transaction.
    """
    token = _JOINED.set(session)
    try:
        yield session
    finally:
        _JOINED.reset(token)


# MySQL and MariaDB run REPEATABLE READ by default: inside a caller's transaction a plain
# SELECT after a refused UPDATE would still see the transaction's old snapshot. Their default
# collations also compare case- and trailing-space-insensitively.
_MYSQL = frozenset({"mysql", "mariadb"})

_ASYNC_NAME = "AsyncSQLAlchemyAdapter"


class SQLAlchemyAdapter:
    """Persists transitions of mapped objects with one ``UPDATE ... WHERE pk AND status IN``.

    Args:
        session: A :class:`~sqlalchemy.orm.Session`, used as it is: the write joins the
            session's transaction, and the adapter commits only a transaction it began
            itself. Or a :class:`~sqlalchemy.orm.sessionmaker`: each transition then runs
            in a fresh session committed at once, so the adapter can be shared between
            threads and others see ``PROCESSING`` as soon as ``start_render()`` returns.
    """

    __slots__ = ("_factory", "_session")

    takes_riders: Final = True
    """Whether a :class:`Rider` set by :func:`riding` rides in this adapter's ``UPDATE`` (on
    the session :func:`joined` set)."""

    def __init__(self, session: Session | sessionmaker[Session]) -> None:
        if isinstance(session, Session):
            self._session: Session | None = session
            self._factory: Callable[[], Session] | None = None
        else:
            self._session = None
            self._factory = session

    def __repr__(self) -> str:
        return f"<SQLAlchemyAdapter {self._session or self._factory!r}>"

    def apply(self, project: object, change: Change) -> bool:
        """Write ``change`` with one conditional ``UPDATE``; see :class:`.Adapter`.

        Besides the changed columns, the ``UPDATE`` sets the columns with an ``onupdate``
        default (such as ``updated_at``), as a flush would. The new values are set on
        ``project`` as committed state, so the next flush does not write them again.

        Raises:
            ProjectNotFoundError: ``project`` was never flushed, or its row is gone.
            InvalidOutputPathError: the output path is longer than its ``String(length)``.
            TypeError: ``project`` is not an instance of a mapped class, or the status or
                output column is not on the class's own table (joined-table inheritance
                with the columns on the parent).
        """
        plan = _plan(project, change)
        with self._transaction() as session:
            return _execute(session, plan)

    def refresh_status(self, project: object, status_field: str) -> None:
        """Read the stored status into ``project`` (one ``SELECT``); see :class:`.Adapter`.

        Raises:
            ProjectNotFoundError: ``project`` was never flushed, or its row is gone.
            TypeError: ``project`` is not an instance of a mapped class.
        """
        _require_identity(project)
        with self._transaction() as session:
            _refresh(session, project, status_field)

    def project_key(self, project: object) -> object:
        """Return the persisted primary key (a tuple for composite keys), else ``None``."""
        return _project_key(project)

    def empty_output(self, project: object, field: str) -> str | None:
        """Return ``None`` for a nullable column, else ``""``."""
        return _empty_output(project, field)

    def check_fields(self, project: object, names: Collection[str]) -> Mapping[str, int | None]:
        """Check that each name is a mapped column attribute; return its ``String`` length.

        Raises:
            ValueError: a name is no mapped column attribute (a relationship, a property),
                or is part of the primary key.
            TypeError: ``project`` is not an instance of a mapped class.
        """
        return _check_fields(project, names)

    def non_text_fields(self, project: object, names: Collection[str]) -> Mapping[str, str]:
        """The type's name of each of ``names`` whose column holds no text.

        Text columns are ``String``, ``Text``, ``Unicode`` and their kin (an ``Enum``
        excepted); the lifecycle refuses any other as ``error_field`` or ``task_id_field``.

        Raises:
            ValueError: a name is no mapped column attribute, as for :meth:`check_fields`.
            TypeError: ``project`` is not an instance of a mapped class.
        """
        return _non_text_fields(project, names)

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        joined_session = _JOINED.get()
        if joined_session is not None:
            yield joined_session
        elif self._session is None:
            assert self._factory is not None
            with self._factory() as session, session.begin():
                yield session
        elif self._session.in_transaction():
            yield self._session
        else:
            with self._session.begin():
                yield self._session


class AsyncSQLAlchemyAdapter:
    """:class:`SQLAlchemyAdapter` for asyncio: the same one ``UPDATE``, awaited.

    Implements :class:`~renderstate.typing.AsyncAdapter`. It behaves exactly as the
    synchronous adapter (the statement, the ``onupdate`` columns, the locking re-read on
    MySQL and MariaDB, the transaction rules) because it runs the same code in
    SQLAlchemy's asyncio bridge (:meth:`~sqlalchemy.ext.asyncio.AsyncSession.run_sync`).

    Columns computed by the database (``onupdate=func.now()``, ``server_onupdate``) are
    expired on the project, as with the synchronous adapter; in asyncio code read them
    with ``await session.refresh(project, ["column"])`` (or SQLAlchemy's
    :class:`~sqlalchemy.ext.asyncio.AsyncAttrs`), since a lazy load cannot run there.

    Args:
        session: An :class:`~sqlalchemy.ext.asyncio.AsyncSession`, used as it is: the write
            joins the session's transaction, and the adapter commits only a transaction it
            began itself. Or an :class:`~sqlalchemy.ext.asyncio.async_sessionmaker`: each
            transition then runs in a fresh session committed at once, so one adapter can
            serve every request of an application.

    Raises:
        ImportError: the ``greenlet`` package that SQLAlchemy's asyncio support needs is
            missing; the message quotes the install command.
    """

    __slots__ = ("_factory", "_session")

    def __init__(self, session: AsyncSession | async_sessionmaker[AsyncSession]) -> None:
        if _ASYNC_MISSING is not None:
            msg = (
                "AsyncSQLAlchemyAdapter needs SQLAlchemy's asyncio support (greenlet); "
                "install it with: pip install 'renderstate[sqlalchemy-async]'"
            )
            raise ImportError(msg) from _ASYNC_MISSING
        if isinstance(session, AsyncSession):
            self._session: AsyncSession | None = session
            self._factory: Callable[[], AsyncSession] | None = None
        elif isinstance(session, async_sessionmaker):
            self._session = None
            self._factory = session
        else:  # callers without a type checker do pass a Session or a sessionmaker
            msg = (  # type: ignore[unreachable]
                f"AsyncSQLAlchemyAdapter takes an AsyncSession or an async_sessionmaker, not "
                f"{type(session).__name__}; for a Session or sessionmaker use SQLAlchemyAdapter"
            )
            raise TypeError(msg)

    def __repr__(self) -> str:
        return f"<AsyncSQLAlchemyAdapter {self._session or self._factory!r}>"

    async def apply(self, project: object, change: Change) -> bool:
        """Write ``change`` with one conditional ``UPDATE``; see :meth:`SQLAlchemyAdapter.apply`.

        Raises:
            ProjectNotFoundError: ``project`` was never flushed, or its row is gone.
            TypeError: the status or output column is not on the class's own table.
        """
        plan = _plan(project, change, _ASYNC_NAME)
        async with self._transaction() as session:
            return await session.run_sync(_execute, plan)

    async def refresh_status(self, project: object, status_field: str) -> None:
        """Read the stored status into ``project`` (one ``SELECT``); see :class:`.Adapter`.

        Raises:
            ProjectNotFoundError: ``project`` was never flushed, or its row is gone.
        """
        _require_identity(project, _ASYNC_NAME)
        async with self._transaction() as session:
            await session.run_sync(_refresh, project, status_field)

    def project_key(self, project: object) -> object:
        """Return the persisted primary key (a tuple for composite keys), else ``None``."""
        return _project_key(project, _ASYNC_NAME)

    def empty_output(self, project: object, field: str) -> str | None:
        """Return ``None`` for a nullable column, else ``""``."""
        return _empty_output(project, field, _ASYNC_NAME)

    def check_fields(self, project: object, names: Collection[str]) -> Mapping[str, int | None]:
        """Check the names as :meth:`SQLAlchemyAdapter.check_fields` does (no query)."""
        return _check_fields(project, names, _ASYNC_NAME)

    def non_text_fields(self, project: object, names: Collection[str]) -> Mapping[str, str]:
        """The names holding no text, as :meth:`SQLAlchemyAdapter.non_text_fields` (no query)."""
        return _non_text_fields(project, names, _ASYNC_NAME)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        if self._session is None:
            assert self._factory is not None
            async with self._factory() as session, session.begin():
                yield session
        elif self._session.in_transaction():
            yield self._session
        else:
            async with self._session.begin():
                yield self._session


# ------------------------------------------------------------------ shared by both adapters


@dataclasses.dataclass(frozen=True)
class _Plan:
    """One transition's conditional UPDATE, built and checked before any I/O."""

    project: object
    change: Change
    mapper: Mapper[Any]
    table: Table
    where: list[Any]
    keys: list[Any]
    identity: tuple[Any, ...]
    status: Column[Any]
    values: dict[Column[Any], Any]
    server_side: list[Column[Any]]


def _require_identity(project: object, adapter: str = "SQLAlchemyAdapter") -> tuple[Any, ...]:
    identity: tuple[Any, ...] | None = _state(project, adapter).identity
    if identity is None:
        raise ProjectNotFoundError(project_key=None)
    return identity


def _plan(project: object, change: Change, adapter: str = "SQLAlchemyAdapter") -> _Plan:
    """Build the guarded ``UPDATE`` for ``change``; raise before any I/O if it cannot be."""
    state = _state(project, adapter)
    identity = _require_identity(project, adapter)
    mapper = state.mapper
    table = cast("Table", mapper.local_table)
    where = [col == value for col, value in zip(mapper.primary_key, identity, strict=True)]
    status = _column(mapper, change.status_field)
    values = {_column(mapper, name): value for name, value in change.values.items()}
    for column, value in values.items():
        if column is not status:
            check_length(value, getattr(column.type, "length", None), column.name)
    elsewhere = sorted((c for c in values if c.table is not table), key=lambda c: c.key)
    if elsewhere:
        names = ", ".join(c.key for c in elsewhere)
        tables = ", ".join(sorted({str(getattr(c.table, "name", c.table)) for c in elsewhere}))
        are, them = ("is a column", "it") if len(elsewhere) == 1 else ("are columns", "them")
        cls = mapper.class_.__name__
        msg = (
            f"{cls}: {names} {are} of {tables}, not of {table.name}, the class's own "
            f"table; the adapter writes one conditional UPDATE to that table only. "
            f"With joined-table inheritance, move {them} to {table.name}, or map {cls} "
            f"with single-table inheritance (no __tablename__ of its own) so it shares "
            f"its parent's table"
        )
        raise TypeError(msg)
    # Columns whose onupdate is a SQL expression (or server_onupdate) get their value in
    # the database; they are expired after the write rather than guessed.
    server_side = [
        c
        for c in table.columns
        if c not in values
        and (
            c.server_onupdate is not None
            or (c.onupdate is not None and getattr(c.onupdate, "is_clause_element", False))
        )
    ]
    keys = list(mapper.primary_key)
    return _Plan(project, change, mapper, table, where, keys, identity, status, values, server_side)


def _execute(session: Session, plan: _Plan) -> bool:
    """Run ``plan`` in ``session``'s transaction; on refusal, read the stored status."""
    project, mapper = plan.project, plan.mapper
    binary = session.get_bind().dialect.name in _MYSQL and all(
        isinstance(literal, str) for literal in plan.change.expected
    )
    stmt, params = _statement(plan, binary=binary)
    rider = _RIDER.get() if session is _JOINED.get() else None
    folded = None if rider is None else rider.fold(stmt, session.get_bind().dialect)
    if rider is None or folded is None:
        result = cast("CursorResult[Any]", session.execute(stmt, params))
        applied = result.rowcount == 1
    else:
        result = cast("CursorResult[Any]", session.execute(folded[0], {**params, **folded[1]}))
        applied = rider.wrote(result)
    if applied:
        # The Python-side onupdate values the UPDATE was sent with, by column key (a
        # folded statement may be an INSERT around the UPDATE: not last_updated_params()).
        sent = result.context.compiled_parameters[0]
        for column in plan.table.columns:
            if column in plan.values:
                value = plan.values[column]
            elif column.onupdate is not None and column.key in sent:
                value = sent[column.key]
            else:
                continue
            set_committed_value(project, mapper.get_property_by_column(column).key, value)
        state: InstanceState[Any] = inspect(project)
        if plan.server_side and state.session is not None:
            state.session.expire(
                project, [mapper.get_property_by_column(c).key for c in plan.server_side]
            )
        return True
    _refresh(session, project, plan.change.status_field)
    return False


_STATEMENTS: dict[tuple[Any, ...], Update] = {}
"""The guarded UPDATEs, one per shape (table, columns set, statuses expected), every value
a parameter: SQLAlchemy then keys and compiles each once, and a rider folds each once."""
_MOST_STATEMENTS: Final = 512


def _statement(plan: _Plan, *, binary: bool) -> tuple[Update, dict[str, Any]]:
    """The guarded ``UPDATE`` of ``plan``'s shape, and its parameters."""
    columns = tuple(plan.values)
    expected = sorted(plan.change.expected, key=repr)
    shape = (plan.table, columns, plan.status, len(plan.keys), binary)
    stmt = _STATEMENTS.get(shape)
    if stmt is None:
        guard: Any = plan.status
        if binary:
            # 'processing' and 'PROCESSING  ' equal 'PROCESSING' under MySQL's default
            # collations: compare the bytes, as SQLite and PostgreSQL do.
            # type_coerce: the literals stay strings (BINARY would make them bytes).
            guard = type_coerce(sql_cast(plan.status, BINARY()), String())
        where = [
            column == bindparam(f"renderstate_key_{i}", type_=column.type)
            for i, column in enumerate(plan.keys)
        ]
        where.append(guard.in_(bindparam("renderstate_expected", expanding=True)))
        values = {c: bindparam(f"renderstate_value_{c.key}", type_=c.type) for c in columns}
        stmt = update(plan.table).where(*where).values(values)
        if len(_STATEMENTS) >= _MOST_STATEMENTS:
            _STATEMENTS.clear()
        _STATEMENTS[shape] = stmt
    params: dict[str, Any] = {
        f"renderstate_key_{i}": value for i, value in enumerate(plan.identity)
    }
    params["renderstate_expected"] = expected
    params.update({f"renderstate_value_{c.key}": v for c, v in plan.values.items()})
    return stmt, params


def _refresh(session: Session, project: object, status_field: str) -> None:
    state: InstanceState[Any] = inspect(project)
    identity = state.identity
    assert identity is not None
    mapper = state.mapper
    where = [col == value for col, value in zip(mapper.primary_key, identity, strict=True)]
    query = select(_column(mapper, status_field)).where(*where)
    if session.get_bind().dialect.name in _MYSQL:
        # MySQL and MariaDB run REPEATABLE READ: inside the caller's transaction a
        # plain SELECT would still see the snapshot taken before the other writer.
        # An exclusive lock, not a shared one: the UPDATE that usually follows needs
        # it, and two transactions each holding a shared lock deadlock (error 1213).
        query = query.with_for_update()
    found = session.execute(query).first()
    if found is None:
        raise ProjectNotFoundError(project_key=_project_key(project))
    set_committed_value(project, status_field, found[0])


def _project_key(project: object, adapter: str = "SQLAlchemyAdapter") -> object:
    identity = _state(project, adapter).identity
    if identity is None:
        return None
    return identity[0] if len(identity) == 1 else identity


def _empty_output(project: object, field: str, adapter: str = "SQLAlchemyAdapter") -> str | None:
    state = _state(project, adapter)
    return None if _column(state.mapper, field).nullable else ""


def _check_fields(
    project: object, names: Collection[str], adapter: str = "SQLAlchemyAdapter"
) -> dict[str, int | None]:
    mapper = _state(project, adapter).mapper
    attrs = mapper.column_attrs
    keys = set(mapper.primary_key)
    writable = {a.key: a.columns[0] for a in attrs if a.columns and a.columns[0] not in keys}
    unknown = [name for name in names if name not in writable]
    if unknown:
        raise unknown_columns(mapper.class_.__name__, unknown, writable)
    return {name: getattr(writable[name].type, "length", None) for name in names}


def _non_text_fields(
    project: object, names: Collection[str], adapter: str = "SQLAlchemyAdapter"
) -> dict[str, str]:
    _check_fields(project, names, adapter)
    mapper = _state(project, adapter).mapper
    found: dict[str, str] = {}
    for name in names:
        kind = _column(mapper, name).type
        # A TypeDecorator stores what its implementation stores.
        stored = getattr(kind, "impl_instance", kind)
        if not isinstance(stored, String) or isinstance(stored, Enum):
            found[name] = type(kind).__name__
    return found


def _state(project: object, adapter: str = "SQLAlchemyAdapter") -> InstanceState[Any]:
    state = inspect(project, raiseerr=False)
    if not isinstance(state, InstanceState):
        raise foreign_object(
            adapter=adapter,
            expected="instances of SQLAlchemy mapped classes",
            project=project,
        )
    return state


def _column(mapper: Mapper[Any], name: str) -> Column[Any]:
    prop = mapper.get_property(name)
    columns = getattr(prop, "columns", None)
    if not columns:
        msg = (
            f"{mapper.class_.__name__}.{name} is not a mapped column (it is a "
            f"{type(prop).__name__}); pass ProjectLifecycle(status_field=..., output_field=...) "
            f"naming a mapped column attribute of {mapper.class_.__name__}"
        )
        raise TypeError(msg)
    column: Column[Any] = columns[0]
    return column
