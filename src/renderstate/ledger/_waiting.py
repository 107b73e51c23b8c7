"""The pauses of a wait for an attempt whose start has not committed yet (up to a lease).

A worker may receive a job before the sender's transaction commits its start (a view under
``ATOMIC_REQUESTS`` sends from inside it): reading the attempt again after 10 ms, then twice
as long each time up to half a second, finds it as soon as it appears, without hammering
the database. :meth:`Ledger.get <renderstate.ledger.Ledger.get>` (and its thread and async
forms) and :meth:`Ledger.begin <renderstate.ledger.Ledger.begin>` wait this way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Final

__all__ = ["FIRST_PAUSE", "LONGEST_PAUSE", "pauses"]

FIRST_PAUSE: Final = 0.01
LONGEST_PAUSE: Final = 0.5


def pauses(within: float) -> Iterator[float]:
    """Yield the pauses of a wait of at most ``within`` seconds from now.

    10 ms, doubling up to :data:`LONGEST_PAUSE`; a pause that would end past the deadline
    is not given: the wait is over.
    """
    deadline = time.monotonic() + within
    pause = FIRST_PAUSE
    while time.monotonic() + pause <= deadline:
        yield pause
        pause = min(pause * 2, LONGEST_PAUSE)
