"""A tiny sqlite3 adapter and project row for the runner's cross-process tests.

Deliberately independent of the ORM adapters: it is the Adapter contract in a few lines,
on a real SQLite file, usable from a child process.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from renderstate import Change, ProjectNotFoundError

SCHEMA = """
CREATE TABLE IF NOT EXISTS project (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'DRAFT',
    output_path TEXT
)
"""


@dataclasses.dataclass(eq=False)
class Row:
    id: str
    title: str
    status: str
    output_path: str | None


class SQLiteStore:
    """The Adapter contract on a SQLite file: one conditional UPDATE per transition."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def insert(self, row: Row) -> Row:
        with self._connect() as db:
            db.execute(
                "INSERT INTO project (id, title, status, output_path) VALUES (?, ?, ?, ?)",
                (row.id, row.title, row.status, row.output_path),
            )
        return row

    def load(self, key: str) -> Row:
        with self._connect() as db:
            found = db.execute(
                "SELECT id, title, status, output_path FROM project WHERE id = ?", (key,)
            ).fetchone()
        if found is None:
            raise ProjectNotFoundError(project_key=key)
        return Row(*found)

    def with_status(self, status: str) -> list[Row]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, title, status, output_path FROM project WHERE status = ?", (status,)
            ).fetchall()
        return [Row(*r) for r in rows]

    def apply(self, project: Row, change: Change) -> bool:
        fields = list(change.values)
        expected = list(change.expected)
        sql = (
            f"UPDATE project SET {', '.join(f'{f} = ?' for f in fields)} "
            f"WHERE id = ? AND {change.status_field} IN ({', '.join('?' * len(expected))})"
        )
        with self._connect() as db:
            count = db.execute(sql, [*change.values.values(), project.id, *expected]).rowcount
        if count == 1:
            for field, value in change.values.items():
                setattr(project, field, value)
            return True
        self.refresh_status(project, change.status_field)
        return False

    def refresh_status(self, project: Row, status_field: str) -> None:
        project.status = self.load(project.id).status

    def project_key(self, project: Row) -> object:
        return project.id

    def empty_output(self, project: Row, field: str) -> str | None:
        return None
