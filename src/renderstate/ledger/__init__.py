"""The attempt ledger: one record per render attempt, shared by every process.

- :class:`Ledger` fences each attempt's end, keeps its lease, records its progress and
  history, and recovers attempts whose lease expired; it works over a store:
- :mod:`renderstate.ledger.memory`, :mod:`renderstate.ledger.sqlalchemy`,
  :mod:`renderstate.ledger.django` and :mod:`renderstate.ledger.peewee` keep the records
  in the projects' own database (memory: in this process), in a table renderstate owns.
  The project's model is never modified.
- :class:`AsyncLedger` awaits the same ledger from async code, through
  :mod:`renderstate.ledger.sqlalchemy_async` (an ``AsyncSession``) or
  :mod:`renderstate.ledger.django_async` (Django's ORM thread).
"""

from __future__ import annotations

from renderstate._attempts import ACTIVE_STATES, Attempt, AttemptState, DatabaseTime
from renderstate.exceptions import AttemptOwnedError, AttemptSupersededError
from renderstate.ledger._async import AsyncAttemptStore, AsyncLedger
from renderstate.ledger._ledger import (
    DEFAULT_LEASE,
    DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_QUEUE_TIMEOUT,
    Ledger,
    Recovered,
    Swept,
    new_owner,
    this_worker,
)
from renderstate.ledger._renewals import Renewal, RenewalOutcome, Renewed

__all__ = [
    "ACTIVE_STATES",
    "DEFAULT_LEASE",
    "DEFAULT_PROGRESS_INTERVAL",
    "DEFAULT_QUEUE_TIMEOUT",
    "AsyncAttemptStore",
    "AsyncLedger",
    "Attempt",
    "AttemptOwnedError",
    "AttemptState",
    "AttemptSupersededError",
    "DatabaseTime",
    "Ledger",
    "Recovered",
    "Renewal",
    "RenewalOutcome",
    "Renewed",
    "Swept",
    "new_owner",
    "this_worker",
]
