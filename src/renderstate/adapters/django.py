"""The Django adapter: each transition is ``save(update_fields=...)`` guarded by the status.

Install with ``pip install 'renderstate[django]'``. The model needs no mixin, manager,
field or migration::

    from renderstate import ProjectLifecycle
    from renderstate.adapters.django import DjangoAdapter

    ProjectLifecycle(project, adapter=DjangoAdapter()).start_render()

In async views, :class:`AsyncDjangoAdapter` does the same without blocking the event loop::

    await ProjectLifecycle(project, adapter=AsyncDjangoAdapter()).astart_render()
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

try:
    from asgiref.sync import sync_to_async
    from django.core.exceptions import FieldDoesNotExist
    from django.db import connections, models, router
    from django.db.models import CharField, F, Func, TextField
    from django.db.models.lookups import In
    from django.db.models.signals import post_save, pre_save
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        "renderstate.adapters.django needs Django; "
        "install it with: pip install 'renderstate[django]'"
    )
    raise ImportError(msg) from exc

from renderstate._fields import unknown_columns
from renderstate._records import Change
from renderstate.adapters._checks import check_length, foreign_object
from renderstate.exceptions import ProjectNotFoundError

__all__ = ["AsyncDjangoAdapter", "DjangoAdapter"]

_MISSING: Final = object()
_UNCOMMITTED: Final = "_renderstate_uncommitted"
"""The instance attribute listing transitions written inside a transaction not yet committed."""
_ASYNC_NAME: Final = "AsyncDjangoAdapter"


class DjangoAdapter:
    """Persists transitions of Django model instances with one conditional ``UPDATE``.

    The write behaves like ``project.save(update_fields=[...])`` where the fields are
    the ones the transition changes plus the model's ``auto_now`` fields: ``pre_save`` and
    ``post_save`` are sent with ``update_fields`` set, ``auto_now`` values are stamped on
    the instance, and the ``UPDATE`` names exactly those columns. An ``auto_now`` field
    that the change itself names (``complete(fields={"updated_at": ...})``) keeps the
    given value, as with every adapter. Unlike ``save()``, the
    ``UPDATE`` also requires the stored status to be one the transition starts from.

    Args:
        using: The database alias to write to; by default the one the instance was loaded
            from, else the router's choice for writes.
    """

    __slots__ = ("using",)

    def __init__(self, using: str | None = None) -> None:
        self.using = using
        """The database alias, or ``None`` to follow the instance and the routers."""

    def __repr__(self) -> str:
        return f"<DjangoAdapter using={self.using!r}>"

    def apply(self, project: Any, change: Change) -> bool:
        """Write ``change`` as a guarded ``save(update_fields=...)``; see :class:`.Adapter`.

        ``pre_save`` is sent before the write, as ``save()`` does, so a refused attempt
        sends ``pre_save`` without ``post_save``.

        Raises:
            ProjectNotFoundError: ``project`` was never saved, or its row is gone.
            InvalidOutputPathError: the output path is longer than its field's ``max_length``.
            TypeError: ``project`` is not a Django model instance.
        """
        _check_model(project)
        if project._state.adding or project.pk is None:
            raise ProjectNotFoundError(project_key=None)
        _settle(project)
        model = type(project)
        opts = model._meta
        using = self.using or project._state.db or router.db_for_write(model, instance=project)
        fields = [opts.get_field(name) for name in change.values]
        for field in fields:
            if field.name != change.status_field:
                check_length(change.values[field.name], field.max_length, field.column)
        stamps = [f for f in opts.concrete_fields if getattr(f, "auto_now", False)]
        written = [*fields, *(f for f in stamps if f not in fields)]
        update_fields = frozenset(f.name for f in written)
        # Only what is already loaded is put back on refusal: reading a deferred field
        # here would cost a query.
        previous = {f.attname: project.__dict__.get(f.attname, _MISSING) for f in written}
        try:
            for field in fields:
                setattr(project, field.attname, change.values[field.name])
            pre_save.send(
                sender=model, instance=project, raw=False, using=using, update_fields=update_fields
            )
            # A stamp the change names keeps the caller's value, as QuerySet.update() does
            # and the other adapters do; auto_now stamps only the fields it leaves out.
            values = {
                f.attname: getattr(project, f.attname)
                if f in fields and f in stamps
                else f.pre_save(project, add=False)
                for f in written
            }
            status = opts.get_field(change.status_field).attname
            guarded = model._base_manager.using(using).filter(pk=project.pk)
            if connections[using].vendor == "mysql" and all(
                isinstance(literal, str) for literal in change.expected
            ):
                # 'processing' and 'PROCESSING  ' equal 'PROCESSING' under MySQL's default
                # collations: compare the bytes, as SQLite and PostgreSQL do.
                guarded = guarded.filter(In(_Binary(F(status)), list(change.expected)))
            else:
                guarded = guarded.filter(**{f"{status}__in": change.expected})
            applied = guarded.update(**values) == 1
        except BaseException:
            _restore(project, previous)
            raise
        if applied:
            project._state.db = using
            connection = connections[using]
            if connection.in_atomic_block:
                _undo_on_rollback(project, connection, previous, values)
            post_save.send(
                sender=model,
                instance=project,
                created=False,
                update_fields=update_fields,
                raw=False,
                using=using,
            )
            return True
        _restore(project, previous)
        self._refresh(project, status, using)
        return False

    def refresh_status(self, project: Any, status_field: str) -> None:
        """Read the stored status into ``project`` (one ``SELECT``); see :class:`.Adapter`.

        Raises:
            ProjectNotFoundError: ``project`` was never saved, or its row is gone.
            TypeError: ``project`` is not a Django model instance.
        """
        _check_model(project)
        if project._state.adding or project.pk is None:
            raise ProjectNotFoundError(project_key=None)
        _settle(project)
        model = type(project)
        using = self.using or project._state.db or router.db_for_read(model, instance=project)
        self._refresh(project, model._meta.get_field(status_field).attname, using)

    @staticmethod
    def _refresh(project: Any, attname: str, using: str) -> None:
        current = type(project)._base_manager.using(using).filter(pk=project.pk)
        connection = connections[using]
        if connection.vendor == "mysql" and not connection.get_autocommit():
            # MySQL and MariaDB run REPEATABLE READ: inside the caller's transaction a
            # plain SELECT would still see the snapshot taken before the other writer.
            current = current.select_for_update()
        found = list(current.values_list(attname, flat=True))
        if not found:
            raise ProjectNotFoundError(project_key=project.pk)
        setattr(project, attname, found[0])

    @contextmanager
    def job_scope(self) -> Iterator[None]:
        """Recycle this thread's database connections around a render job.

        The render runner calls it around each job on its worker threads (and around each
        heartbeat tick): like Django's request cycle, it closes the connections that are
        broken or older than ``CONN_MAX_AGE`` before and after, so a long-lived worker
        thread never reuses a dead connection or keeps one open forever.

        A connection inside a transaction is left alone: a job rendered in the caller's
        thread (immediate mode, Celery's ``task_always_eager``, a test's ``TestCase``) runs
        in the caller's transaction, which recycling would break.
        """
        _recycle_connections()
        try:
            yield
        finally:
            _recycle_connections()

    def in_callers_transaction(self, project: Any) -> bool:
        """Whether a write of ``project`` now would be inside the caller's own transaction.

        The render runner asks before an immediate render, which it refuses there: the
        video would be published before the transaction commits. A transaction a Django
        ``TestCase`` opened around the test (and the blocks inside it) does not count: the
        test's rollback is the test's.
        """
        _check_model(project)
        model = type(project)
        using = self.using or project._state.db or router.db_for_write(model, instance=project)
        connection = connections[using]
        if not connection.in_atomic_block and connection.get_autocommit():
            return False
        blocks = getattr(connection, "atomic_blocks", [])
        return not (blocks and getattr(blocks[0], "_from_testcase", False))

    def project_key(self, project: Any) -> object:
        """Return ``project.pk``, or ``None`` while the instance was never saved."""
        _check_model(project)
        return None if project._state.adding else project.pk

    def empty_output(self, project: Any, field: str) -> str | None:
        """Return ``None`` for a ``null=True`` field, else ``""``."""
        _check_model(project)
        return None if project._meta.get_field(field).null else ""

    def check_fields(self, project: Any, names: Collection[str]) -> Mapping[str, int | None]:
        """Check that each name is a concrete field of the model; return its ``max_length``.

        Raises:
            ValueError: a name is no concrete field (a relation's reverse side, a
                many-to-many, a property) or is the primary key.
            TypeError: ``project`` is not a Django model instance.
        """
        _check_model(project)
        return _check_fields(project, names)

    def non_text_fields(self, project: Any, names: Collection[str]) -> Mapping[str, str]:
        """The class name of each of ``names`` that is no text field, for ``error_field``.

        Text fields are ``CharField``, ``TextField`` and their subclasses; the lifecycle
        refuses any other as ``error_field`` or ``task_id_field``.

        Raises:
            ValueError: a name is no concrete field, as for :meth:`check_fields`.
            TypeError: ``project`` is not a Django model instance.
        """
        _check_model(project)
        return _non_text_fields(project, names)


def _non_text_fields(project: Any, names: Collection[str]) -> dict[str, str]:
    _check_fields(project, names)
    opts = project._meta
    fields = {name: opts.get_field(name) for name in names}
    return {
        name: type(field).__name__
        for name, field in fields.items()
        if not isinstance(field, CharField | TextField)
    }


def _check_fields(project: Any, names: Collection[str]) -> dict[str, int | None]:
    opts = project._meta
    lengths: dict[str, int | None] = {}
    unknown: list[str] = []
    for name in names:
        try:
            field = opts.get_field(name)
        except FieldDoesNotExist:
            field = None
        if (
            field is None
            or not field.concrete
            or field.many_to_many
            or field.primary_key
            or field.name != name
        ):
            unknown.append(name)
        else:
            lengths[name] = getattr(field, "max_length", None)
    if unknown:
        available = [f.name for f in opts.concrete_fields if not f.primary_key]
        raise unknown_columns(type(project).__name__, unknown, available)
    return lengths


def _recycle_connections() -> None:
    """``close_old_connections()``, sparing the connections inside a transaction."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class _Binary(Func):
    """``CAST(column AS BINARY)``: a byte-for-byte comparison on MySQL and MariaDB."""

    template = "CAST(%(expressions)s AS BINARY)"
    output_field = CharField()


