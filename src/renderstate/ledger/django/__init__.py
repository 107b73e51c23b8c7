"""The Django attempt store: the ledger as a small installable app with its own migration.

Install with ``pip install 'renderstate[django]'``, add the app and migrate::

    INSTALLED_APPS = [..., "renderstate.ledger.django"]

    # python manage.py migrate renderstate

Then build the ledger (your project model is not touched)::

    from renderstate.ledger import Ledger
    from renderstate.ledger.django import DjangoAttemptStore

    ledger = Ledger(DjangoAttemptStore())

This module imports no model at import time, so it is safe to import from settings,
``AppConfig.ready()`` or a module imported before ``django.setup()``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, Generic, cast

try:
    from django.apps import apps as django_apps
    from django.core.exceptions import ImproperlyConfigured, ValidationError
    from django.db import connections, router, transaction
    from django.db import models as django_models
    from django.db.models import Case, F, Q, When
    from django.db.models.expressions import Combinable, RawSQL, Value
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        "renderstate.ledger.django needs Django; install it with: pip install 'renderstate[django]'"
    )
    raise ImportError(msg) from exc

from renderstate._attempts import (
    ACTIVE_STATES,
    FIELDS,
    Attempt,
    AttemptState,
    DatabaseTime,
    attempt_from_row,
    stored_values,
)
from renderstate.exceptions import LedgerSchemaError
from renderstate.ledger._clock import now_sql, written
from renderstate.ledger._deadlocks import retries_deadlocks
from renderstate.ledger._renewals import PROGRESS_FIELDS, RowRenewal
from renderstate.ledger._turns import TurnClaim, TurnRows
from renderstate.typing import ProjectT

if TYPE_CHECKING:
    from renderstate.ledger.django.models import RenderAttempt, SweepTurn

__all__ = ["APP", "DjangoAttemptStore", "DjangoLoader"]

_ADDED: Final = (
    "owner",
    "cancel_requested_at",
    "cancel_reason",
    "executor",
    "task_id",
    "traceparent",
    "label",
)
"""Columns added to the ledger's table since its first version (migrations 0002...)."""

APP: Final = "renderstate.ledger.django"
"""What to add to ``INSTALLED_APPS``; the app's label is ``renderstate``."""


def _model() -> type[RenderAttempt]:
    if not django_apps.is_installed(APP):
        msg = (
            f"the attempt ledger's Django app is not installed: add {APP!r} to "
            "INSTALLED_APPS and run `python manage.py migrate renderstate`"
        )
        raise ImproperlyConfigured(msg)
    from renderstate.ledger.django.models import RenderAttempt  # noqa: PLC0415 - needs apps

    return RenderAttempt


def _turn_model() -> type[SweepTurn]:
    _model()  # the app is installed
    from renderstate.ledger.django.models import SweepTurn  # noqa: PLC0415 - needs apps

    return SweepTurn


def _label(model: object) -> str:
    if not (isinstance(model, type) and issubclass(model, django_models.Model)):
        kind = model if isinstance(model, type) else type(model)
        msg = (
            f"the Django attempt store files Django model instances; got a "
            f"{kind.__module__}.{kind.__qualname__}. Use the attempt store of the project's "
            "ORM (renderstate.ledger.sqlalchemy, .peewee, or .memory for plain objects)"
        )
        raise TypeError(msg)
    # A proxy shares its concrete model's rows, so it shares its attempts too.
    return model._meta.concrete_model._meta.label_lower  # type: ignore[union-attr]


