"""Retrying a ledger statement that the database chose as a deadlock victim.

InnoDB (MySQL, MariaDB) can deadlock two single-row statements on one attempt: a lease
renewal that locked the primary key and waits for the ``(state, lease_expires_at)`` index
entry, and a ``begin`` that locked that entry first. The server then rolls back one of them
and says to restart it; PostgreSQL does the same with ``deadlock_detected``. A store
statement that ran in its own transaction had no effect when it was rolled back, so running
it again is safe. One inside the caller's transaction is not retried: the whole transaction
was rolled back (MySQL) or is aborted (PostgreSQL), and only its owner can run it again.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Concatenate, Final, ParamSpec, Protocol, TypeVar

__all__ = ["DEADLOCK_TRIES", "is_deadlock", "retries_deadlocks"]

logger = logging.getLogger("renderstate.ledger")

DEADLOCK_TRIES: Final = 6
"""How many times a statement runs before its deadlock error reaches the caller."""

_MYSQL_DEADLOCK: Final = 1213  # ER_LOCK_DEADLOCK: "try restarting transaction"
_SQLSTATES: Final = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure

P = ParamSpec("P")
T = TypeVar("T")


class _Store(Protocol):
    def _in_outer_transaction(self) -> bool: ...


S = TypeVar("S", bound=_Store)


def is_deadlock(error: BaseException) -> bool:
    """Whether ``error``, or a driver error it wraps, is a deadlock (or serialization) victim.

    Reads PostgreSQL's SQLSTATE (psycopg 3 ``sqlstate``, psycopg2 ``pgcode``) and MySQL's
    error number (PyMySQL, mysqlclient: ``args[0]``) through SQLAlchemy's ``orig`` and
    Django's ``__cause__``.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if code in _SQLSTATES:
            return True
        mysql = type(current).__module__.split(".")[0] in {"pymysql", "MySQLdb"}
        if mysql and current.args and current.args[0] == _MYSQL_DEADLOCK:
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


def retries_deadlocks(
    method: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[S, P], T]:
    """Run a store method again, after a short random pause, when it was a deadlock victim.

    Not when it ran inside the caller's transaction; at most :data:`DEADLOCK_TRIES` runs.
    """

    @functools.wraps(method)
    def retrying(store: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        outer = store._in_outer_transaction()
        tries = 1
        while True:
            try:
                return method(store, *args, **kwargs)
            except Exception as error:
                if outer or tries == DEADLOCK_TRIES or not is_deadlock(error):
                    raise
                logger.info(
                    "%s.%s was a deadlock victim (%s); running it again (%d of %d)",
                    type(store).__name__,
                    method.__name__,
                    error,
                    tries + 1,
                    DEADLOCK_TRIES,
                )
                time.sleep(random.uniform(0.0, 0.002 * 2**tries))  # noqa: S311 - jitter
                tries += 1

    return retrying
