"""The Peewee attempt store: the ledger as a model bound to your projects' database.

Install with ``pip install 'renderstate[peewee]'``. Create the table once (or add
:func:`attempt_model`'s model to your migrations), then build the ledger::

    from renderstate.ledger import Ledger
    from renderstate.ledger.peewee import PeeweeAttemptStore, create_ledger_table

    create_ledger_table(db)                      # CREATE TABLE IF NOT EXISTS, with indexes
    ledger = Ledger(PeeweeAttemptStore(db))
"""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, Generic, cast

try:
    import peewee
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        "renderstate.ledger.peewee needs Peewee; install it with: pip install 'renderstate[peewee]'"
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
)
from renderstate.exceptions import LedgerSchemaError
from renderstate.ledger import _turns
from renderstate.ledger._clock import written
from renderstate.ledger._deadlocks import retries_deadlocks
from renderstate.ledger._peewee_statements import (
    compared,
    database_time,
    insert_finding_live,
    returns,
)
from renderstate.ledger._renewals import PROGRESS_FIELDS, RowRenewal, skips_locked
from renderstate.typing import ProjectT

__all__ = [
    "TABLE_NAME",
    "PeeweeAttemptStore",
    "PeeweeLoader",
    "attempt_model",
    "create_ledger_table",
    "sweep_turn_model",
]

TABLE_NAME: Final = "renderstate_attempt"

# Keyed by the database object itself: a DatabaseProxy cannot be weakly referenced, and a
# database lives as long as the application anyway.
_MODELS: dict[Any, dict[str, type[peewee.Model]]] = {}
_MODELS_LOCK = threading.Lock()


def _declare(bound: peewee.Database | peewee.DatabaseProxy, name: str) -> type[peewee.Model]:
    class RenderAttempt(peewee.Model):
        """One render attempt of one project; written by the ledger only."""

        id = peewee.BigAutoField()
        scope = peewee.CharField(max_length=100)
        project_key = peewee.CharField(max_length=255)
        state = peewee.CharField(max_length=16)
        output_path = peewee.CharField(max_length=500, null=True)
        actor = peewee.CharField(max_length=255, null=True)
        worker = peewee.CharField(max_length=255, null=True)
        lease_expires_at = peewee.DoubleField(null=True)
        phase = peewee.CharField(max_length=32, default="queued")
        done = peewee.IntegerField(default=0)
        total = peewee.IntegerField(default=0)
        fraction = peewee.DoubleField(default=0.0)
        eta_seconds = peewee.DoubleField(null=True)
        error = peewee.TextField(null=True)
        created_at = peewee.DoubleField()
        started_at = peewee.DoubleField(null=True)
        finished_at = peewee.DoubleField(null=True)
        owner = peewee.CharField(max_length=64, null=True)
        cancel_requested_at = peewee.DoubleField(null=True)
        cancel_reason = peewee.TextField(null=True)
        executor = peewee.CharField(max_length=255, null=True)
        task_id = peewee.CharField(max_length=255, null=True)
        traceparent = peewee.CharField(max_length=64, null=True)
        label = peewee.CharField(max_length=255, null=True)

        class Meta:
            database = bound
            table_name = name

    model = RenderAttempt
    # Index names as attempt_table() gives them in the SQLAlchemy store.
    model.add_index(model.index(model.scope, model.project_key, model.id, name=f"{name}_project"))
    model.add_index(model.index(model.state, model.lease_expires_at, name=f"{name}_lease"))
    return model


def attempt_model(
    database: peewee.Database | peewee.DatabaseProxy, *, table_name: str = TABLE_NAME
) -> type[peewee.Model]:
    """Return the ledger's model bound to ``database`` (one class per database and name).

    Its columns and index names are those of
    :func:`renderstate.ledger.sqlalchemy.attempt_table`; times are UNIX seconds in double
    precision. Pass it to your migration tool, or create it with
    :func:`create_ledger_table`.
    """
    with _MODELS_LOCK:
        per_name = _MODELS.setdefault(database, {})
        if table_name not in per_name:
            per_name[table_name] = _declare(database, table_name)
        return per_name[table_name]


def _declare_turn(bound: peewee.Database | peewee.DatabaseProxy, name: str) -> type[peewee.Model]:
    class SweepTurn(peewee.Model):
        """The turn of one task system's workers to sweep one kind of project."""

        name = peewee.CharField(max_length=_turns.NAME_WIDTH, primary_key=True)
        holder = peewee.CharField(max_length=_turns.HOLDER_WIDTH, null=True)
        expires_at = peewee.DoubleField()

        class Meta:
            database = bound
            table_name = name

    return SweepTurn


