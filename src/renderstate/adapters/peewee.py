"""The Peewee adapter: one conditional ``Model.update().where()`` per transition.

Install with ``pip install 'renderstate[peewee]'``. The model needs no mixin or field::

    from renderstate import ProjectLifecycle
    from renderstate.adapters.peewee import PeeweeAdapter

    ProjectLifecycle(project, adapter=PeeweeAdapter()).start_render()
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

try:
    import peewee
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        "renderstate.adapters.peewee needs Peewee; "
        "install it with: pip install 'renderstate[peewee]'"
    )
    raise ImportError(msg) from exc

from renderstate._fields import unknown_columns
from renderstate._records import Change
from renderstate.adapters._checks import check_length, foreign_object
from renderstate.exceptions import ProjectNotFoundError

__all__ = ["PeeweeAdapter"]

_MISSING = object()
_TEXT_TYPES = frozenset({"CHAR", "VARCHAR", "TEXT"})
"""The column types of Peewee's text fields (and of the fields built on them)."""


class PeeweeAdapter:
    """Persists transitions of Peewee model instances with one ``UPDATE ... WHERE``.

    Peewee has no ``auto_now``: a model that stamps ``updated_at`` in an overridden
    ``save()`` names that field here, and each transition sets it in the same ``UPDATE``.

    Args:
        auto_update: Field name -> zero-argument callable giving its new value on every
            transition, e.g. ``{"updated_at": datetime.datetime.now}``.
    """

    __slots__ = ("_databases", "_lock", "auto_update")

    def __init__(self, *, auto_update: Mapping[str, Callable[[], object]] | None = None) -> None:
        self.auto_update: dict[str, Callable[[], object]] = dict(auto_update or {})
        """The fields every transition also stamps, with their value factories."""
        self._databases: set[Any] = set()  # the databases written through, for job_scope()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<PeeweeAdapter auto_update={sorted(self.auto_update)!r}>"

    def apply(self, project: Any, change: Change) -> bool:
        """Write ``change`` with one conditional ``UPDATE``; see :class:`.Adapter`.

        The instance gets the new values without marking them dirty, so a later
        ``save(only_dirty=True)`` does not write them again.

        Raises:
            ProjectNotFoundError: ``project`` has no primary key, or its row is gone.
            InvalidOutputPathError: the output path is longer than its field's ``max_length``.
            TypeError: ``project`` is not a Peewee model instance.
        """
        key = _key(project)
        if key is None:
            raise ProjectNotFoundError(project_key=None)
        model = type(project)
        meta = model._meta
        for name, value in change.values.items():
            if name != change.status_field:
                field = meta.fields[name]
                check_length(value, getattr(field, "max_length", None), field.column_name)
        self._remember(meta.database)
        values = dict(change.values)
        for name, stamp in self.auto_update.items():
            values.setdefault(name, stamp())
        status: Any = meta.fields[change.status_field]
        where = meta.primary_key == key
        guarded = model.update({meta.fields[name]: value for name, value in values.items()})
        if _is_mysql(meta.database) and all(isinstance(v, str) for v in change.expected):
            # 'processing' and 'PROCESSING  ' equal 'PROCESSING' under MySQL's default
            # collations: compare the bytes, as SQLite and PostgreSQL do.
            status = peewee.Cast(status, "BINARY")
        # The status always changes (no edge leads back to its source), so the row count
        # is 1 on a match even where MySQL counts changed rather than matched rows
        # (Peewee does not set CLIENT_FOUND_ROWS).
        previous = {name: project.__data__.get(name, _MISSING) for name in values}
        if guarded.where(where & status.in_(list(change.expected))).execute() == 1:
            _set_clean(project, values)
            _undo_on_rollback(meta.database, project, previous, values)
            return True
        self.refresh_status(project, change.status_field)
        return False

    def refresh_status(self, project: Any, status_field: str) -> None:
        """Read the stored status into ``project`` (one ``SELECT``); see :class:`.Adapter`.

        Raises:
            ProjectNotFoundError: ``project`` has no primary key, or its row is gone.
            TypeError: ``project`` is not a Peewee model instance.
        """
        key = _key(project)
        if key is None:
            raise ProjectNotFoundError(project_key=None)
        meta = type(project)._meta
        current = type(project).select(meta.fields[status_field]).where(meta.primary_key == key)
        if _is_mysql(meta.database):
            # MySQL and MariaDB run REPEATABLE READ: inside the caller's transaction a
            # plain SELECT would still see the snapshot taken before the other writer.
            current = current.for_update()
        found = list(current.tuples())
        if not found:
            raise ProjectNotFoundError(project_key=key)
        _set_clean(project, {status_field: found[0][0]})

    @contextmanager
    def job_scope(self) -> Iterator[None]:
        """Close this thread's connections after a render job, as a request cycle would.

        The render runner calls it around each job on its worker threads (and around each
        heartbeat tick). Peewee keeps one connection per thread, opened on first use: a
        worker thread would otherwise hold its connection until the thread ends. It closes
        the connection of each database this adapter has written to, unless a transaction
        is open on it.
        """
        try:
            yield
        finally:
            with self._lock:
                databases = tuple(self._databases)
            for database in databases:
                if not database.is_closed() and not database.in_transaction():
                    database.close()

    def _remember(self, database: Any) -> None:
        if database is not None and database not in self._databases:
            with self._lock:
                self._databases.add(database)

    def project_key(self, project: Any) -> object:
        """Return the instance's primary key value (``None`` before an auto id is assigned)."""
        return _key(project)

    def empty_output(self, project: Any, field: str) -> str | None:
        """Return ``None`` for a ``null=True`` field, else ``""``."""
        _key(project)
        return None if type(project)._meta.fields[field].null else ""

    def check_fields(self, project: Any, names: Collection[str]) -> Mapping[str, int | None]:
        """Check that each name is a field of the model; return its ``max_length``.

        Raises:
            ValueError: a name is no field of the model, or is its primary key.
            TypeError: ``project`` is not a Peewee model instance.
        """
        _key(project)
        meta = type(project)._meta
        key_names = {f.name for f in meta.get_primary_keys()}
        unknown = [n for n in names if n not in meta.fields or n in key_names]
        if unknown:
            available = [n for n in meta.fields if n not in key_names]
            raise unknown_columns(type(project).__name__, unknown, available)
        return {n: getattr(meta.fields[n], "max_length", None) for n in names}

    def non_text_fields(self, project: Any, names: Collection[str]) -> Mapping[str, str]:
        """The class name of each of ``names`` whose column holds no text.

        Text fields are ``CharField``, ``FixedCharField``, ``TextField`` and fields stored
        as one; the lifecycle refuses any other as ``error_field`` or ``task_id_field``.

        Raises:
            ValueError: a name is no field of the model, as for :meth:`check_fields`.
            TypeError: ``project`` is not a Peewee model instance.
        """
        self.check_fields(project, names)
        fields = type(project)._meta.fields
        return {
            n: type(fields[n]).__name__
            for n in names
            if str(fields[n].field_type).upper() not in _TEXT_TYPES
        }


