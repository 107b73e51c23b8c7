"""The ledger's checks of its inputs: values every store holds, refused before anything is written.

Every store (memory, SQLAlchemy on SQLite, PostgreSQL and MariaDB, Django, Peewee) must
hold what the ledger accepts. A value that one database refuses would surface as that
driver's ``DataError`` in the middle of a transaction (or, in a heartbeat, on every tick
until the lease runs out); these checks make it the documented ``ValueError`` naming the
field, before the first write.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from typing import Final

from renderstate._attempts import WIDTHS
from renderstate._lifecycle import _describe as describe_error

__all__ = [
    "MAX_COUNT",
    "MAX_ERROR",
    "MAX_ID",
    "check_id",
    "check_owner",
    "check_progress",
    "check_text",
    "describe",
    "is_real",
    "is_token",
    "plain",
]

MAX_ERROR: Final = 8000
"""The most characters of an error's text an attempt keeps (a MySQL ``TEXT`` holds 64 KiB)."""
MAX_COUNT: Final = 2**31 - 1
"""The largest ``done``/``total`` every store holds: an ``INTEGER`` on PostgreSQL and MariaDB
is 32-bit signed."""


def describe(error: BaseException | str | None) -> str | None:
    """Return the text an attempt stores for ``error``: no NUL, at most :data:`MAX_ERROR`."""
    text = describe_error(error)
    if text is None:
        return None
    # Any text an exception carries must fit the column, or the failure could not be saved
    # and the project would stay PROCESSING: PostgreSQL refuses NUL in text, MySQL's TEXT
    # holds 64 KiB.
    text = text.replace("\x00", "\\x00")
    if len(text) > MAX_ERROR:
        cut = len(text) - MAX_ERROR
        text = f"{text[:MAX_ERROR]}... ({cut} more characters cut)"
    return text


MAX_ID: Final = 2**63 - 1
"""The largest attempt id every store holds (a signed 64-bit ``BIGINT``)."""


def check_id(attempt_id: object) -> None:
    """Refuse an attempt id no store holds: not a positive 64-bit integer."""
    if isinstance(attempt_id, bool) or not isinstance(attempt_id, int):
        msg = f"an attempt id must be an int, got {type(attempt_id).__name__}"
        raise TypeError(msg)
    if not 1 <= attempt_id <= MAX_ID:
        msg = f"an attempt id is a positive 64-bit integer (1 to {MAX_ID}), got {attempt_id}"
        raise ValueError(msg)


def check_text(field: str, value: object) -> None:
    """Refuse a text wider than its ledger column or holding a NUL character.

    Raises:
        TypeError: ``value`` is neither a string nor ``None``.
        ValueError: ``value`` is too long for its column, or contains a NUL character.
    """
    if value is None:
        return
    if not isinstance(value, str):
        msg = f"{field} must be a string or None, got {type(value).__name__}"
        raise TypeError(msg)
    width = WIDTHS[field]
    if len(value) > width:
        msg = f"{field} is {len(value)} characters; the ledger stores at most {width}: shorten it"
        raise ValueError(msg)
    if "\x00" in value:
        msg = f"{field} contains a NUL character, which databases do not store in text: {value!r}"
        raise ValueError(msg)


def check_owner(owner: object, *, required: bool = False) -> None:
    """Refuse an owner token that fences nothing, or not alike in every database.

    An empty token would be replaced by a fresh one the caller never learns; a missing one
    where a fence is needed (``give_up``) would match whoever holds the attempt; one with
    capitals or spaces would match its variants on MariaDB only.

    Raises:
        TypeError: ``owner`` is not a string (nor ``None`` where that means "make one").
        ValueError: ``owner`` is not 1 to 64 lowercase hexadecimal digits.
    """
    if owner is None and required:
        msg = "owner must be the owner token the caller's begin was given, got None"
        raise TypeError(msg)
    check_text("owner", owner)
    if isinstance(owner, str) and not is_token(owner):
        # MariaDB compares text case-insensitively and ignores trailing spaces: 'abc',
        # 'ABC' and 'abc ' would be one owner there and three elsewhere.
        msg = (
            f"owner must be a token as new_owner() makes it (1 to {WIDTHS['owner']} "
            f"lowercase hexadecimal digits), the same in every database, got {owner!r}"
        )
        raise ValueError(msg)


_TOKEN: Final = re.compile(r"[0-9a-f]+")


def is_token(owner: str) -> bool:
    """Whether ``owner`` is an owner token every database compares exactly (lowercase hex)."""
    return len(owner) <= WIDTHS["owner"] and _TOKEN.fullmatch(owner) is not None


def check_progress(progress: Mapping[str, object]) -> None:
    """Refuse heartbeat progress values out of range or wider than their columns.

    Raises:
        ValueError: a value out of range, naming its field.
    """
    for name, value in progress.items():
        if name == "phase":
            if not isinstance(value, str) or not 0 < len(value) <= WIDTHS["phase"]:
                msg = (
                    f"heartbeat progress phase must be a string of 1 to {WIDTHS['phase']} "
                    f"characters, got {value!r}"
                )
                raise ValueError(msg)
            if "\x00" in value:
                msg = (
                    "heartbeat progress phase contains a NUL character, which databases do "
                    f"not store in text: {value!r}"
                )
                raise ValueError(msg)
        elif name == "label":
            _check_label(value)
        elif name in ("done", "total"):
            if not is_real(value) or not 0 <= value <= MAX_COUNT:  # type: ignore[operator]
                msg = (
                    f"heartbeat progress {name} must be a count from 0 to {MAX_COUNT} "
                    f"(a 32-bit column), got {value!r}"
                )
                raise ValueError(msg)
        elif name == "fraction":
            if not is_real(value) or not 0.0 <= value <= 1.0:  # type: ignore[operator]
                msg = f"heartbeat progress fraction must be a number from 0 to 1, got {value!r}"
                raise ValueError(msg)
        elif value is not None and (not is_real(value) or value < 0):  # type: ignore[operator]
            msg = f"heartbeat progress eta_seconds must be None or seconds >= 0, got {value!r}"
            raise ValueError(msg)


def _check_label(label: object) -> None:
    """Refuse a progress label the ledger's ``label`` column would not hold as given."""
    if label is None:
        return
    width = WIDTHS["label"]
    if not isinstance(label, str) or len(label) > width:
        # Never the value itself: a hostile label may be megabytes long.
        shown = f"{len(label)} characters" if isinstance(label, str) else type(label).__name__
        msg = (
            f"heartbeat progress label must be None or a text of at most {width} "
            f"characters, got {shown}: shorten it (the runner's tracker cuts its labels "
            f"to fit)"
        )
        raise ValueError(msg)
    if "\x00" in label:
        msg = (
            "heartbeat progress label contains a NUL character, which databases do not "
            f"store in text: {label!r}"
        )
        raise ValueError(msg)
    try:
        label.encode("utf-8")
    except UnicodeEncodeError as exc:
        msg = (
            f"heartbeat progress label is no UTF-8 text (a lone surrogate at {exc.start}), "
            f"which databases do not store: {label!r}"
        )
        raise ValueError(msg) from exc


def is_real(value: object) -> bool:
    """Whether ``value`` is a finite real number and not a bool."""
    # numbers.Real: a renderer's numpy counts are fine; bool is not a count.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(value)


def plain(value: object) -> object:
    """A checked progress value as Python's own number (a numpy count as an ``int``).

    A renderer's numpy counts are fine, but SQLite's driver would store a numpy scalar as
    the bytes of its buffer.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value  # the phase, or no ETA
    return int(value) if isinstance(value, numbers.Integral) else float(value)