def sweep_turn_model(
    database: peewee.Database | peewee.DatabaseProxy, *, table_name: str = TABLE_NAME
) -> type[peewee.Model]:
    """Return the sweep turns' model beside the ledger's table ``table_name``.

    One row per task system and kind of project, claimed by the process whose turn it is
    to sweep (:meth:`Ledger.take_sweep_turn <renderstate.ledger.Ledger.take_sweep_turn>`);
    :func:`create_ledger_table` creates its table too.
    """
    name = _turns.table_name(table_name)
    with _MODELS_LOCK:
        per_name = _MODELS.setdefault(database, {})
        if name not in per_name:
            per_name[name] = _declare_turn(database, name)
        return per_name[name]


def create_ledger_table(
    database: peewee.Database | peewee.DatabaseProxy, *, table_name: str = TABLE_NAME
) -> type[peewee.Model]:
    """Create the ledger's tables and indexes if they do not exist; return the attempts' model.

    The sweep turns' table (:func:`sweep_turn_model`) is created too.

    A table created by an earlier version gains the columns added since (``owner``,
    ``cancel_requested_at``, ``cancel_reason``, ``executor``, ``task_id``,
    ``traceparent``, ``label``).
    """
    model = attempt_model(database, table_name=table_name)
    _create_or_upgrade(model)
    return model


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


def _create_or_upgrade(model: Any) -> None:
    model.create_table(safe=True)
    database = _target(model._meta.database)
    name = model._meta.table_name
    sweep_turn_model(model._meta.database, table_name=name).create_table(safe=True)
    present = {column.name for column in database.get_columns(name)}
    missing = [c for c in _ADDED if c not in present]
    if missing:
        from playhouse.migrate import (  # type: ignore[import-untyped]  # noqa: PLC0415
            SchemaMigrator,
            migrate,
        )

        migrator = SchemaMigrator.from_database(database)
        migrate(*(migrator.add_column(name, c, model._meta.fields[c]) for c in missing))


def _model_class(model: Any) -> Any:
    if not (isinstance(model, type) and issubclass(model, peewee.Model)):
        kind = model if isinstance(model, type) else type(model)
        msg = (
            f"the Peewee attempt store files Peewee model instances; got a "
            f"{kind.__module__}.{kind.__qualname__}. Use the attempt store of the project's "
            "ORM (renderstate.ledger.sqlalchemy, .django, or .memory for plain objects)"
        )
        raise TypeError(msg)
    return model


def _target(database: Any) -> Any:
    """The database behind a ``DatabaseProxy`` (or the database itself)."""
    inner = getattr(database, "obj", None)
    return database if inner is None else inner