def _check_model(project: object, adapter: str = "DjangoAdapter") -> None:
    if not isinstance(project, models.Model):
        raise foreign_object(adapter=adapter, expected="Django model instances", project=project)


class _Pending:
    """A transition written inside a transaction that has neither committed nor rolled back."""

    __slots__ = ("connection", "forget", "previous", "written")

    def __init__(
        self,
        connection: Any,
        previous: dict[str, Any],
        written: dict[str, Any],
        forget: Callable[[], None],
    ) -> None:
        self.connection = connection
        self.previous = previous
        self.written = written
        self.forget = forget

    def rolled_back(self) -> bool:
        # Django drops the on_commit callbacks of a transaction or savepoint it rolls back,
        # and runs (then drops) them on commit, where ``forget`` removes this record.
        return not any(entry[1] is self.forget for entry in self.connection.run_on_commit)


def _undo_on_rollback(
    project: Any, connection: Any, previous: dict[str, Any], written: dict[str, Any]
) -> None:
    """Remember the transition, so a rollback of the caller's transaction undoes it on the object.

    Without this, a rolled-back ``start_render()`` leaves the object saying PROCESSING while
    the row says DRAFT, and the next plain ``save()`` writes PROCESSING back with no render
    running.
    """
    pending: list[_Pending] = project.__dict__.setdefault(_UNCOMMITTED, [])

    def forget() -> None:
        if record in pending:
            pending.remove(record)

    record = _Pending(connection, previous, written, forget)
    pending.append(record)
    connection.on_commit(forget)
    pre_save.connect(_settle_before_save, weak=False, dispatch_uid=_UNCOMMITTED)


