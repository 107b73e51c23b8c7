"""The in-memory adapter: state lives on the object itself (the default adapter)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Collection, Mapping
from typing import Any, Final

from renderstate._fields import column_lengths
from renderstate._records import Change

__all__ = ["MemoryAdapter"]

_MISSING = object()


class MemoryAdapter:
    """Applies changes to the object's attributes, atomically across threads.

    One lock per adapter makes each compare-and-set atomic, so N threads sharing an
    object (and this adapter) produce exactly one winner. Every ``ProjectLifecycle``
    built without an adapter shares one module-level instance, hence one lock.
    Nothing is persisted: use it for plain objects, tests and scripts.
    """

    stores_in_object: Final = True
    """The object is the store: there is no row that could be missing."""

    def __init__(self, *, key_attributes: tuple[str, ...] = ("pk", "id")) -> None:
        self.key_attributes = key_attributes
        """Attributes tried, in order, for the project's key in messages and records."""
        self._lock = threading.Lock()

    def apply(self, project: object, change: Change) -> bool:
        """Set ``change.values`` on ``project`` if its status is expected; see :class:`Adapter`."""
        with self._lock:
            current = getattr(project, change.status_field, _MISSING)
            try:
                matches = current in change.expected
            except TypeError:  # an unhashable value is never an expected literal
                matches = False
            if not matches:
                return False
            values = change.values
            if len(values) == 1:
                # A single field: if setting it fails, nothing has changed.
                ((field, value),) = values.items()
                setattr(project, field, value)
                return True
            done: list[tuple[str, Any]] = []
            try:
                for field, value in values.items():
                    old = getattr(project, field, _MISSING)
                    setattr(project, field, value)
                    done.append((field, old))
            except BaseException:
                # A read-only or validating attribute refused the value: put back what we
                # already changed so that a refused transition changes nothing.
                for field, old in reversed(done):
                    if old is _MISSING:
                        with contextlib.suppress(AttributeError):
                            delattr(project, field)
                    else:
                        setattr(project, field, old)
                raise
            return True

    def refresh_status(self, project: object, status_field: str) -> None:
        """Nothing to do: the object itself is the store."""

    def project_key(self, project: object) -> object:
        """Return the first of ``key_attributes`` that the object has, else ``None``."""
        for name in self.key_attributes:
            value = getattr(project, name, None)
            if value is not None:
                return value
        return None

    def empty_output(self, project: object, field: str) -> str | None:
        """Plain objects have no schema: "no video" is ``None``."""
        return None

    def check_fields(self, project: object, names: Collection[str]) -> Mapping[str, int | None]:
        """Plain objects have no schema: each name must be an attribute the object has.

        Raises:
            ValueError: ``project`` has no attribute of one of the names.
        """
        return column_lengths(None, project, names)


DEFAULT_ADAPTER = MemoryAdapter()
"""The adapter ``ProjectLifecycle`` uses when given none."""
