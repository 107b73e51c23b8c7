"""The in-memory adapter: state lives on the object itself.

It is the default adapter of :class:`~renderstate.ProjectLifecycle`, and needs no extra.
"""

from __future__ import annotations

from renderstate._memory import MemoryAdapter

__all__ = ["MemoryAdapter"]
