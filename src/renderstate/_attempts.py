"""Render attempts as the ledger records them: the states an attempt goes through and its record.

Pure data, no I/O: the stores in :mod:`renderstate.ledger` persist these, the ledger decides.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

__all__ = [
    "ACTIVE_STATES",
    "Attempt",
    "AttemptState",
    "DatabaseTime",
    "attempt_from_row",
    "decode_key",
    "encode_key",
    "key_values",
    "stored_values",
]

ColumnT = TypeVar("ColumnT")


class AttemptState(str, enum.Enum):
    """Where one render attempt is; the value is what the ledger stores."""

    QUEUED = "queued"
    """Accepted (the project is PROCESSING) and waiting for a worker."""
    RENDERING = "rendering"
    """A worker is rendering it and renews its lease."""
    COMPLETED = "completed"
    """Its video replaced the final file and the project is COMPLETED."""
    FAILED = "failed"
    """It ended without a video; the project is FAILED."""
    SUPERSEDED = "superseded"
    """A newer attempt of the same project started while this one was still live."""
    INTERRUPTED = "interrupted"
    """Its lease expired (the worker died or hung) and recovery failed the project."""

    def __str__(self) -> str:
        return self.value


ACTIVE_STATES: Final = frozenset({AttemptState.QUEUED, AttemptState.RENDERING})
"""The states of a live attempt: the only ones a finishing edge or a lease renewal applies to."""


def encode_key(key: object) -> str:
    """Return the text the ledger stores for a project's primary key.

    Scalar keys are stored as ``str(key)``; composite keys (tuples) as a JSON list.
    """
    if isinstance(key, tuple):
        return json.dumps([k if isinstance(k, (int, float)) else str(k) for k in key])
    return str(key)


def decode_key(text: str) -> object:
    """Inverse of :func:`encode_key` for composite keys; scalar keys come back as text."""
    if text.startswith("["):
        try:
            parts = json.loads(text)
        except ValueError:
            return text
        if isinstance(parts, list):
            return tuple(parts)
    return text


def key_values(
    text: str, columns: Sequence[ColumnT], convert: Callable[[ColumnT, object], object]
) -> tuple[object, ...] | None:
    """Return the primary key values whose key text (:func:`encode_key`) is ``text``.

    One value per key column, each converted by ``convert(column, part)``; ``None`` when
    the text is no key of these columns (another number of parts, a part the column's type
    refuses with ``TypeError`` or ``ValueError``), so a loader can answer "no such
    project" without a query. Only a composite key is read as a JSON list: a one-column
    key's text is the key itself, even when it looks like one (``'["intro"]'`` is not
    project ``"intro"``).
    """
    decoded = decode_key(text) if len(columns) > 1 else text
    parts = decoded if isinstance(decoded, tuple) else (decoded,)
    if len(parts) != len(columns):
        return None
    try:
        return tuple(convert(column, part) for column, part in zip(columns, parts, strict=True))
    except (TypeError, ValueError):
        return None


def _utc(timestamp: float | None) -> datetime.datetime | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One render attempt of one project, as the ledger holds it.

    Times are UNIX timestamps in seconds (what every database compares the same way);
    the ``*_time`` properties give them as aware UTC datetimes.
    """

    id: int
    """Unique in the ledger and increasing per project: the attempt's fencing token."""
    scope: str
    """Which kind of project (the model's label or table name)."""
    project_key: str
    """The project's primary key, as text (see :func:`encode_key`)."""
    state: AttemptState
    """Where the attempt is."""
    output_path: str | None = None
    """The URL-relative path a successful render is stored at."""
    actor: str | None = None
    """Who asked for the render, if the caller said."""
    worker: str | None = None
    """``host:pid`` of the process rendering it (``None`` while queued)."""
    lease_expires_at: float | None = None
    """Until when the attempt counts as alive without another heartbeat."""
    phase: str = "queued"
    """The progress phase: ``queued``, ``rendering``, ``writing audio``, ``finalizing`` ..."""
    done: int = 0
    """Units of ``phase`` done (video frames while rendering)."""
    total: int = 0
    """Units of ``phase`` in all; 0 until the renderer has said."""
    fraction: float = 0.0
    """Share of the video frames rendered, 0.0 to 1.0, never decreasing within the attempt."""
    eta_seconds: float | None = None
    """Estimated seconds until the frames are rendered, when known."""
    error: str | None = None
    """Why it failed, was interrupted or superseded."""
    created_at: float = 0.0
    """When the attempt was accepted."""
    started_at: float | None = None
    """When a worker began rendering it."""
    finished_at: float | None = None
    """When it ended (completed, failed, superseded or interrupted)."""
    owner: str | None = None
    """The owner token: a fresh random token recorded by each start and each begin.

    Whoever holds the attempt under this token (the submitting job while it is queued,
    then the job that began it) is the only one whose heartbeats, ends and cancels
    apply; ``worker`` only tells people which process that is. ``None`` for attempts
    recorded before the column existed."""
    cancel_requested_at: float | None = None
    """When someone asked the live attempt to stop (:meth:`Ledger.cancel
    <renderstate.ledger.Ledger.cancel>`), from any process; ``None`` if nobody did.

    Its owner sees it at its next heartbeat and ends FAILED as cancelled; its completion
    is refused from this moment on."""
    cancel_reason: str | None = None
    """The reason given with the cancel request."""
    executor: str | None = None
    """Which task queue the attempt was handed to (``celery`` or ``celery:<queue>``,
    ``django-tasks``), so that a worker of that queue can send it again when its owner
    dies or hands it back; ``None`` for an attempt its own process runs (the thread
    executor), which nobody else can requeue."""
    task_id: str | None = None
    """The task system's id of the render (a Celery task id), given to
    :meth:`Ledger.start <renderstate.ledger.Ledger.start>` by the executor that sends it;
    ``None`` for a render its own process runs (the thread executor)."""
    traceparent: str | None = None
    """The W3C ``traceparent`` of the request that started the attempt (its
    ``renderstate.render`` span), when an OpenTelemetry SDK traced it: a render sent again
    after its worker died or handed it back carries it, so its span stays in that trace."""
    label: str | None = None
    """The description the renderer gave with its last report of ``phase`` (an app's
    ``on_progress(done, total, "Encoding video")``), written with the progress by the
    owner's heartbeat; ``None`` if it gave none. At most 255 characters: the runner cuts a
    longer one (see :attr:`Progress.label <renderstate.runner.Progress.label>`)."""

    @property
    def cancel_requested(self) -> bool:
        """Whether someone asked this attempt to stop."""
        return self.cancel_requested_at is not None

    @property
    def active(self) -> bool:
        """Whether the attempt is live (queued or rendering)."""
        return self.state in ACTIVE_STATES

    @property
    def created_time(self) -> datetime.datetime:
        """``created_at`` as an aware UTC datetime."""
        created = _utc(self.created_at)
        assert created is not None
        return created

    @property
    def started_time(self) -> datetime.datetime | None:
        """``started_at`` as an aware UTC datetime."""
        return _utc(self.started_at)

    @property
    def finished_time(self) -> datetime.datetime | None:
        """``finished_at`` as an aware UTC datetime."""
        return _utc(self.finished_at)

    @property
    def queued_seconds(self) -> float | None:
        """Seconds spent waiting for a worker, once one began (or the attempt ended)."""
        until = self.started_at if self.started_at is not None else self.finished_at
        return None if until is None else max(0.0, until - self.created_at)

    @property
    def rendering_seconds(self) -> float | None:
        """Seconds spent rendering, once the attempt has ended; ``None`` if it never began."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


@dataclasses.dataclass(frozen=True)
class DatabaseTime:
    """The database's current time plus ``seconds``, read by the statement that uses it.

    The ledger writes and compares lease expiries (and its other times) with this, so
    every process sharing a database reads one clock, the database server's, whatever
    its own machine's clock says. A store puts the database's own expression in the
    statement (``statement_timestamp()`` on PostgreSQL, ``UTC_TIMESTAMP(6)`` on
    MySQL/MariaDB, ``julianday('now')`` on SQLite) as UNIX seconds; the memory store
    reads its process's clock.
    """

    seconds: float = 0.0
    """Seconds after the database's current time."""

    def __add__(self, seconds: float) -> DatabaseTime:
        return DatabaseTime(self.seconds + seconds)

    def at(self, now: float) -> float:
        """Return this time as UNIX seconds, given the clock's current time ``now``."""
        return now + self.seconds


FIELDS: Final = tuple(f.name for f in dataclasses.fields(Attempt))
"""The attempt's fields, in declaration order: the ledger table's columns."""

WIDTHS: Final = {
    "scope": 100,
    "project_key": 255,
    "state": 16,
    "output_path": 500,
    "actor": 255,
    "worker": 255,
    "phase": 32,
    "owner": 64,
    "executor": 255,
    "task_id": 255,
    "traceparent": 64,
    "label": 255,
}
"""The most characters each text column of the ledger's table holds, in every store."""


def stored_values(values: Mapping[str, object]) -> dict[str, object]:
    """Return ``values`` as a store writes them: states as their text."""
    return {
        name: (value.value if isinstance(value, AttemptState) else value)
        for name, value in values.items()
    }


def attempt_from_row(row: Mapping[Any, Any]) -> Attempt:
    """Build an :class:`Attempt` from a stored row (its columns by name)."""
    data = dict(row)
    data["state"] = AttemptState(data["state"])
    data["id"] = int(data["id"])
    return Attempt(**{name: data[name] for name in FIELDS})