class DjangoAttemptStore:
    """Keeps the attempt ledger in table ``renderstate_attempt``, in the projects' database.

    Every ledger read and write goes to one database alias. :meth:`atomic` opens
    ``transaction.atomic()`` there (a savepoint inside your own ``atomic()`` block), and
    the :class:`~renderstate.adapters.django.DjangoAdapter`'s guarded ``UPDATE`` runs in it,
    so a start and its attempt, or an attempt's end and the project's, commit together.

    Args:
        using: The database alias of the ledger; by default the routers' choice for writes
            of :class:`~renderstate.ledger.django.models.RenderAttempt` (``"default"``
            without routers). It must be the alias the projects are loaded from and
            written to: :meth:`atomic` refuses a project from another database.
    """

    __slots__ = ("_checked", "_turns_made", "using")

    def __init__(self, using: str | None = None) -> None:
        self.using = using
        """The alias, or ``None`` to follow the routers."""
        self._checked: set[str] = set()
        self._turns_made = TurnRows()

    def __repr__(self) -> str:
        return f"<DjangoAttemptStore using={self.using!r}>"

    @property
    def model(self) -> type[RenderAttempt]:
        """The ledger's model (imported on first use: needs the app installed)."""
        return _model()

    def alias(self) -> str:
        """Return the database alias the ledger reads and writes."""
        return self.using or router.db_for_write(_model())

    def _rows(self) -> django_models.QuerySet[RenderAttempt]:
        manager: django_models.Manager[RenderAttempt] = _model()._base_manager
        alias = self.alias()
        self._check_schema(alias)
        return manager.using(alias)

    def _check_schema(self, alias: str) -> None:
        """Refuse, once per alias, a table that lacks a column this version writes."""
        if alias in self._checked:
            return
        model = _model()
        table = model._meta.db_table
        connection = connections[alias]
        with connection.cursor() as cursor:
            if table not in connection.introspection.table_names(cursor):
                missing: tuple[str, ...] = ("*",)
            else:
                description = connection.introspection.get_table_description(cursor, table)
                present = {column.name for column in description}
                missing = tuple(c for c in _ADDED if c not in present)
        if missing:
            raise LedgerSchemaError(
                table=table,
                missing=missing,
                fix=f"Run: python manage.py migrate renderstate (database {alias!r}).",
            )
        self._checked.add(alias)

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def atomic(self, project: Any) -> Iterator[None]:
        """``transaction.atomic()`` on the ledger's alias, which the adapter joins.

        Raises:
            TypeError: ``project`` is not a Django model instance.
            ImproperlyConfigured: ``project`` lives in another database than the ledger,
                so its ``UPDATE`` and the ledger's writes could not be one transaction.
        """
        model = type(project)
        _label(model)  # a Django model, or a TypeError saying which store to use
        alias = self.alias()
        theirs = project._state.db or router.db_for_write(model, instance=project)
        if theirs != alias:
            msg = (
                f"{model.__name__} {project.pk} lives in database {theirs!r} but the attempt "
                f"ledger in {alias!r}; their writes must share one transaction: pass "
                f"DjangoAttemptStore(using={theirs!r}) or route the 'renderstate' app there"
            )
            raise ImproperlyConfigured(msg)
        with transaction.atomic(using=alias):
            yield

    # ------------------------------------------------------------------ the store

    def scope(self, project: Any) -> str:
        """Return the project's model label, lower case (``"app_label.modelname"``).

        Raises:
            TypeError: ``project`` is not a Django model instance.
        """
        return _label(type(project))

    def _in_outer_transaction(self) -> bool:
        """Whether a statement now would run inside the caller's transaction.

        An ``atomic()`` block, or one opened by ``transaction.set_autocommit(False)``.
        """
        connection = transaction.get_connection(self.alias())
        return bool(connection.in_atomic_block) or not connection.get_autocommit()

    @retries_deadlocks
    def insert(self, attempt: Attempt) -> Attempt:
        """Insert ``attempt`` (one ``INSERT``) and return it as stored, with its new id.

        Times the database chose (DatabaseTime) are read back with one ``SELECT``.
        """
        values = {name: getattr(attempt, name) for name in FIELDS if name != "id"}
        row = self._rows().create(**written(values, self._database_time()))
        if any(isinstance(v, DatabaseTime) for v in values.values()):
            stored = self.get(int(row.pk))
            assert stored is not None
            return stored
        return Attempt(**{**{name: getattr(attempt, name) for name in FIELDS}, "id": int(row.pk)})

    @retries_deadlocks
    def insert_and_find_live(self, attempt: Attempt) -> tuple[Attempt, bool]:
        """Insert ``attempt``; return it as stored and whether its project has other live ones.

        One ``INSERT ... RETURNING`` whose subquery looks for the project's other queued or
        rendering attempts, where the database returns columns from an ``INSERT``
        (PostgreSQL, SQLite 3.35+, MariaDB 10.5+); elsewhere :meth:`insert`, then
        :meth:`live`.
        """
        self._rows()  # the schema check
        connection = connections[self.alias()]
        if not connection.features.can_return_columns_from_insert:
            stored = self.insert(attempt)
            return stored, any(
                a.id != stored.id for a in self.live(stored.scope, stored.project_key)
            )
        sql, params = _insert_returning(attempt, connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return attempt_from_row(dict(zip(FIELDS, row, strict=False))), bool(row[-1])

    def _database_time(self) -> Callable[[float], Combinable]:
        """What stands for DatabaseTime(seconds) in a statement on the ledger's database."""
        vendor = connections[self.alias()].vendor

        def at(seconds: float) -> Combinable:
            # A constant of _clock, no input in it.
            now = RawSQL(now_sql(vendor), (), output_field=django_models.FloatField())  # noqa: S611
            return now + Value(seconds) if seconds else now

        return at

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
        """One ``UPDATE ... WHERE id = %s AND state IN (...)``; see the store Protocol.

        Django's MySQL backend counts matched rows (``CLIENT_FOUND_ROWS``), so an update
        that changes nothing still reports its match there too.
        """
        rows = self._rows().filter(id=attempt_id, state__in=[AttemptState(s).value for s in states])
        at = self._database_time()
        if lease_before is not None:
            rows = rows.filter(lease_expires_at__lt=_compared(lease_before, at))
        if worker is not None:
            rows = rows.filter(worker=worker)
        if owner is not None:
            rows = rows.filter(owner=owner)
        if uncancelled:
            rows = rows.filter(cancel_requested_at__isnull=True)
        matched: int = rows.update(**written(values, at))
        return matched == 1

    @retries_deadlocks
    def renew(
        self, rows: Sequence[RowRenewal], lease_expires_at: float | DatabaseTime
    ) -> dict[int, Attempt]:
        """Renew every row's lease (and write its progress) where its fences hold, at once.

        One ``atomic()`` block: on PostgreSQL and MySQL/MariaDB, one ``select_for_update
        (skip_locked=True)`` of the rows (a row another transaction holds is left out, not
        waited for) and one ``update()`` of those it locked that still match; on SQLite, which
        locks the whole database, the ``update()`` first and then the read. Returns the
        rows it read under its lock, by id: a row left out was skipped. See
        :meth:`renderstate.ledger.Ledger.renew`.
        """
        alias = self.alias()
        connection = connections[alias]
        ids = sorted({row.id for row in rows})
        lease = _compared(lease_expires_at, self._database_time())
        locks = connection.vendor != "sqlite" and bool(
            connection.features.has_select_for_update_skip_locked
        )
        # Built before the transaction: nothing is locked while Python works.
        fences = [_fence(row) for row in rows]
        sets: dict[str, Any] = {"lease_expires_at": lease}
        fields = {f.name: f for f in _model()._meta.concrete_fields}
        for name in PROGRESS_FIELDS:
            whens = [
                When(fence, then=Value(row.progress[name], output_field=fields[name]))
                for fence, row in zip(fences, rows, strict=True)
                if name in row.progress
            ]
            if whens:
                sets[name] = Case(*whens, default=F(name), output_field=fields[name])
        matching = functools.reduce(operator.or_, fences)
        chosen = self._rows().filter(id__in=ids).order_by("id")
        found: list[dict[str, Any]]
        with transaction.atomic(using=alias):
            if locks:
                found = list(chosen.select_for_update(skip_locked=True).values(*FIELDS))
                locked = [row["id"] for row in found]
            else:
                locked = ids
            if locked:
                written = self._rows().filter(id__in=locked, state__in=_ACTIVE).filter(matching)
                written.update(**sets)
            if not locks:
                found = list(chosen.values(*FIELDS))
        return {a.id: a for a in map(attempt_from_row, found)}

    @retries_deadlocks
    def renew_taking_turn(
        self,
        rows: Sequence[RowRenewal],
        lease_expires_at: float | DatabaseTime,
        turn: TurnClaim,
    ) -> tuple[dict[int, Attempt], bool]:
        """:meth:`renew` and :meth:`take_turn` in one transaction, the turn's ``UPDATE`` last.

        Returns the rows :meth:`renew` read and whether the turn was taken. See
        :meth:`Ledger.renew_and_take_sweep_turn
        <renderstate.ledger.Ledger.renew_and_take_sweep_turn>`.
        """
        with transaction.atomic(using=self.alias()):
            return self.renew(rows, lease_expires_at), self.take_turn(*turn)

    @retries_deadlocks
    def take_turn(
        self, name: str, holder: str, until: float | DatabaseTime, now: float | DatabaseTime
    ) -> bool:
        """Claim the turn ``name`` until ``until`` if it expired before ``now``: one ``UPDATE``.

        A row another transaction holds locked is refused, not waited for (where the
        database skips locked rows, it is locked first by
        ``select_for_update(skip_locked=True)``).
        The first time this store finds nothing to claim on an alias, and again every few
        refusals in a row (a row deleted since), it looks for the turn's row and inserts
        it if missing (ignoring a concurrent insert). See
        :meth:`Ledger.take_sweep_turn <renderstate.ledger.Ledger.take_sweep_turn>`.
        """
        alias = self.alias()
        model = _turn_model()
        manager: django_models.Manager[SweepTurn] = model._base_manager
        at = self._database_time()
        claimed = manager.using(alias).filter(name=name, expires_at__lt=_compared(now, at))
        values = {"holder": holder, "expires_at": _compared(until, at)}
        connection = connections[alias]
        skips = connection.vendor != "sqlite" and bool(
            connection.features.has_select_for_update_skip_locked
        )

        def claim() -> bool:
            if not skips:
                return bool(claimed.update(**values) == 1)
            # A row another transaction holds locked is someone claiming the turn now: not
            # waited for (a holder frozen between its claim and its commit would stall
            # every claim, and through the heartbeat's transaction every renewal). The
            # row is locked first, or skipped, by a SELECT of its own: an UPDATE waits.
            # In a heartbeat's transaction, part of it (no savepoint: two more round trips).
            with transaction.atomic(using=alias, savepoint=False):
                free = claimed.select_for_update(skip_locked=True).values_list("name")[:1]
                return bool(list(free)) and claimed.update(**values) == 1

        if claim():
            self._turns_made.taken((alias, name))
            return True
        if not self._turns_made.look((alias, name)):
            return False
        there = manager.using(alias).filter(name=name).exists()
        self._turns_made.found((alias, name))
        if there:
            return False  # held
        manager.using(alias).bulk_create(
            [model(name=name, holder=None, expires_at=0.0)], ignore_conflicts=True
        )
        return claim()

    def get(self, attempt_id: int) -> Attempt | None:
        """Return the attempt with that id."""
        found = list(self._rows().filter(id=attempt_id).values(*FIELDS))
        return attempt_from_row(found[0]) if found else None

    def history(self, scope: str, key: str, *, limit: int | None = None) -> list[Attempt]:
        """Return the project's attempts, newest first."""
        rows = self._rows().filter(scope=scope, project_key=key).order_by("-id").values(*FIELDS)
        if limit is not None:
            rows = rows[:limit]
        return [attempt_from_row(row) for row in rows]

    def live(self, scope: str, key: str) -> list[Attempt]:
        """Return the project's queued or rendering attempts."""
        rows = self._rows().filter(scope=scope, project_key=key, state__in=_ACTIVE)
        return [attempt_from_row(row) for row in rows.order_by("id").values(*FIELDS)]

    def expired(self, now: float | DatabaseTime, *, scope: str | None = None) -> list[Attempt]:
        """Return the live attempts whose lease expired before ``now``, oldest first."""
        before = _compared(now, self._database_time())
        rows = self._rows().filter(state__in=_ACTIVE, lease_expires_at__lt=before)
        if scope is not None:
            rows = rows.filter(scope=scope)
        return [attempt_from_row(row) for row in rows.order_by("id").values(*FIELDS)]

    def loader(self, model: type[ProjectT] | str) -> DjangoLoader[ProjectT]:
        """Return a loader of ``model`` instances by the key text the ledger stores.

        Args:
            model: The model class, or its label (``"app_label.ModelName"``, what
                :meth:`scope` and an attempt's ``scope`` hold), so a worker can load a
                project from the attempt alone.
        """
        return DjangoLoader(model, using=self.using)


class DjangoLoader(Generic[ProjectT]):
    """Loads one model's instances by primary key text, for recovery and workers.

    Args:
        model: The model class, or its label (``"app_label.ModelName"``, any case).
        using: The alias to read from; by default the routers' choice for writes (the
            database the guarded ``UPDATE`` will go to, never a lagging replica).

    Raises:
        LookupError: ``model`` is a label no installed app defines.
        TypeError: ``model`` is not a Django model class.
    """

    def __init__(self, model: type[ProjectT] | str, *, using: str | None = None) -> None:
        if isinstance(model, str):
            try:
                found = django_apps.get_model(model)
            except (LookupError, ValueError) as exc:
                msg = (
                    f"no installed model is labelled {model!r}: pass the model class or its "
                    f"label 'app_label.ModelName' (a ledger scope) ({exc})"
                )
                raise LookupError(msg) from exc
            model = cast("type[ProjectT]", found)
        self.model: type[ProjectT] = model
        """The model it loads."""
        self.using = using
        """The alias, or ``None`` to follow the routers."""
        self.scope = _label(cast("type[django_models.Model]", model))
        """The model's label, lower case: the ledger's scope of its instances."""

    def __repr__(self) -> str:
        return f"<DjangoLoader {self.scope} using={self.using!r}>"

    def __call__(self, key: str, /) -> ProjectT | None:
        """Return the instance whose primary key text is ``key``, or ``None``.

        Text that is no valid key of the model (``"abc"`` for an integer key) loads
        nothing, without a query.
        """
        model = cast("type[django_models.Model]", self.model)
        try:
            pk = model._meta.pk.to_python(key)
        except (ValidationError, ValueError, TypeError):
            return None
        if isinstance(pk, list):  # a composite key, given as its JSON text
            pk = tuple(pk)
        using = self.using or router.db_for_write(model)
        found = model._base_manager.using(using).filter(pk=pk).first()
        return cast("ProjectT | None", found)


_ACTIVE: Final = [s.value for s in ACTIVE_STATES]


def _insert_returning(attempt: Attempt, connection: Any) -> tuple[str, list[object]]:
    """The ``INSERT ... RETURNING`` of ``attempt``, with whether its project has other live ones.

    Written by hand: a queryset inserts, or returns the key, but not a subquery's answer.
    Every name is quoted by the backend; every value is a parameter.
    """
    meta = _model()._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    now = now_sql(connection.vendor)
    column = {field.name: quote(field.column) for field in meta.concrete_fields}
    columns: list[str] = []
    slots: list[str] = []
    params: list[object] = []
    values = {name: getattr(attempt, name) for name in FIELDS if name != "id"}
    for name, value in stored_values(values).items():
        columns.append(column[name])
        if isinstance(value, DatabaseTime):
            slots.append(f"({now} + %s)")
            params.append(value.seconds)
        else:
            slots.append("%s")
            params.append(value)
    returned = ", ".join(f"{table}.{column[name]}" for name in FIELDS)
    other = quote("renderstate_other")
    # The new row is named by its table (the INSERT's own row in RETURNING): on MariaDB
    # and SQLite the subquery sees it too.
    others = (
        f"EXISTS (SELECT 1 FROM {table} {other} WHERE {other}.{quote('scope')} = %s "  # noqa: S608 - quoted names, values as parameters
        f"AND {other}.{quote('project_key')} = %s AND {other}.{quote('state')} IN (%s, %s) "
        f"AND {other}.{quote('id')} <> {table}.{quote('id')})"
    )
    params += [attempt.scope, attempt.project_key, *_ACTIVE]
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(slots)}) "  # noqa: S608 - quoted names, values as parameters
        f"RETURNING {returned}, {others}"
    )
    return sql, params


def _fence(row: RowRenewal) -> Q:
    """The fences of one row of ``renew``, as the ``update()`` fences them."""
    fence = Q(id=row.id)
    if row.owner is not None:
        fence &= Q(owner=row.owner)
    if row.worker is not None:
        fence &= Q(worker=row.worker)
    if row.uncancelled:
        fence &= Q(cancel_requested_at__isnull=True)
    return fence


def _compared(value: float | DatabaseTime, at: Callable[[float], Combinable]) -> object:
    return at(value.seconds) if isinstance(value, DatabaseTime) else value