class PeeweeAttemptStore:
    """Keeps the attempt ledger in a table of the projects' own Peewee database.

    :meth:`atomic` is ``database.atomic()`` (a savepoint inside your own
    ``atomic()``; ``BEGIN IMMEDIATE`` on SQLite unless the database names another lock
    type): the :class:`~renderstate.adapters.peewee.PeeweeAdapter`'s ``UPDATE`` runs on
    the same connection, so a start and its attempt, or an attempt's end and the
    project's, commit together.

    Args:
        database: The database the projects' models are bound to (or a
            ``DatabaseProxy`` of it).
        table_name: The ledger's table.
    """

    def __init__(
        self,
        database: peewee.Database | peewee.DatabaseProxy,
        *,
        table_name: str = TABLE_NAME,
    ) -> None:
        self.database = database
        """The projects' database."""
        self.model: Any = attempt_model(database, table_name=table_name)
        """The ledger's model, bound to :attr:`database`."""
        self.turns: Any = sweep_turn_model(database, table_name=table_name)
        """The sweep turns' model, bound to :attr:`database`."""
        self._turns_made = _turns.TurnRows()
        self._checked = False

    def __repr__(self) -> str:
        return f"<PeeweeAttemptStore table={self.model._meta.table_name}>"

    def create_table(self) -> None:
        """Create the ledger's table and indexes if they do not exist, or add missing columns.

        A table created by an earlier version gains the columns added since (``owner``,
        ``cancel_requested_at``, ``cancel_reason``, ``executor``, ``task_id``,
        ``traceparent``, ``label``).
        """
        _create_or_upgrade(self.model)
        self._checked = True

    def _check_schema(self) -> None:
        """Refuse, once per store, a table that lacks a column this version writes."""
        if self._checked:
            return
        database = _target(self.database)
        name = self.model._meta.table_name
        if not database.table_exists(name):
            missing: tuple[str, ...] = ("*",)
        else:
            present = {column.name for column in database.get_columns(name)}
            missing = tuple(c for c in _ADDED if c not in present)
        if missing:
            raise LedgerSchemaError(
                table=name,
                missing=missing,
                fix="Call renderstate.ledger.peewee.create_ledger_table(database) (or "
                "PeeweeAttemptStore.create_table()), which creates the table or adds the "
                "columns it lacks, or add them with your migrations (playhouse.migrate: "
                "nullable fields 'owner' CharField(max_length=64), 'cancel_requested_at' "
                "DoubleField, 'cancel_reason' TextField, 'executor' and 'task_id' "
                "CharField(max_length=255), 'traceparent' CharField(max_length=64), 'label' "
                "CharField(max_length=255)).",
            )
        self._checked = True

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def atomic(self, project: Any) -> Iterator[None]:
        """``database.atomic()``: one transaction (a savepoint inside another).

        Raises:
            ValueError: ``project``'s model is bound to another database, so its
                ``UPDATE`` and the ledger's writes could not be one transaction.
            TypeError: ``project`` is not a Peewee model instance.
        """
        theirs = _model_class(type(project))._meta.database
        if _target(theirs) is not _target(self.database):
            msg = (
                f"{type(project).__name__} is bound to {theirs!r} but the attempt ledger to "
                f"{self.database!r}; their writes must share one transaction: build "
                f"PeeweeAttemptStore with the database the model is bound to"
            )
            raise ValueError(msg)
        database = _target(self.database)
        lock = getattr(database, "_lock_type", None)
        if isinstance(database, peewee.SqliteDatabase) and not lock:
            # BEGIN IMMEDIATE: a transaction that read first could otherwise fail with
            # "database is locked" when it writes.
            block = self.database.atomic("IMMEDIATE")
        else:
            block = self.database.atomic()
        with block:
            yield

    # ------------------------------------------------------------------ the store

    def scope(self, project: Any) -> str:
        """Return the name of the table the project's model is bound to.

        Raises:
            TypeError: ``project`` is not a Peewee model instance.
        """
        return str(_model_class(type(project))._meta.table_name)

    def _in_outer_transaction(self) -> bool:
        """Whether a statement now would run inside the caller's ``atomic()`` block."""
        return bool(self.database.in_transaction())

    @retries_deadlocks
    def insert(self, attempt: Attempt) -> Attempt:
        """Insert ``attempt`` (one ``INSERT``) and return it as stored, with its new id.

        ``INSERT ... RETURNING`` on PostgreSQL and SQLite; on MySQL/MariaDB, times the
        database chose (DatabaseTime) are read back with one ``SELECT``.
        """
        self._check_schema()
        values = {name: getattr(attempt, name) for name in FIELDS if name != "id"}
        model = self.model
        query = model.insert(**written(values, database_time(self.database)))
        if returns(_target(self.database)):
            (row,) = query.returning(*model._meta.sorted_fields).dicts().execute()
            return attempt_from_row(row)
        new_id = int(query.execute())
        if any(isinstance(v, DatabaseTime) for v in values.values()):
            stored = self.get(new_id)
            assert stored is not None
            return stored
        return Attempt(**{**{name: getattr(attempt, name) for name in FIELDS}, "id": new_id})

    @retries_deadlocks
    def insert_and_find_live(self, attempt: Attempt) -> tuple[Attempt, bool]:
        """Insert ``attempt``; return it as stored and whether its project has other live ones.

        One ``INSERT ... RETURNING`` whose subquery looks for the project's other queued or
        rendering attempts (PostgreSQL, SQLite 3.35+, MariaDB 10.5+); elsewhere
        :meth:`insert`, then :meth:`live`.
        """
        self._check_schema()
        database = _target(self.database)
        if not returns(database):
            stored = self.insert(attempt)
            return stored, any(
                a.id != stored.id for a in self.live(stored.scope, stored.project_key)
            )
        query = insert_finding_live(self.model, attempt, database_time(self.database))
        (row,) = query.dicts().execute()
        return attempt_from_row(row), bool(row["renderstate_others"])

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
        self._check_schema()
        model = self.model
        at = database_time(self.database)
        where = (model.id == attempt_id) & model.state.in_([AttemptState(s).value for s in states])
        if lease_before is not None:
            where &= model.lease_expires_at < compared(lease_before, at)
        if worker is not None:
            where &= model.worker == worker
        if owner is not None:
            where &= model.owner == owner
        if uncancelled:
            where &= model.cancel_requested_at.is_null()
        if model.update(**written(values, at)).where(where).execute() == 1:
            return True
        if not isinstance(_target(self.database), peewee.MySQLDatabase):
            return False
        # MySQL counts changed rows, not matched ones (Peewee does not ask for
        # CLIENT_FOUND_ROWS): 0 may be a match that wrote the values already stored, such
        # as a repeated heartbeat. A state never returns to live and a lease only grows,
        # so a row that meets the condition now met it then: the write applied.
        still = model.select(model.id).where(where).for_update()
        return still.exists()  # type: ignore[no-any-return]

    @retries_deadlocks
    def renew(
        self, rows: Sequence[RowRenewal], lease_expires_at: float | DatabaseTime
    ) -> dict[int, Attempt]:
        """Renew every row's lease (and write its progress) where its fences hold, at once.

        One ``atomic()`` block: on PostgreSQL and MySQL/MariaDB, one ``SELECT ... FOR
        UPDATE SKIP LOCKED`` of the rows (a row another transaction holds is left out, not
        waited for) and one ``UPDATE`` of those it locked that still match; on SQLite, which
        locks the whole database, the ``UPDATE`` first and then the read. Returns the rows it
        read under its lock, by id: a row left out was skipped. See
        :meth:`renderstate.ledger.Ledger.renew`.
        """
        self._check_schema()
        model = self.model
        database = _target(self.database)
        at = database_time(self.database)
        ids = sorted({row.id for row in rows})
        # Built before the transaction: nothing is locked while Python works.
        fences = [_fence(model, row) for row in rows]
        sets: dict[Any, Any] = {model.lease_expires_at: compared(lease_expires_at, at)}
        for name in PROGRESS_FIELDS:
            field = model._meta.fields[name]
            whens = [
                (fence, peewee.Value(row.progress[name], converter=field.db_value))
                for fence, row in zip(fences, rows, strict=True)
                if name in row.progress
            ]
            if whens:
                sets[field] = peewee.Case(None, whens, field)
        matching = functools.reduce(operator.or_, fences) & model.state.in_(_ACTIVE)
        chosen = model.select().where(model.id.in_(ids)).order_by(model.id)
        found: list[dict[str, Any]]
        with self.database.atomic():
            locks = _skips_locked(database)
            if locks:
                found = list(chosen.for_update(skip_locked=True).dicts())
                locked = [row["id"] for row in found]
            else:
                locked = ids
            if locked:
                model.update(sets).where(model.id.in_(locked) & matching).execute()
            if not locks:
                found = list(chosen.dicts())
        return {a.id: a for a in map(attempt_from_row, found)}

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
        with self.database.atomic():
            return self.renew(rows, lease_expires_at), self.take_turn(*turn)

    @retries_deadlocks
    def take_turn(
        self, name: str, holder: str, until: float | DatabaseTime, now: float | DatabaseTime
    ) -> bool:
        """Claim the turn ``name`` until ``until`` if it expired before ``now``: one ``UPDATE``.

        A row another transaction holds locked is refused, not waited for (where the
        database skips locked rows: it is locked first by a ``SELECT ... FOR UPDATE SKIP
        LOCKED``). The first time this store finds nothing to claim, and again every few
        refusals in a row (a row deleted since), it looks for the turn's row and inserts
        it if missing (ignoring a concurrent insert). See :meth:`Ledger.take_sweep_turn
        <renderstate.ledger.Ledger.take_sweep_turn>`.
        """
        turns = self.turns
        at = database_time(self.database)
        # MySQL counts changed rows: a claim always changes expires_at, which was earlier.
        expired = (turns.name == name) & (turns.expires_at < compared(now, at))
        claim = turns.update(holder=holder, expires_at=compared(until, at)).where(expired)
        # A row another transaction holds locked is someone claiming the turn now: not
        # waited for (a holder frozen between its claim and its commit would stall every
        # claim, and through the heartbeat's transaction every renewal). The row is
        # locked first, or skipped, by a SELECT of its own: an UPDATE waits for it.
        free = turns.select(turns.name).where(expired).for_update(skip_locked=True)
        skips = _skips_locked(self.database)

        def claimed() -> bool:
            if not skips:
                return bool(claim.execute() == 1)
            # In a heartbeat's transaction, part of it (no savepoint: two more round trips).
            with self.database.transaction():
                return bool(list(free.limit(1).tuples())) and claim.execute() == 1

        if claimed():
            self._turns_made.taken(name)
            return True
        if not self._turns_made.look(name):
            return False
        there = turns.select(turns.name).where(turns.name == name).exists()
        self._turns_made.found(name)
        if there:
            return False  # held
        turns.insert(name=name, holder=None, expires_at=0.0).on_conflict_ignore().execute()
        return claimed()

    def get(self, attempt_id: int) -> Attempt | None:
        """Return the attempt with that id."""
        self._check_schema()
        rows = list(self.model.select().where(self.model.id == attempt_id).dicts())
        return attempt_from_row(rows[0]) if rows else None

    def history(self, scope: str, key: str, *, limit: int | None = None) -> list[Attempt]:
        """Return the project's attempts, newest first."""
        self._check_schema()
        model = self.model
        query = (
            model.select()
            .where((model.scope == scope) & (model.project_key == key))
            .order_by(model.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        return [attempt_from_row(row) for row in query.dicts()]

    def live(self, scope: str, key: str) -> list[Attempt]:
        """Return the project's queued or rendering attempts."""
        self._check_schema()
        model = self.model
        query = model.select().where(
            (model.scope == scope) & (model.project_key == key) & model.state.in_(_ACTIVE)
        )
        return [attempt_from_row(row) for row in query.order_by(model.id).dicts()]

    def expired(self, now: float | DatabaseTime, *, scope: str | None = None) -> list[Attempt]:
        """Return the live attempts whose lease expired before ``now``, oldest first."""
        self._check_schema()
        model = self.model
        before = compared(now, database_time(self.database))
        where = model.state.in_(_ACTIVE) & (model.lease_expires_at < before)
        if scope is not None:
            where &= model.scope == scope
        query = model.select().where(where).order_by(model.id)
        return [attempt_from_row(row) for row in query.dicts()]

    def loader(self, model: type[ProjectT]) -> PeeweeLoader[ProjectT]:
        """Return a loader of ``model`` instances by the key text the ledger stores."""
        return PeeweeLoader(model)


class PeeweeLoader(Generic[ProjectT]):
    """Loads one model's instances by primary key text, for recovery and workers.

    Text that is no valid key of the model (``"abc"`` for an integer key) loads nothing,
    without a query. Composite keys (``CompositeKey``) are loaded from their JSON text.

    Args:
        model: The Peewee model class.

    Raises:
        TypeError: ``model`` is not a Peewee model class.
    """

    def __init__(self, model: type[ProjectT]) -> None:
        self.model = model
        """The model it loads."""
        meta = _model_class(model)._meta
        self.scope = str(meta.table_name)
        """The model's table name: the ledger's scope of its instances."""
        key = meta.primary_key
        if isinstance(key, peewee.CompositeKey):
            self._fields = [meta.fields[name] for name in key.field_names]
        else:
            self._fields = [key]

    def __repr__(self) -> str:
        return f"<PeeweeLoader {self.scope}>"

    def __call__(self, key: str, /) -> ProjectT | None:
        """Return the instance whose primary key text is ``key``, or ``None``."""
        values = key_values(key, self._fields, _convert)
        if values is None:
            return None
        where = [field == value for field, value in zip(self._fields, values, strict=True)]
        found = cast("Any", self.model).get_or_none(*where)
        return cast("ProjectT | None", found)


def _fence(model: Any, row: RowRenewal) -> Any:
    """The fences of one row of ``renew``, as ``update`` fences them."""
    fence = model.id == row.id
    if row.owner is not None:
        fence &= model.owner == row.owner
    if row.worker is not None:
        fence &= model.worker == row.worker
    if row.uncancelled:
        fence &= model.cancel_requested_at.is_null()
    return fence


def _skips_locked(database: Any) -> bool:
    """Whether ``SELECT ... FOR UPDATE SKIP LOCKED`` runs on ``database`` (connected)."""
    if isinstance(database, peewee.PostgresqlDatabase):
        return True
    if isinstance(database, peewee.MySQLDatabase):
        version = database.server_version
        return skips_locked("mysql", version if isinstance(version, tuple) else None)
    return False


def _convert(field: Any, text: object) -> object:
    target = field
    while isinstance(target, peewee.ForeignKeyField):
        target = target.rel_field
    if isinstance(target, peewee.IntegerField):  # AutoField, BigAutoField, BigIntegerField
        return int(str(text))
    if isinstance(target, (peewee.FloatField, peewee.DecimalField)):
        float(str(text))  # validate; the field adapts the text itself
    return target.python_value(text)


_ACTIVE: Final = [s.value for s in ACTIVE_STATES]
