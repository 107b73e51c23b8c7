"""SQLAlchemyAttemptStore: the ledger contract on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, inspect, select

from adapters.test_sqlalchemy import Base, Project, SQLAlchemyHarness
from renderstate.ledger import Ledger
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore, SQLAlchemyLoader, attempt_table

from .contract import LedgerContract, LedgerHarness

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
