"""The two values that cross the domain's boundary: a change to apply, and its record."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from renderstate._status import Edge, Status, Trigger

__all__ = ["Change", "Rendered", "TransitionRecord"]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    # The lifecycle hands over a proxy of a dict it never touches again; copy anything else.
    if type(mapping) is MappingProxyType:
        return mapping
    return MappingProxyType(dict(mapping))


@dataclasses.dataclass(frozen=True)
class Change:
    """What an adapter is asked to do: set ``values`` if the stored status is in ``expected``.

    The domain computes it; an adapter only translates it into one conditional write
    (``UPDATE ... SET <values> WHERE pk = ? AND <status_field> IN <expected>``).
    """

    status_field: str
    """The name of the status attribute/column."""
    expected: frozenset[Hashable]
    """The stored literals the status must hold for the write to apply."""
    values: Mapping[str, Any]
    """Field name -> new stored value; always contains ``status_field``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _frozen(self.values))
        if type(self.expected) is not frozenset:
            object.__setattr__(self, "expected", frozenset(self.expected))
        if self.status_field not in self.values:
            msg = f"a Change must set its status field {self.status_field!r}"
            raise ValueError(msg)
        if not self.expected:
            msg = "a Change must expect at least one status"
            raise ValueError(msg)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the fields this change writes, in a stable order."""
        return tuple(self.values)


class TransitionRecord(NamedTuple):
    """What one successful transition did; returned by every lifecycle method.

    A named tuple: immutable, cheap to build on the hot path, and ``_asdict()`` gives a dict
    for logs and JSON. Only the lifecycle builds records; ``changes`` is a read-only mapping.
    """

    project_key: object
    """The project's primary key (``None`` for objects without one)."""
    trigger: Trigger
    """The operation that was asked for."""
    edge: Edge
    """Which of the five edges ran."""
    source: Status
    """The status before the transition."""
    target: Status
    """The status after the transition."""
    changes: Mapping[str, Any]
    """Field name -> new stored value, exactly the fields the domain changed (read-only)."""
    error: str | None = None
    """For ``fail``: a one-line description of the error, if one was given."""


class Rendered(NamedTuple):
    """What a renderer may return: the file it wrote, and the app's columns to save with it.

    ``fields`` (``{"duration": 12.5, "metadata": {...}}``) are written in the completion's
    own guarded ``UPDATE`` (``complete(path, fields=...)``): a render whose completion is
    refused, or whose attempt was superseded, writes none of them. Their names are checked
    before the video is published; a name that is no column fails the render.
    """

    path: str | os.PathLike[str] | None
    """The file (or directory) written, as a renderer returns it; ``None``: the target."""
    fields: Mapping[str, Any] = MappingProxyType({})
    """The app's other columns to save with the completion."""
