"""The SQLAlchemy attempt store: the ledger as a table beside your models.

Install with ``pip install 'renderstate[sqlalchemy]'``. Add the table to your metadata (so
your migrations create it) or create it with :meth:`SQLAlchemyAttemptStore.create_table`::

    from renderstate.ledger import Ledger
    from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore, attempt_table

    attempts = attempt_table(Base.metadata)          # alembic sees it like any table
    ledger = Ledger(SQLAlchemyAttemptStore(Session, table=attempts))
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, Generic, cast

try:
    from sqlalchemy import (
        BigInteger,
        Column,
        CursorResult,
        Double,
        Engine,
        Index,
        Integer,
        MetaData,
        String,
        Table,
        Text,
        insert,
        inspect,
        select,
    )
    from sqlalchemy import (
        text as sql_text,
    )
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session, sessionmaker
    from sqlalchemy.orm.state import InstanceState
    from sqlalchemy.sql.dml import Insert, Update
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        "renderstate.ledger.sqlalchemy needs SQLAlchemy; "
        "install it with: pip install 'renderstate[sqlalchemy]'"
    )
    raise ImportError(msg) from exc

from renderstate._attempts import (
    ACTIVE_STATES,
    FIELDS,
    Attempt,
    AttemptState,
    DatabaseTime,
    attempt_from_row,
    key_values,
    stored_values,
)
from renderstate.adapters.sqlalchemy import _JOINED, joined
from renderstate.exceptions import LedgerSchemaError
from renderstate.ledger import _turns
from renderstate.ledger._clock import written
from renderstate.ledger._deadlocks import retries_deadlocks
from renderstate.ledger._renewals import RowRenewal, matches, skips_locked
from renderstate.ledger._sa_folds import Folds, Ride
from renderstate.ledger._sa_statements import (
    UpdateShape,
    compared,
    database_time,
    insert_finding_live,
    landed,
    renew_statement,
    update_statement,
)
from renderstate.ledger._sa_turns import take_turn
from renderstate.typing import ProjectT

__all__ = ["SQLAlchemyAttemptStore", "SQLAlchemyLoader", "attempt_table", "sweep_turn_table"]

TABLE_NAME: Final = "renderstate_attempt"

_Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

_FOLDS: Final = frozenset({"postgresql", "mysql", "mariadb"})
"""Databases where the attempt's write rides in the project's guarded UPDATE: PostgreSQL
(a data-modifying WITH) and MySQL/MariaDB (a multi-table UPDATE, so for ends only)."""


def attempt_table(metadata: MetaData, name: str = TABLE_NAME) -> Table:
    """Declare the ledger's table in ``metadata`` and return it.

    Times are UNIX seconds in double precision, which every database compares alike. The
    sweep turns' table (:func:`sweep_turn_table`) is declared beside it, so that your
    migrations create both.
    """
    if _turns.table_name(name) not in metadata.tables:
        sweep_turn_table(metadata, _turns.table_name(name))
    return Table(
        name,
        metadata,
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("scope", String(100), nullable=False),
        Column("project_key", String(255), nullable=False),
        Column("state", String(16), nullable=False),
        Column("output_path", String(500)),
        Column("actor", String(255)),
        Column("worker", String(255)),
        Column("lease_expires_at", Double()),
        Column("phase", String(32), nullable=False, default="queued"),
        Column("done", Integer(), nullable=False, default=0),
        Column("total", Integer(), nullable=False, default=0),
        Column("fraction", Double(), nullable=False, default=0.0),
        Column("eta_seconds", Double()),
        Column("error", Text()),
        Column("created_at", Double(), nullable=False),
        Column("started_at", Double()),
        Column("finished_at", Double()),
        Column("owner", String(64)),
        Column("cancel_requested_at", Double()),
        Column("cancel_reason", Text()),
        Column("executor", String(255)),
        Column("task_id", String(255)),
        Column("traceparent", String(64)),
        Column("label", String(255)),
        Index(f"{name}_project", "scope", "project_key", "id"),
        Index(f"{name}_lease", "state", "lease_expires_at"),
    )


def sweep_turn_table(metadata: MetaData, name: str = _turns.TABLE_NAME) -> Table:
    """Declare the sweep turns' table in ``metadata`` and return it.

    One row per task system and kind of project, claimed by the process whose turn it is
    to sweep (:meth:`Ledger.take_sweep_turn <renderstate.ledger.Ledger.take_sweep_turn>`);
    :func:`attempt_table` declares it too.
    """
    return Table(
        name,
        metadata,
        Column("name", String(_turns.NAME_WIDTH), primary_key=True),
        Column("holder", String(_turns.HOLDER_WIDTH)),
        Column("expires_at", Double(), nullable=False),
    )


class SQLAlchemyAttemptStore:
    """Keeps the attempt ledger in a table, in the projects' own database.

    Args:
        session: A :class:`~sqlalchemy.orm.sessionmaker` (each ledger call runs in a fresh
            session, committed at once: share the store between threads), or a
            :class:`~sqlalchemy.orm.Session` used as it is (its transaction is joined; a
            ledger transaction inside it is a savepoint).
        table: The table from :func:`attempt_table`; by default one declared on the
            store's own metadata (create it with :meth:`create_table`).
    """

    def __init__(
        self, session: Session | sessionmaker[Session], *, table: Table | None = None
    ) -> None:
        if isinstance(session, Session):
            self._session: Session | None = session
            self._factory: sessionmaker[Session] | None = None
        else:
            self._session = None
            self._factory = session
        self.table = attempt_table(MetaData()) if table is None else table
        """The ledger's table."""
        missing = [f for f in FIELDS if f not in self.table.c]
        if missing:
            msg = (
                f"table {self.table.name} lacks the ledger columns {missing}; use "
                "attempt_table() to declare it (and add the columns to the database table "
                "with your migrations or create_table())"
            )
            raise ValueError(msg)
        turns = _turns.table_name(self.table.name)
        declared = self.table.metadata.tables.get(turns)
        self.turns = declared if declared is not None else sweep_turn_table(MetaData(), turns)
        """The sweep turns' table (:func:`sweep_turn_table`)."""
        self._turns_made = _turns.TurnRows()
        self._checked = False
        self._inserts: dict[tuple[str, frozenset[str]], Insert] = {}
        self._updates: dict[tuple[str, UpdateShape], Update] = {}
        self._folds = Folds(
            self.table, alone=self.insert_and_find_live, transaction=self._session_in_transaction
        )

    def __repr__(self) -> str:
        return f"<SQLAlchemyAttemptStore table={self.table.name}>"

    def create_table(self, bind: Engine | Connection | None = None) -> None:
        """Create the ledger's tables if they do not exist, or add the columns they lack.

        For scripts and tests; an app with migrations (alembic) adds the columns in a
        migration of its own instead (all nullable: ``owner`` ``String(64)``,
        ``cancel_requested_at`` ``Double``, ``cancel_reason`` ``Text``, ``executor`` and
        ``task_id`` ``String(255)``, ``traceparent`` ``String(64)``, ``label``
        ``String(255)``). A table created by
        an earlier version gains the columns added since, with one ``ALTER TABLE ... ADD
        COLUMN`` each; nothing else is changed.
        """
        if bind is None:
            with self._transaction(checked=False) as session:
                _create_or_upgrade(self.table, session.connection())
        elif isinstance(bind, Engine):
            with bind.begin() as connection:
                _create_or_upgrade(self.table, connection)
        else:
            _create_or_upgrade(self.table, bind)
        self._checked = True

    def _check_schema(self, connection: Connection) -> None:
        """Refuse, once per store, a table that lacks a column this version writes."""
        if self._checked:
            return
        present = _columns(self.table, connection)
        missing = ("*",) if present is None else tuple(c for c in _ADDED if c not in present)
        if missing:
            raise LedgerSchemaError(
                table=self.table.name,
                missing=missing,
                fix="Add them with your migrations (alembic: nullable columns 'owner' "
                "String(64), 'cancel_requested_at' Double, 'cancel_reason' Text, 'executor' "
                "and 'task_id' String(255), 'traceparent' String(64), 'label' String(255)), or "
                "call "
                "SQLAlchemyAttemptStore.create_table(), which creates the table or adds the "
                "columns it lacks.",
            )
        self._checked = True

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _transaction(self, *, checked: bool = True) -> Iterator[Session]:
        with self._session_in_transaction() as session:
            if checked:
                self._check_schema(session.connection())
            yield session

    @contextmanager
    def _session_in_transaction(self) -> Iterator[Session]:
        current = _JOINED.get()
        if current is not None:
            yield current
        elif self._factory is not None:
            with self._factory() as session, session.begin():
                yield session
        else:
            assert self._session is not None
            if self._session.in_transaction():
                yield self._session
            else:
                with self._session.begin():
                    yield self._session

    @contextmanager
    def atomic(self, project: Any) -> Iterator[None]:
        """One transaction (a savepoint inside another) that the adapter joins."""
        current = _JOINED.get() or self._session
        if current is not None and current.in_transaction():
            with current.begin_nested(), joined(current):
                yield
        elif current is not None:
            with current.begin(), joined(current):
                yield
        else:
            assert self._factory is not None
            with self._factory() as session, session.begin(), joined(session):
                yield

    # ------------------------------------------------------------------ the store

    def scope(self, project: Any) -> str:
        """Return the name of the table the project's class is mapped to."""
        state: InstanceState[Any] = inspect(project)
        return str(cast("Table", state.mapper.local_table).name)

    def _in_outer_transaction(self) -> bool:
        """Whether a statement now would run inside a transaction the caller opened."""
        return _JOINED.get() is not None or (
            self._session is not None and self._session.in_transaction()
        )

    @retries_deadlocks
    def insert(self, attempt: Attempt) -> Attempt:
        """Insert ``attempt`` and return it as stored, with the id the database gave it.

        One ``INSERT ... RETURNING`` where the database has it (PostgreSQL, SQLite 3.35+,
        MariaDB 10.5+); elsewhere the row is read back if the database chose its times.
        """
        values = _attempt_kwargs(attempt)
        del values["id"]
        chosen = any(isinstance(v, DatabaseTime) for v in values.values())
        with self._transaction() as session:
            stmt = insert(self.table).values(written(values, database_time(session)))
            if session.connection().dialect.insert_returning:
                row = session.execute(stmt.returning(*self.table.c)).one()
                return attempt_from_row(row._mapping)
            result = cast("CursorResult[Any]", session.execute(stmt))
            inserted = result.inserted_primary_key
            assert inserted is not None
            new_id = int(inserted[0])
            if chosen:
                row = session.execute(select(self.table).where(self.table.c.id == new_id)).one()
                return attempt_from_row(row._mapping)
        return Attempt(**{**_attempt_kwargs(attempt), "id": new_id})

    @retries_deadlocks
    def insert_and_find_live(self, attempt: Attempt) -> tuple[Attempt, bool]:
        """Insert ``attempt``; return it as stored and whether its project has other live ones.

        One ``INSERT ... RETURNING`` whose subquery looks for the project's other queued or
        rendering attempts, where the database returns rows from an ``INSERT``
        (PostgreSQL, SQLite 3.35+, MariaDB 10.5+); elsewhere :meth:`insert`, then
        :meth:`live`.
        """
        with self._transaction() as session:
            dialect = session.connection().dialect
            if not dialect.insert_returning:
                stored = self.insert(attempt)
                return stored, any(
                    a.id != stored.id for a in self.live(stored.scope, stored.project_key)
                )
            values = stored_values(_attempt_kwargs(attempt))
            del values["id"]
            timed = frozenset(n for n, v in values.items() if isinstance(v, DatabaseTime))
            params = {
                name: value.seconds if isinstance(value, DatabaseTime) else value
                for name, value in values.items()
            }
            params["renderstate_scope"] = attempt.scope
            params["renderstate_key"] = attempt.project_key
            stmt = self._inserts.get((dialect.name, timed))
            if stmt is None:
                stmt = insert_finding_live(self.table, dialect, timed)
                self._inserts[dialect.name, timed] = stmt
            return landed(attempt, session.execute(stmt, params).one())

    def ride_insert(self, adapter: object, attempt: Attempt) -> Ride[tuple[Attempt, bool]] | None:
        """Insert ``attempt`` with the start's guarded ``UPDATE`` of the project.

        When ``adapter`` is a :class:`~renderstate.adapters.sqlalchemy.SQLAlchemyAdapter`
        (it then writes on this store's session): on PostgreSQL one statement where there
        were two (a data-modifying ``WITH``); on MySQL/MariaDB, which cannot insert and
        update in one statement, both statements in one round trip where the connection
        was opened with the multi-statements flag (``client_flag``, with PyMySQL; the
        command line's store opens its own so). Elsewhere ``None``, and the ledger
        inserts with :meth:`insert_and_find_live`.
        """
        connection = self._folding(adapter)
        return None if connection is None else self._folds.insert(connection, attempt)

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
        """Write ``values`` to the attempt in the end's guarded ``UPDATE`` of the project.

        Fenced as :meth:`update` is, in the same statement as the project's row (see
        ``folded_update`` in ``_sa_folds``): on PostgreSQL and MySQL/MariaDB, when
        ``adapter`` is a :class:`~renderstate.adapters.sqlalchemy.SQLAlchemyAdapter`; else
        ``None``. When the statement wrote nothing and the attempt's fence does not hold
        (read again, under a lock on MySQL/MariaDB), ``refused()`` is raised.
        """
        connection = self._folding(adapter)
        if connection is None:
            return None
        return self._folds.update(
            connection,
            attempt_id,
            values,
            states=states,
            worker=worker,
            owner=owner,
            uncancelled=uncancelled,
            refused=refused,
        )

    def _folding(self, adapter: object) -> Connection | None:
        """The connection ``adapter`` writes on, if the ledger's writes can ride in its statements.

        They can for the SQLAlchemy adapter on this store's joined session, on PostgreSQL
        and MySQL/MariaDB.
        """
        session = _JOINED.get()
        if session is None or not getattr(adapter, "takes_riders", False):
            return None
        connection = session.connection()
        if connection.dialect.name not in _FOLDS:
            return None
        self._check_schema(connection)
        return connection

    @retries_deadlocks
    def update(
        self,
        attempt_id: int,
        values: Mapping[str, object],
        *,
        states: Collection[AttemptState],
        lease_before: float | DatabaseTime | None = None,
        worker: str | None = None,
        owner: str | None = None,
        uncancelled: bool = False,
    ) -> bool:
        """One ``UPDATE ... WHERE id = ? AND state IN (...)``; see the store Protocol."""
        stored = stored_values(values)
        params: dict[str, object] = {
            f"rs_{name}": value.seconds if isinstance(value, DatabaseTime) else value
            for name, value in stored.items()
        }
        params["rs_id"] = attempt_id
        fences = {"rs_if_lease": lease_before, "rs_if_worker": worker, "rs_if_owner": owner}
        for name, fence in fences.items():
            if fence is not None:
                params[name] = fence.seconds if isinstance(fence, DatabaseTime) else fence
        shape = UpdateShape(
            tuple((n, isinstance(v, DatabaseTime)) for n, v in stored.items()),
            tuple(sorted(AttemptState(s).value for s in states)),
            None if lease_before is None else isinstance(lease_before, DatabaseTime),
            worker is not None,
            owner is not None,
            uncancelled,
        )
        with self._transaction() as session:
            dialect = session.connection().dialect
            stmt = self._updates.get((dialect.name, shape))
            if stmt is None:
                stmt = update_statement(self.table, dialect, shape)
                self._updates[dialect.name, shape] = stmt
            result = cast("CursorResult[Any]", session.execute(stmt, params))
            return result.rowcount == 1

    @retries_deadlocks
    def renew(
        self, rows: Sequence[RowRenewal], lease_expires_at: float | DatabaseTime
    ) -> dict[int, Attempt]:
        """Renew every row's lease (and write its progress) where its fences hold, at once.

        One transaction. On PostgreSQL, one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE
        SKIP LOCKED) ... RETURNING``: a row another transaction holds is left out, not
        waited for, and the rows are locked only while the statement runs; the rows it
        did not renew are read back (only when there are some). On MySQL/MariaDB, which
        have no ``UPDATE ... RETURNING``, one ``SELECT ... FOR UPDATE SKIP LOCKED`` and one
        ``UPDATE`` of the rows it locked. On SQLite, which locks the whole database, the
        ``UPDATE`` first and then the read. Returns the rows as it read them under its
        lock, by id: a row left out was skipped. See
        :meth:`renderstate.ledger.Ledger.renew`.
        """
        t = self.table
        ids = sorted({row.id for row in rows})
        written: set[int] | None = None
        """The ids the UPDATE returned, where it returns them (PostgreSQL)."""
        with self._transaction() as session:
            dialect = session.connection().dialect
            lease = compared(lease_expires_at, database_time(session))
            # Built before the first statement: nothing is locked while Python works.
            update = renew_statement(t, rows, lease)
            read = select(t).where(t.c.id.in_(ids)).order_by(t.c.id)
            found: list[Any]
            if not skips_locked(dialect.name, dialect.server_version_info):
                session.execute(update)
                found = list(session.execute(read))
            elif dialect.update_returning:
                free = select(t.c.id).where(t.c.id.in_(ids)).with_for_update(skip_locked=True)
                found = list(session.execute(update.where(t.c.id.in_(free)).returning(*t.c)))
                written = {row.id for row in found}
                rest = [i for i in ids if i not in written]
                if rest:
                    found += session.execute(select(t).where(t.c.id.in_(rest))).all()
            else:
                found = list(session.execute(read.with_for_update(skip_locked=True)))
                locked = [row.id for row in found]
                if locked:
                    session.execute(update.where(t.c.id.in_(locked)))
        seen = {a.id: a for a in (attempt_from_row(row._mapping) for row in found)}
        for attempt_id in [] if written is None else [i for i in seen if i not in written]:
            # Read back, not written, yet its renewal matches it: another transaction
            # held the row locked and the UPDATE skipped it. Left out, as skipped.
            if any(r.id == attempt_id and matches(r, seen[attempt_id]) for r in rows):
                del seen[attempt_id]
        return seen

    @retries_deadlocks
    def renew_taking_turn(
        self,
        rows: Sequence[RowRenewal],
        lease_expires_at: float | DatabaseTime,
        turn: _turns.TurnClaim,
    ) -> tuple[dict[int, Attempt], bool]:
        """:meth:`renew` and :meth:`take_turn` in one transaction, the turn's ``UPDATE`` last.

        Returns the rows :meth:`renew` read and whether the turn was taken. See
        :meth:`Ledger.renew_and_take_sweep_turn
        <renderstate.ledger.Ledger.renew_and_take_sweep_turn>`.
        """
        with self._transaction() as session, joined(session):
            return self.renew(rows, lease_expires_at), self.take_turn(*turn)

    @retries_deadlocks
    def take_turn(
        self, name: str, holder: str, until: float | DatabaseTime, now: float | DatabaseTime
    ) -> bool:
        """Claim the turn ``name`` until ``until`` if it expired before ``now``: one ``UPDATE``.

        A row another transaction holds locked is refused, not waited for (PostgreSQL's
        ``UPDATE`` skips it; on MySQL/MariaDB a ``SELECT ... FOR UPDATE SKIP LOCKED``
        goes first). The first time this store finds nothing to claim, and again every
        few refusals in a row (a row deleted since), it looks for the turn's row and
        inserts it if missing (ignoring a concurrent insert). See :meth:`Ledger.take_sweep_turn
        <renderstate.ledger.Ledger.take_sweep_turn>`.
        """
        with self._session_in_transaction() as session:
            return take_turn(session, self.turns, self._turns_made, name, holder, until, now)

    def get(self, attempt_id: int) -> Attempt | None:
        """Return the attempt with that id."""
        with self._transaction() as session:
            row = session.execute(select(self.table).where(self.table.c.id == attempt_id)).first()
        return None if row is None else attempt_from_row(row._mapping)

    def history(self, scope: str, key: str, *, limit: int | None = None) -> list[Attempt]:
        """Return the project's attempts, newest first."""
        c = self.table.c
        query = (
            select(self.table)
            .where(c.scope == scope, c.project_key == key)
            .order_by(c.id.desc())
            .limit(limit)
        )
        with self._transaction() as session:
            return [attempt_from_row(row._mapping) for row in session.execute(query)]

    def live(self, scope: str, key: str) -> list[Attempt]:
        """Return the project's queued or rendering attempts."""
        c = self.table.c
        query = select(self.table).where(
            c.scope == scope, c.project_key == key, c.state.in_([s.value for s in ACTIVE_STATES])
        )
        with self._transaction() as session:
            return [attempt_from_row(row._mapping) for row in session.execute(query)]

    def expired(self, now: float | DatabaseTime, *, scope: str | None = None) -> list[Attempt]:
        """Return the live attempts whose lease expired before ``now``, oldest first."""
        c = self.table.c
        with self._transaction() as session:
            query = select(self.table).where(
                c.state.in_([s.value for s in ACTIVE_STATES]),
                c.lease_expires_at < compared(now, database_time(session)),
            )
            if scope is not None:
                query = query.where(c.scope == scope)
            return [attempt_from_row(row._mapping) for row in session.execute(query.order_by(c.id))]

    def loader(self, model: type[ProjectT]) -> SQLAlchemyLoader[ProjectT]:
        """Return a loader of ``model`` instances by the key text the ledger stores."""
        return SQLAlchemyLoader(model, self._factory or self._session)


