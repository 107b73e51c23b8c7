"""The command line never changes how a user's SQLite database is journalled."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="needs the cli extra")

from renderstate.cli import EXIT_OK, main

TIMELINE = {"width": 160, "height": 90, "fps": 12, "scenes": [{"duration": 1, "title": "hi"}]}


def journal_mode(db: Path) -> str:
    with closing(sqlite3.connect(db)) as connection:
        mode: str = connection.execute("PRAGMA journal_mode").fetchone()[0]
    return mode


def run_every_command(tmp_path: Path, db: Path) -> None:
    timeline = tmp_path / "timeline.json"
    timeline.write_text(json.dumps(TIMELINE))
    options = ["--db", f"sqlite:///{db}", "--media", str(tmp_path / "media")]
    assert main(["render", str(timeline), "--renderer", "fake", *options]) == EXIT_OK
    assert main(["status", *options]) == EXIT_OK
    assert main(["recover", *options]) == EXIT_OK


def users_database(tmp_path: Path) -> Path:
    db = tmp_path / "app.sqlite3"
    with closing(sqlite3.connect(db)) as connection:
        connection.execute("CREATE TABLE their_table (name TEXT)")
        connection.execute("INSERT INTO their_table VALUES ('theirs')")
        connection.commit()
    return db


def test_the_cli_does_not_switch_a_users_database_to_wal(tmp_path: Path) -> None:
    """WAL is a lasting property of the file: the CLI never turns it on unasked."""
    db = users_database(tmp_path)
    assert journal_mode(db) == "delete"
    run_every_command(tmp_path, db)
    assert journal_mode(db) == "delete"
    assert not db.with_name(db.name + "-wal").exists()
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT name FROM their_table").fetchall() == [("theirs",)]


def test_a_database_its_owner_switched_to_wal_is_used_as_it_is(tmp_path: Path) -> None:
    """The opt-in of docs/cli.md: one PRAGMA by the owner, kept by every command."""
    db = users_database(tmp_path)
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    run_every_command(tmp_path, db)
    assert journal_mode(db) == "wal"
