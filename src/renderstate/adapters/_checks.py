"""Checks every ORM adapter makes before it writes: the right kind of object, values that fit."""

from __future__ import annotations

from renderstate.exceptions import InvalidOutputPathError

__all__ = ["check_length", "foreign_object"]

_SIBLINGS = (
    "DjangoAdapter for Django models, SQLAlchemyAdapter for SQLAlchemy mapped objects, "
    "PeeweeAdapter for Peewee models, MemoryAdapter (the default) for plain objects"
)


def foreign_object(*, adapter: str, expected: str, project: object) -> TypeError:
    """The error for an object that ``adapter`` cannot store, naming what it expected."""
    kind = type(project)
    msg = (
        f"{adapter} stores {expected}; got a {kind.__module__}.{kind.__qualname__}. "
        f"Give each object the adapter of its own ORM: {_SIBLINGS}"
    )
    return TypeError(msg)


def check_length(value: object, max_length: int | None, column: str) -> None:
    """Refuse an output path longer than its column, before the driver does with a DataError.

    Raises:
        InvalidOutputPathError: ``value`` is a string of more than ``max_length`` characters.
    """
    if max_length is not None and isinstance(value, str) and len(value) > max_length:
        raise InvalidOutputPathError(
            path=value,
            reason=(
                f"it is {len(value)} characters long and the column {column!r} holds at "
                f"most {max_length}; use a shorter path or widen the column"
            ),
        )
