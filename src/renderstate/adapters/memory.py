"""The in-memory adapters: state lives on the object itself.

:class:`MemoryAdapter` is the default adapter of :class:`~renderstate.ProjectLifecycle`;
:class:`AsyncMemoryAdapter` is its :class:`~renderstate.typing.AsyncAdapter` twin, for
testing async code. Neither needs an extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Final

from renderstate._memory import MemoryAdapter
from renderstate._records import Change

__all__ = ["AsyncMemoryAdapter", "MemoryAdapter"]


class AsyncMemoryAdapter:
    """An async adapter that applies changes to the object's attributes.

    Each call first yields to the event loop, as a database round trip would, so that
    concurrent tasks really interleave; the compare-and-set itself is one atomic step
    (under a lock, so threads and several event loops can share the adapter), hence of N
    tasks starting one render exactly one wins. Nothing is persisted: use it to test
    async code that drives :meth:`~renderstate.ProjectLifecycle.astart_render` & co.

    Args:
        key_attributes: Attributes tried, in order, for the project's key.
    """

    stores_in_object: Final = True
    """The object is the store: there is no row that could be missing."""

    def __init__(self, *, key_attributes: tuple[str, ...] = ("pk", "id")) -> None:
        self._memory = MemoryAdapter(key_attributes=key_attributes)
        self.applied = 0
        """How many changes applied (a refused compare-and-set is not counted)."""
        self.refreshes = 0
        """How many times the lifecycle asked for the current status."""

    async def apply(self, project: object, change: Change) -> bool:
        """Set ``change.values`` if the status is expected; see ``AsyncAdapter.apply``."""
        await asyncio.sleep(0)
        applied = self._memory.apply(project, change)
        self.applied += applied
        return applied

    async def refresh_status(self, project: object, status_field: str) -> None:
        """Nothing to read: the object itself is the store."""
        await asyncio.sleep(0)
        self.refreshes += 1

    def project_key(self, project: object) -> object:
        """Return the first of ``key_attributes`` that the object has, else ``None``."""
        return self._memory.project_key(project)

    def empty_output(self, project: object, field: str) -> str | None:
        """Plain objects have no schema: "no video" is ``None``."""
        return None

    def check_fields(self, project: object, names: Collection[str]) -> Mapping[str, int | None]:
        """Each name must be an attribute the object has; see ``MemoryAdapter.check_fields``."""
        return self._memory.check_fields(project, names)