def _settle(project: Any) -> None:
    """Put back the fields of transitions whose transaction has rolled back since."""
    pending: list[_Pending] | None = project.__dict__.get(_UNCOMMITTED)
    if not pending:
        return
    for record in reversed([r for r in pending if r.rolled_back()]):
        pending.remove(record)
        # Only fields still holding what the transition wrote: a value the caller set
        # afterwards is theirs to save.
        current = {
            name: project.__dict__.get(name, _MISSING)
            for name, value in record.written.items()
            if project.__dict__.get(name, _MISSING) == value
        }
        _restore(project, {name: record.previous[name] for name in current})


def _settle_before_save(sender: object, instance: Any, **kwargs: Any) -> None:
    _settle(instance)


class AsyncDjangoAdapter:
    """:class:`DjangoAdapter` for async views: the same guarded ``UPDATE``, awaited.

    Implements :class:`~renderstate.typing.AsyncAdapter`. Django's async ORM runs the
    database work of ``asave()``, ``aupdate()`` and the other ``a``-methods in a thread
    (``sync_to_async``, thread-sensitive) because its database layer is synchronous;
    this adapter does exactly that with the whole of :meth:`DjangoAdapter.apply`. So the
    write, the ``auto_now`` stamps and the signals are those of the synchronous adapter,
    sent as ``asave()`` sends them: ``pre_save`` and ``post_save`` with ``update_fields``,
    through ``Signal.send()`` in the ORM's thread (Django 5.0+ also runs the async
    receivers connected to them). The check, the write and the signals are one hop to
    that thread, so no other ORM call of the same request can run in between.

    Under ASGI each request has its own ORM thread, hence its own connection, so
    concurrent requests race in the database, where one conditional ``UPDATE`` wins.

    Args:
        using: The database alias to write to; by default the one the instance was loaded
            from, else the router's choice for writes.
    """

    __slots__ = ("_adapter",)

    def __init__(self, using: str | None = None) -> None:
        self._adapter = DjangoAdapter(using)

    def __repr__(self) -> str:
        return f"<AsyncDjangoAdapter using={self.using!r}>"

    @property
    def using(self) -> str | None:
        """The database alias, or ``None`` to follow the instance and the routers."""
        return self._adapter.using

    async def apply(self, project: Any, change: Change) -> bool:
        """Write ``change`` as :meth:`DjangoAdapter.apply` does, in the ORM's thread.

        Raises:
            ProjectNotFoundError: ``project`` was never saved, or its row is gone.
            TypeError: ``project`` is not a Django model instance.
        """
        _check_model(project, _ASYNC_NAME)  # before the hop to the ORM thread
        applied: bool = await sync_to_async(self._adapter.apply)(project, change)
        return applied

    async def refresh_status(self, project: Any, status_field: str) -> None:
        """Read the stored status into ``project`` (one ``SELECT``), in the ORM's thread.

        Raises:
            ProjectNotFoundError: ``project`` was never saved, or its row is gone.
        """
        _check_model(project, _ASYNC_NAME)
        await sync_to_async(self._adapter.refresh_status)(project, status_field)

    def project_key(self, project: Any) -> object:
        """Return ``project.pk``, or ``None`` while the instance was never saved."""
        _check_model(project, _ASYNC_NAME)
        return self._adapter.project_key(project)

    def empty_output(self, project: Any, field: str) -> str | None:
        """Return ``None`` for a ``null=True`` field, else ``""``."""
        _check_model(project, _ASYNC_NAME)
        return self._adapter.empty_output(project, field)

    def check_fields(self, project: Any, names: Collection[str]) -> Mapping[str, int | None]:
        """Check the names as :meth:`DjangoAdapter.check_fields` does (no query)."""
        _check_model(project, _ASYNC_NAME)
        return _check_fields(project, names)

    def non_text_fields(self, project: Any, names: Collection[str]) -> Mapping[str, str]:
        """The names that are no text field, as :meth:`DjangoAdapter.non_text_fields` (no query)."""
        _check_model(project, _ASYNC_NAME)
        return _non_text_fields(project, names)


def _restore(project: Any, previous: dict[str, Any]) -> None:
    for attname, value in previous.items():
        if value is _MISSING:
            project.__dict__.pop(attname, None)
        else:
            setattr(project, attname, value)
