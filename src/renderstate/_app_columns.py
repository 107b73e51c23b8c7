"""The app's own columns for a render's failure reason and its task id.

``error_field`` and ``task_id_field`` of :class:`~renderstate.ProjectLifecycle`: checked once
per lifecycle, written in the transitions' own guarded ``UPDATE``.
"""

from __future__ import annotations

import uuid
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from renderstate._fields import (
    LONGEST_REASON,
    check_text_columns,
    column_lengths,
    fit,
    non_text_columns,
)
from renderstate._layout import trusted_change
from renderstate._status import Status

if TYPE_CHECKING:
    from renderstate._lifecycle import ProjectLifecycle

__all__ = ["UUID_COLUMNS", "AppColumns", "as_uuid"]


UUID_COLUMNS: Final = frozenset({"UUIDField"})
"""The adapters' names of the UUID column types a ``task_id_field`` may name: Django's and
Peewee's ``UUIDField``."""


def as_uuid(task_id: str, field: str) -> uuid.UUID:
    """``task_id`` as the UUID a UUID column stores, or a ``ValueError`` naming the column."""
    try:
        return uuid.UUID(task_id)
    except ValueError:
        msg = (
            f"task_id {task_id!r} is no UUID and {field!r} is a UUID column: give the task "
            f"system's ids (Celery's are UUIDs) or name a text column. Nothing was written"
        )
        raise ValueError(msg) from None


class AppColumns:
    """The app's columns for the failure reason and the task id, checked once per lifecycle."""

    __slots__ = ("_empty", "_uuid", "error_field", "lengths", "reserved", "task_id_field")

    def __init__(
        self,
        lifecycle: ProjectLifecycle[Any],
        error_field: str | None,
        task_id_field: str | None,
    ) -> None:
        layout = lifecycle._layout
        taken = {layout.status_field: "status_field"}
        if layout.output_field is not None:
            taken[layout.output_field] = "output_field"
        named: dict[str, object] = {"error_field": error_field, "task_id_field": task_id_field}
        for option, name in named.items():
            if name is None:
                continue
            if not isinstance(name, str) or not name:
                msg = f"{option} must name a column of the model (a str), got {name!r}"
                raise TypeError(msg)
            if name in taken:
                msg = (
                    f"{option} and {taken[name]} are both {name!r}; give the app's "
                    f"{option.removesuffix('_field').replace('_', ' ')} a column of its own"
                )
                raise ValueError(msg)
            taken[name] = option
        self.error_field = error_field
        self.task_id_field = task_id_field
        self.reserved = {name: option for option, name in named.items() if isinstance(name, str)}
        adapter, project = lifecycle._adapter, lifecycle._project
        self.lengths = column_lengths(adapter, project, list(self.reserved))
        kinds = non_text_columns(adapter, project, list(self.reserved))
        # A UUID column holds the task id of a task system whose ids are UUIDs (Celery's,
        # django-tasks'): the transcoding app's Video.task_id is one.
        self._uuid = task_id_field is not None and kinds.get(task_id_field) in UUID_COLUMNS
        texts = {
            option: name
            for name, option in self.reserved.items()
            if not (self._uuid and option == "task_id_field")
        }
        check_text_columns(adapter, project, texts)
        self._empty = {name: adapter.empty_output(project, name) for name in self.reserved}
        if self._uuid and self._empty[str(task_id_field)] is not None:
            msg = (
                f"task_id_field {task_id_field!r}: {type(project).__name__}.{task_id_field} is "
                f"a UUID column that cannot be NULL, which a render without a task id (a "
                f"thread executor's) needs: make it nullable (null=True), or leave "
                f"task_id_field out. Nothing was written"
            )
            raise ValueError(msg)

    def on_start(self, task_id: object) -> dict[str, object]:
        """What a start writes: the task id (or nothing there), and no failure reason."""
        values: dict[str, object] = {}
        if self.error_field is not None:
            values[self.error_field] = self._empty[self.error_field]
        field = self.task_id_field
        if field is not None:
            if task_id is not None:
                if not isinstance(task_id, str):  # callers without a type checker
                    msg = f"task_id must be a str, got {type(task_id).__name__}"
                    raise TypeError(msg)
                if "\x00" in task_id:
                    # PostgreSQL refuses it in the middle of the start's transaction;
                    # MariaDB and SQLite would store it. Refused the same everywhere.
                    msg = f"task_id holds a NUL character: {task_id!r}. Nothing was written"
                    raise ValueError(msg)
                if self._uuid:
                    values[field] = as_uuid(task_id, field)
                    return values
                limit = self.lengths.get(field)
                if limit is not None and len(task_id) > limit:
                    msg = (
                        f"task_id is {len(task_id)} characters long and {field!r} holds at "
                        f"most {limit}; widen the column. Nothing was written"
                    )
                    raise ValueError(msg)
                values[field] = task_id
            else:
                values[field] = self._empty[field]
        return values

    def on_fail(self, text: str | None) -> dict[str, object] | None:
        """What a failure writes: its reason, cut to the column, if the app has a column."""
        field = self.error_field
        if field is None:
            return None
        if text is None:
            return {field: self._empty[field]}
        # Spelled out as the ledger's attempt spells it: PostgreSQL refuses NUL in text,
        # and a refused failure would leave the project PROCESSING after its render.
        text = text.replace("\x00", "\\x00")
        limit = self.lengths.get(field)
        # A column without a length may still be bounded (a MySQL TEXT holds 64 KiB): a
        # reason it refused would leave the project PROCESSING too.
        return {field: fit(text, LONGEST_REASON if limit is None else limit)}

    def task_id_value(self, task_id: str) -> object:
        """``task_id`` as :meth:`write_task_id` writes it, checked as a start checks it.

        Raises:
            ValueError: it is longer than ``task_id_field``'s column or holds a NUL.
        """
        assert self.task_id_field is not None  # the caller checked the lifecycle names one
        return self.on_start(task_id)[self.task_id_field]

    def write_task_id(self, lifecycle: ProjectLifecycle[Any], value: object) -> bool:
        """Write ``value`` (see :meth:`task_id_value`) to ``task_id_field`` while PROCESSING.

        For a task system that names the render only once it is queued, after the start
        (Django's tasks framework): one guarded ``UPDATE`` that keeps the status literal
        the row holds and matches only while that literal is still stored, so a project
        that left PROCESSING meanwhile keeps its column. The attempt ledger calls it
        inside the transaction that first checks the attempt is still live
        (:meth:`Ledger.hand_off <renderstate.ledger.Ledger.hand_off>`).

        Returns:
            Whether it was written (``False``: the project is no longer PROCESSING).
        """
        field = self.task_id_field
        assert field is not None  # the caller checked the lifecycle names one
        layout = lifecycle._layout
        project = lifecycle.project
        status_field = layout.status_field
        processing = layout.literals.all_stored[Status.PROCESSING]
        for _ in range(len(processing) + 1):
            held = getattr(project, status_field)
            if held not in processing:
                # Stale or not PROCESSING: the row decides, the written literal first.
                held = processing[0]
            change = trusted_change(
                status_field,
                frozenset((held,)),
                MappingProxyType({status_field: held, field: value}),
            )
            if lifecycle._adapter.apply(project, change):
                return True
            if lifecycle.status is not Status.PROCESSING:  # apply() read the stored status
                return False
        return False