class SQLAlchemyLoader(Generic[ProjectT]):
    """Loads instances of one mapped class by primary key text, for recovery and workers.

    Args:
        model: The mapped class.
        session: A sessionmaker (each load in a fresh session; the instance comes back
            detached, its attributes loaded) or a Session (``session.get``).
    """

    def __init__(
        self, model: type[ProjectT], session: Session | sessionmaker[Session] | None
    ) -> None:
        mapper = inspect(model)
        self._model = model
        self._session = session
        self._keys = list(mapper.primary_key)
        self.scope = str(cast("Table", mapper.local_table).name)
        """The table the model is mapped to."""

    def __call__(self, key: str, /) -> ProjectT | None:
        """Return the instance whose key text is ``key``, or ``None``."""
        ident = key_values(key, self._keys, _convert)
        if ident is None:
            return None
        identity = ident[0] if len(ident) == 1 else ident
        if isinstance(self._session, Session):
            return self._session.get(self._model, identity)
        assert self._session is not None
        with self._session() as session:
            found = session.get(self._model, identity)
            if found is not None:
                session.expunge(found)
            return found


_ADDED: Final = (
    "owner",
    "cancel_requested_at",
    "cancel_reason",
    "executor",
    "task_id",
    "traceparent",
    "label",
)
"""Columns added to the ledger's table since its first version, in order."""


def _columns(table: Table, connection: Connection) -> set[str] | None:
    """The names of ``table``'s columns in the database, ``None`` if it does not exist."""
    inspector = inspect(connection)
    if not inspector.has_table(table.name, schema=table.schema):
        return None
    return {column["name"] for column in inspector.get_columns(table.name, schema=table.schema)}


def _create_or_upgrade(table: Table, connection: Connection) -> None:
    table.create(connection, checkfirst=True)
    turns = table.metadata.tables.get(_turns.table_name(table.name))
    if turns is None:
        turns = sweep_turn_table(MetaData(), _turns.table_name(table.name))
    turns.create(connection, checkfirst=True)
    present = _columns(table, connection) or set()
    preparer = connection.dialect.identifier_preparer
    for name in _ADDED:
        if name in present:
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=connection.dialect)
        connection.execute(
            sql_text(
                f"ALTER TABLE {preparer.format_table(table)} "
                f"ADD COLUMN {preparer.quote(name)} {kind}"
            )
        )


def _convert(column: Column[Any], text: object) -> object:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return text
    if isinstance(text, python_type):
        return text
    return python_type(text)


def _attempt_kwargs(attempt: Attempt) -> dict[str, Any]:
    return {name: getattr(attempt, name) for name in FIELDS}
