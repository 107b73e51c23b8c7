"""The app's own columns a transition writes beside the status: names checked, values fitted.

A completion may carry extra fields of the app (``duration``, ``metadata``), written in the
same guarded ``UPDATE`` as the status, so an attempt that no longer may complete writes none
of them. A lifecycle may also name the app's columns for the failure reason
(``error_field``) and the task system's id (``task_id_field``). Each name is checked before
anything is written: by the adapter when it can read the model's schema (its optional
``check_fields``), else as an attribute of the object; the columns for the reason and the
task id must hold text (the adapter's optional ``non_text_fields``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Final

__all__ = [
    "LONGEST_REASON",
    "check_text_columns",
    "check_values",
    "column_lengths",
    "fit",
    "non_text_columns",
    "unknown_columns",
]

_SHOWN: Final = 20
"""How many of the model's columns an error lists."""
LONGEST_REASON: Final = 8000
"""The most characters of a failure reason written to an ``error_field`` without a length
(a ``TEXT``): a MySQL ``TEXT`` holds 64 KiB, 8000 characters of up to 4 bytes each."""


def unknown_columns(model: str, unknown: Iterable[str], available: Iterable[str]) -> ValueError:
    """The error for names that are no column the adapter can write, listing the columns."""
    names = ", ".join(repr(name) for name in unknown)
    choices = sorted(available)
    listed = ", ".join(choices[:_SHOWN]) + (", ..." if len(choices) > _SHOWN else "")
    msg = (
        f"{model} has no writable column {names}: name columns of the model (not its "
        f"primary key), such as {listed or 'none'}; mind the spelling, or add the column "
        f"to the model first. Nothing was written"
    )
    return ValueError(msg)


def column_lengths(
    adapter: object, project: object, names: Collection[str]
) -> Mapping[str, int | None]:
    """Each name's maximum length in characters (``None``: unbounded), checked by ``adapter``.

    An adapter without ``check_fields`` (one written for an earlier version, a plain
    object's) has each name checked as an attribute of ``project``.

    Raises:
        ValueError: a name is no column of the model; nothing was written.
    """
    check: Callable[[Any, Collection[str]], Mapping[str, int | None]] | None = getattr(
        adapter, "check_fields", None
    )
    if check is not None:
        return check(project, names)
    missing = [name for name in names if not hasattr(project, name)]
    if missing:
        available = [name for name in vars(project) if not name.startswith("_")]
        raise unknown_columns(type(project).__name__, missing, available)
    return dict.fromkeys(names)


def non_text_columns(adapter: object, project: object, names: Collection[str]) -> Mapping[str, str]:
    """Each of ``names`` whose column holds no text, with its type's name, by ``adapter``.

    An adapter without ``non_text_fields`` (a plain object's, one written for an earlier
    version) knows no column types: nothing is refused.
    """
    find: Callable[[Any, Collection[str]], Mapping[str, str]] | None = getattr(
        adapter, "non_text_fields", None
    )
    return {} if find is None else find(project, names)


def check_text_columns(adapter: object, project: object, named: Mapping[str, str]) -> None:
    """Refuse an ``error_field`` or ``task_id_field`` whose column holds no text.

    Args:
        adapter: Reads the model's column types.
        project: The project object.
        named: The lifecycle option (``"error_field"``) -> the column it names.

    Raises:
        ValueError: a named column holds no text (an integer, a date, JSON): the failure
            reason or the task id written there would be refused by the database (a
            ``DataError`` on PostgreSQL) and leave the project PROCESSING.
    """
    wrong = non_text_columns(adapter, project, list(named.values()))
    for option, name in named.items():
        kind = wrong.get(name)
        if kind is not None:
            what = "failure reason" if option == "error_field" else "task id"
            msg = (
                f"{option} {name!r}: {type(project).__name__}.{name} is of type {kind}, "
                f"which cannot hold the {what} (a text): name a text column (Django's or "
                f"Peewee's CharField or TextField, SQLAlchemy's String or Text), or leave "
                f"{option} out. Nothing was written"
            )
            raise ValueError(msg)


def check_values(
    values: object,
    reserved: Mapping[str, str],
    adapter: object,
    project: object,
) -> dict[str, object]:
    """Check the app's extra ``values`` for a transition; return them as a new dict.

    Args:
        values: Column name -> value, as the caller gave them.
        reserved: Column name -> the lifecycle option naming it (``status_field``...): the
            transition writes those itself.
        adapter: Checks the names against the model's schema.
        project: The project object.

    Raises:
        TypeError: ``values`` is not a mapping, or a name is not a string.
        ValueError: a name is reserved or no column, or a text is longer than its column
            or holds a NUL character; nothing was written.
    """
    if not isinstance(values, Mapping):
        msg = (
            f"fields must be a mapping of column name to value, such as "
            f"{{'duration': 12.5}}; got a {type(values).__name__}"
        )
        raise TypeError(msg)
    for name in values:
        if not isinstance(name, str):  # callers without a type checker
            msg = f"fields has the key {name!r}; each key is a column name, a str"
            raise TypeError(msg)
        option = reserved.get(name)
        if option is not None:
            msg = (
                f"fields names {name!r}, the lifecycle's {option}: the transition writes it "
                f"itself; leave it out of fields. Nothing was written"
            )
            raise ValueError(msg)
    lengths = column_lengths(adapter, project, list(values))
    for name, value in values.items():
        if isinstance(value, str) and "\x00" in value:
            # PostgreSQL refuses it in the middle of the transaction; the others store it.
            msg = (
                f"fields[{name!r}] holds a NUL character, which PostgreSQL cannot store; "
                f"remove it. Nothing was written"
            )
            raise ValueError(msg)
        limit = lengths.get(name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            msg = (
                f"fields[{name!r}] is {len(value)} characters long and the column holds at "
                f"most {limit}; shorten it or widen the column. Nothing was written"
            )
            raise ValueError(msg)
    return dict(values)


def fit(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis last), for a reason the app stores."""
    if limit is None or len(text) <= limit:
        return text
    if limit < 1:
        return ""
    return text[: limit - 1] + "\u2026"