def _is_mysql(database: object) -> bool:
    # A DatabaseProxy holds the real database in .obj.
    return isinstance(getattr(database, "obj", database), peewee.MySQLDatabase)


def _key(project: object) -> Any:
    if not isinstance(project, peewee.Model):
        raise foreign_object(
            adapter="PeeweeAdapter", expected="Peewee model instances", project=project
        )
    return project.get_id()  # type: ignore[no-untyped-call]


def _undo_on_rollback(
    database: Any, project: Any, previous: dict[str, Any], written: dict[str, Any]
) -> None:
    """Put ``project`` back as it was if the caller's transaction rolls back.

    Without this, a rolled-back ``start_render()`` leaves the object saying PROCESSING while
    the row says DRAFT, and the next plain ``save()`` (which writes every field) writes
    PROCESSING back with no render running. Peewee has no rollback hook: the open
    transactions' own ``rollback`` methods are wrapped on these instances (the class is
    untouched). A nested ``atomic()`` is a savepoint Peewee does not keep on its stack, so
    the rollback of a savepoint alone is not seen; the outer transaction's is.
    """
    stack = list(getattr(getattr(database, "obj", database)._state, "transactions", ()))
    if not stack or not isinstance(stack[0], peewee._transaction):  # autocommit, or manual
        return
    armed = [True]

    def undo() -> None:
        if not armed[0]:
            return
        armed[0] = False
        # Only fields still holding what the transition wrote: a value the caller set
        # afterwards is theirs to save.
        for name, value in written.items():
            if project.__data__.get(name, _MISSING) != value:
                continue
            before = previous[name]
            if before is _MISSING:
                project.__data__.pop(name, None)
            else:
                project.__data__[name] = before
            project._dirty.discard(name)

    def rollback_undoing(method: Callable[..., Any]) -> Callable[..., Any]:
        def rollback(*args: Any, **kwargs: Any) -> Any:
            undo()
            return method(*args, **kwargs)

        return rollback

    def commit_for_good(method: Callable[..., Any]) -> Callable[..., Any]:
        def commit(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            armed[0] = False  # the outermost transaction committed: the transition stays
            return result

        return commit

    for transaction in stack:
        transaction.rollback = rollback_undoing(transaction.rollback)
    stack[0].commit = commit_for_good(stack[0].commit)  # type: ignore[method-assign]


def _set_clean(project: Any, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        setattr(project, name, value)
        project._dirty.discard(name)
