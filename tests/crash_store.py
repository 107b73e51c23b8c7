"""The crash children's view of the command line's tables: light to import, few crash points.

The children of the crash-point sweeps (``crash_child.py``, ``directory_child.py``) start
hundreds of times per sweep; they import this module, not :mod:`crash_rerender` (which
brings pytest and the database drivers of the fixtures), so each start pays for
SQLAlchemy and renderstate alone.
"""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from renderstate.adapters.sqlalchemy import SQLAlchemyAdapter
from renderstate.cli._store import ATTEMPTS, Project
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore

__all__ = ["ChildStore"]


class ChildStore:
    """The command line's tables, opened without its start-up queries (fewer crash points)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.adapter = SQLAlchemyAdapter(self.sessions)
        self.attempts = SQLAlchemyAttemptStore(self.sessions, table=ATTEMPTS)
        self.loader = self.attempts.loader(Project)

    def get(self, key: str) -> Project:
        with self.sessions() as session:
            found = session.get(Project, key)
        assert found is not None
        return found

    def close(self) -> None:
        self.engine.dispose()
