"""The reference Project model written for SQLAlchemy 2.0, the ledger's table, and the engine.

One ``AsyncEngine`` (aiosqlite, psycopg 3 on PostgreSQL, aiomysql on MySQL) serves everything:
the endpoints, the attempt ledger, and the runner's render threads, whose ledger calls are
handed to the event loop. There is no synchronous engine.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import JSON, DateTime, String, Uuid, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from renderstate.ledger.sqlalchemy import attempt_table

STATUS_DRAFT = "DRAFT"
STATUS_PROCESSING = "PROCESSING"
STATUS_COMPLETED = "COMPLETED"
STATUS_FAILED = "FAILED"


def now() -> datetime.datetime:
    """The current time in UTC: the value of ``created_at`` and ``updated_at``."""
    return datetime.datetime.now(datetime.timezone.utc)


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "project"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=now)
    # onupdate: the adapter's UPDATE stamps it on every transition, as Django's auto_now does.
    updated_at: Mapped[datetime.datetime] = mapped_column(
        DateTime(timezone=True), default=now, onupdate=now
    )
    status: Mapped[str] = mapped_column(String(20), default=STATUS_DRAFT)
    resolution_width: Mapped[int] = mapped_column(default=1920)
    resolution_height: Mapped[int] = mapped_column(default=1080)
    framerate: Mapped[int] = mapped_column(default=30)
    output_path: Mapped[str | None] = mapped_column(String(500), default=None)
    timeline: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


ATTEMPTS = attempt_table(Base.metadata)
"""The attempt ledger's table, created with the models."""


def _async_url(url: str) -> str:
    """The async SQLAlchemy URL for ``sqlite:///path``, ``postgresql://`` or ``mysql://``."""
    scheme, rest = url.split(":", 1)
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return f"sqlite+aiosqlite:{rest}"
    if base in {"postgres", "postgresql"}:
        return f"postgresql+psycopg:{rest}"
    if base in {"mysql", "mariadb"}:
        return f"mysql+aiomysql:{rest}"
    msg = f"unsupported database URL {url!r}: use sqlite:///path, postgresql://... or mysql://..."
    raise ValueError(msg)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers and the ledger's writes proceed together; writers wait for each
    # other (busy_timeout) instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=20000")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """The app's one engine: async, for the endpoints, the ledger and the render threads."""
    engine = create_async_engine(_async_url(url))
    if urlsplit(url).scheme.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine
