"""The Django adapter: each transition is ``save(update_fields=...)`` guarded by the status.

Install with ``pip install 'renderstate[django]'``. The model needs no mixin, manager,
field or migration::

    from renderstate import ProjectLifecycle
    from renderstate.adapters.django import DjangoAdapter

    ProjectLifecycle(project, adapter=DjangoAdapter()).start_render()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

try:
    from django.db import close_old_connections, connections, models, router
    from django.db.models.signals import post_save, pre_save
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        "renderstate.adapters.django needs Django; "
        "install it with: pip install 'renderstate[django]'"
    )
    raise ImportError(msg) from exc

from renderstate._records import Change
from renderstate.adapters._checks import check_length, foreign_object
from renderstate.exceptions import ProjectNotFoundError

__all__ = ["DjangoAdapter"]

_MISSING: Final = object()


class DjangoAdapter:
    """Persists transitions of Django model instances with one conditional ``UPDATE``.

    The write behaves like ``project.save(update_fields=[...])`` where the fields are
    the ones the transition changes plus the model's ``auto_now`` fields: ``pre_save`` and
    ``post_save`` are sent with ``update_fields`` set, ``auto_now`` values are stamped on
    the instance, and the ``UPDATE`` names exactly those columns. Unlike ``save()``, the
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
            values = {f.attname: f.pre_save(project, add=False) for f in written}
            status = opts.get_field(change.status_field).attname
            guarded = model._base_manager.using(using).filter(
                pk=project.pk, **{f"{status}__in": change.expected}
            )
            applied = guarded.update(**values) == 1
        except BaseException:
            _restore(project, previous)
            raise
        if applied:
            project._state.db = using
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
        """
        close_old_connections()
        try:
            yield
        finally:
            close_old_connections()

    def project_key(self, project: Any) -> object:
        """Return ``project.pk``, or ``None`` while the instance was never saved."""
        _check_model(project)
        return None if project._state.adding else project.pk

    def empty_output(self, project: Any, field: str) -> str | None:
        """Return ``None`` for a ``null=True`` field, else ``""``."""
        _check_model(project)
        return None if project._meta.get_field(field).null else ""


def _check_model(project: object) -> None:
    if not isinstance(project, models.Model):
        raise foreign_object(
            adapter="DjangoAdapter", expected="Django model instances", project=project
        )


def _restore(project: Any, previous: dict[str, Any]) -> None:
    for attname, value in previous.items():
        if value is _MISSING:
            project.__dict__.pop(attname, None)
        else:
            setattr(project, attname, value)
