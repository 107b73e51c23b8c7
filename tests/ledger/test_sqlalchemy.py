"""SQLAlchemyAttemptStore: the ledger contract on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    inspect,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from adapters.test_sqlalchemy import Base, Project, SQLAlchemyHarness
from renderstate import ProjectLifecycle
from renderstate.adapters.sqlalchemy import SQLAlchemyAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore, SQLAlchemyLoader, attempt_table

from .contract import Clock, LedgerContract, LedgerHarness

TABLE = attempt_table(Base.metadata)


class SQLAlchemyLedgerHarness(SQLAlchemyHarness, LedgerHarness):
    def prepare(self) -> None:
        super().prepare()
        TABLE.create(self.engine, checkfirst=True)

    def store(self) -> SQLAlchemyAttemptStore:
        return SQLAlchemyAttemptStore(self.factory, table=TABLE)

    def loader(self) -> SQLAlchemyLoader[Any]:
        return self.store().loader(self.model)

    def attempts(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(TABLE)).scalar_one())


class TestSQLAlchemyLedger(LedgerContract):
    harness_class = SQLAlchemyLedgerHarness


def test_table_has_the_attempt_columns_and_indexes() -> None:
    """The declared table has every field of an attempt, a project index and a lease index."""
    assert {c.name for c in TABLE.columns} >= {"id", "scope", "project_key", "lease_expires_at"}
    assert {i.name for i in TABLE.indexes} == {
        "renderstate_attempt_project",
        "renderstate_attempt_lease",
    }


def test_store_refuses_a_table_without_the_columns() -> None:
    """A hand-made table missing ledger columns is refused with the fix."""
    bare = Table("bare", MetaData(), Column("id", Integer, primary_key=True))
    with pytest.raises(ValueError, match="use attempt_table"):
        SQLAlchemyAttemptStore(lambda: None, table=bare)  # type: ignore[arg-type]


def test_scope_is_the_table_name() -> None:
    """Projects are filed under their mapped table's name."""
    store = SQLAlchemyAttemptStore(lambda: None, table=TABLE)  # type: ignore[arg-type]
    project = Project(title="t")
    assert store.scope(project) == "sa_project"
    assert inspect(project).transient
    assert Ledger(store).scope(project) == "sa_project"


class _SlugBase(DeclarativeBase):
    pass


class Slugged(_SlugBase):
    """A project keyed by a text slug the user chose."""

    __tablename__ = "sa_slugged"
    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="DRAFT")
    output_path: Mapped[str | None] = mapped_column(String(500), nullable=True)


def test_a_text_key_that_looks_like_json_loads_its_own_project(tmp_path: Path) -> None:
    """The loader of a one-column key takes the key text as it is. It used to decode
    ``'["intro"]'`` as a composite key and load project ``intro``: recovery of the first
    project's dead attempt then failed the second one's live render."""
    engine = create_engine(f"sqlite:///{tmp_path / 'slugs.sqlite3'}")
    _SlugBase.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions.begin() as session:
        session.add_all([Slugged(slug="intro"), Slugged(slug='["intro"]')])
    clock = Clock()
    store = SQLAlchemyAttemptStore(sessions, table=attempt_table(MetaData()))
    store.create_table(engine)
    ledger = Ledger(store, lease=10.0, clock=clock)
    adapter = SQLAlchemyAdapter(sessions)
    loader = store.loader(Slugged)
    loaded = loader('["intro"]')
    assert loaded is not None
    assert loaded.slug == '["intro"]'
    with sessions() as session:
        dead_project = session.get(Slugged, '["intro"]')
        live_project = session.get(Slugged, "intro")
    _, dead = ledger.start(ProjectLifecycle(dead_project, adapter))
    clock.now += 11  # the first render's process died: its lease expires
    _, live = ledger.start(ProjectLifecycle(live_project, adapter))
    live = ledger.begin(live)
    recovered = ledger.recover(adapter, loader)
    assert [(r.attempt.id, r.record is not None) for r in recovered] == [(dead.id, True)]
    with sessions() as session:
        assert session.get(Slugged, '["intro"]').status == "FAILED"  # type: ignore[union-attr]
        assert session.get(Slugged, "intro").status == "PROCESSING"  # type: ignore[union-attr]
    engine.dispose()
