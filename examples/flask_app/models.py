"""The Peewee version of the reference Project model: same fields, same literals.

Bound to a real database by :func:`open_database` at start (``DatabaseProxy``), as Peewee
recommends when the database is chosen at run time.
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import peewee
from playhouse.db_url import connect

STATUS_DRAFT = "DRAFT"
STATUS_PROCESSING = "PROCESSING"
STATUS_COMPLETED = "COMPLETED"
STATUS_FAILED = "FAILED"

database = peewee.DatabaseProxy()


def now() -> datetime.datetime:
    """The current time in UTC: the value of ``created_at`` and ``updated_at``."""
    return datetime.datetime.now(datetime.timezone.utc)


class JSONField(peewee.TextField):
    """A JSON value stored as text: portable across SQLite and PostgreSQL."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value)

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


class Project(peewee.Model):
    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    title = peewee.CharField(max_length=255)
    created_at = peewee.DateTimeField(default=now)
    updated_at = peewee.DateTimeField(default=now)
    status = peewee.CharField(max_length=20, default=STATUS_DRAFT)
    resolution_width = peewee.IntegerField(default=1920)
    resolution_height = peewee.IntegerField(default=1080)
    framerate = peewee.IntegerField(default=30)
    output_path = peewee.CharField(max_length=500, null=True)
    timeline = JSONField(default=dict)

    class Meta:
        database = database
        table_name = "project"


def open_database(url: str) -> peewee.Database:
    """Connect the models to ``url`` (``sqlite:///path``, ``postgresql://...`` or ``mysql://...``)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path.removeprefix("/"))
        # WAL lets readers and the render threads' writes proceed together; writers wait
        # for each other (busy_timeout) instead of failing with "database is locked".
        db: peewee.Database = peewee.SqliteDatabase(
            path, pragmas={"journal_mode": "wal", "busy_timeout": 20_000}
        )
    elif parts.scheme in {"postgres", "postgresql", "mysql"}:
        # Pooled: Peewee opens connections one at a time (under its lock), about 0.1 s
        # each on MariaDB, so twenty requests that each opened one would queue behind
        # each other for seconds. A closed connection goes back to the pool; at most 64
        # are open, and a request waits up to 30 s for one beyond that.
        pooled = url.replace(f"{parts.scheme}://", f"{parts.scheme}+pool://", 1)
        db = connect(pooled, max_connections=64, stale_timeout=300, timeout=30)
    else:
        msg = f"unsupported database URL {url!r}: use sqlite:///path, postgresql:// or mysql://"
        raise ValueError(msg)
    database.initialize(db)
    with db.connection_context():
        db.create_tables([Project], safe=True)
    return db
