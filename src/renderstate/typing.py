"""The public Protocols: what renderstate asks of the objects you plug into it.

- :class:`Adapter` persists a :class:`~renderstate.Change` (see "Write your own adapter").
- :class:`Observer` is told about each transition after it has been persisted.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from renderstate._records import Change, TransitionRecord

__all__ = ["Adapter", "Observer", "ProjectT", "ProjectT_contra"]

ProjectT = TypeVar("ProjectT")
"""The user's project type (an ORM row, a dataclass, any object)."""
ProjectT_contra = TypeVar("ProjectT_contra", contravariant=True)


class Adapter(Protocol[ProjectT_contra]):
    """Persists transitions for one kind of project object.

    An adapter never decides a transition: the domain hands it a :class:`Change` and it
    answers whether the change applied. Every method name is the same in every adapter.
    """

    def apply(self, project: ProjectT_contra, change: Change) -> bool:
        """Write ``change.values`` if, and only if, the stored status is in ``change.expected``.

        The check and the write must be one atomic step in the store (a single conditional
        ``UPDATE`` for a database), so that concurrent callers cannot both succeed.

        On success, set the new values on ``project`` too and return ``True``. When the
        stored status is not expected, write nothing, set ``project``'s status attribute to
        the value the store holds, and return ``False``.

        Raises:
            ProjectNotFoundError: ``project`` is not stored (unsaved or deleted).
        """
        ...

    def project_key(self, project: ProjectT_contra) -> object:
        """Return the project's primary key, or ``None`` if it has none yet."""
        ...

    def empty_output(self, project: ProjectT_contra, field: str) -> str | None:
        """Return what ``field`` holds when there is no video: ``None`` or ``""``."""
        ...


class Observer(Protocol):
    """A callback told about each transition after the adapter has persisted it."""

    def __call__(self, record: TransitionRecord, /) -> None:
        """React to ``record``; an exception is logged and does not undo the transition."""
