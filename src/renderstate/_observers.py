"""What a transition tells the outside: the error text it records, and its observers.

A transition is persisted first and reported after: :func:`describe_error` turns the
error a render failed with into the text its :class:`~renderstate.TransitionRecord`
carries, and :func:`notify_observers` hands the record to each observer, so that a broken
observer can neither undo the transition nor hide it from the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from renderstate._records import TransitionRecord
from renderstate.typing import Observer

__all__ = ["describe_error", "notify_observers"]

logger = logging.getLogger("renderstate")


def describe_error(error: BaseException | str | None) -> str | None:
    """Return the text a record carries for ``error``: a str as is, an exception by type."""
    if error is None or isinstance(error, str):
        return error
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def notify_observers(observers: Iterable[Observer], record: TransitionRecord) -> None:
    """Tell each observer about ``record``; one that raises is logged and the rest still run."""
    for observer in observers:
        try:
            observer(record)
        except Exception:
            # The transition is already persisted: an observer cannot undo it, and one
            # broken observer must not hide the transition from the others.
            logger.exception(
                "renderstate observer %r failed on %s of project %r",
                observer,
                record.edge.value,
                record.project_key,
            )
