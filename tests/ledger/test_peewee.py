"""PeeweeAttemptStore: the ledger contract on SQLite, PostgreSQL and MariaDB, plus the model."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee
import pytest

from adapters.contract import Harness, elsewhere
from adapters.test_peewee import PeeweeHarness
from renderstate import ProjectLifecycle, RenderConflictError, Status
from renderstate._attempts import FIELDS, encode_key
from renderstate.adapters.peewee import PeeweeAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.peewee import (
    PeeweeAttemptStore,
    PeeweeLoader,
    attempt_model,
    create_ledger_table,
)
from renderstate.testing import MemoryProject

from .contract import Clock, LedgerContract, LedgerHarness, ledger_for
from .runner_case import render_through_the_runner

_CREATED: set[int] = set()


class PeeweeLedgerHarness(PeeweeHarness, LedgerHarness):
    def prepare(self) -> None:
        super().prepare()
        if id(self.database) not in _CREATED:
            database = self.database
            elsewhere(lambda: create_ledger_table(database))
            _CREATED.add(id(database))

    def store(self) -> PeeweeAttemptStore:
        return PeeweeAttemptStore(self.database)

    def loader(self) -> PeeweeLoader[Any]:
        return self.store().loader(self.model)

    def attempts(self) -> int:
        model = attempt_model(self.database)
        return int(elsewhere(model.select().count))

    @contextmanager
    def statements(self) -> Iterator[list[tuple[str, bool, object]]]:
        """Each SQL statement this thread runs through Peewee meanwhile, with whether it
        ran inside a transaction and which outermost transaction that was."""
        seen: list[tuple[str, bool, object]] = []
        thread = threading.get_ident()
        database = self.database

        class Recorder(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.thread == thread and isinstance(record.msg, tuple):
                    stack = database._state.transactions
                    seen.append(
                        (record.msg[0], database.in_transaction(), stack[0] if stack else None)
                    )

        logger = logging.getLogger("peewee")
        handler, level = Recorder(logging.DEBUG), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        try:
            yield seen
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)


class TestPeeweeLedger(LedgerContract):
    harness_class = PeeweeLedgerHarness

    def test_runner_renders_with_the_store(self, harness: Harness, tmp_path: Path) -> None:
        """A RenderRunner on worker threads records, heartbeats and fences with this store."""
        assert isinstance(harness, LedgerHarness)
        render_through_the_runner(harness, tmp_path)

    def test_fenced_complete_is_two_updates_in_one_transaction(self, harness: Harness) -> None:
        """A fenced complete runs exactly the attempt's UPDATE then the project's UPDATE,
        both inside one transaction."""
        assert isinstance(harness, PeeweeLedgerHarness)
        ledger = ledger_for(harness)
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        _, attempt = ledger.start(lifecycle)
        attempt = ledger.begin(attempt)
        with harness.statements() as seen:
            ledger.complete(lifecycle, attempt, "projects/a/final.mp4")
        writes = [row for row in seen if row[0].split()[0] in {"UPDATE", "INSERT", "SELECT"}]
        assert len(writes) == 2, seen
        (first, first_inside, first_block), (second, second_inside, second_block) = writes
        assert first.startswith("UPDATE"), first
        assert "renderstate_attempt" in first
        assert second.startswith("UPDATE"), second
        assert harness.model._meta.table_name in second
        assert first_inside
        assert second_inside
        assert first_block is not None
        assert first_block is second_block
        assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)

    def test_refused_start_runs_no_insert(self, harness: Harness) -> None:
        """A start that loses the race (its object says DRAFT, another process started the
        project) runs the guarded UPDATE, which matches no row, and reads: no INSERT."""
        assert isinstance(harness, PeeweeLedgerHarness)
        ledger = ledger_for(harness)
        key = harness.insert()
        before = harness.attempts()
        lifecycle = harness.lifecycle(harness.load(key))
        harness.edit(key, status=harness.literal(Status.PROCESSING))
        with harness.statements() as seen, pytest.raises(RenderConflictError):
            ledger.start(lifecycle)
        sql = [s for s, _, _ in seen if s.split()[0] in {"UPDATE", "INSERT", "SELECT"}]
        assert sql[0].startswith("UPDATE"), sql
        assert harness.model._meta.table_name in sql[0], sql
        assert [s.split()[0] for s in sql[1:]] == ["SELECT"] * (len(sql) - 1), sql
        assert not any("renderstate_attempt" in s for s in sql), sql
        assert harness.attempts() == before

    def test_loader_and_bad_keys(self, harness: Harness) -> None:
        """The loader loads by key text; text that is not a key of the model, or a deleted
        row, loads None."""
        assert isinstance(harness, PeeweeLedgerHarness)
        key = harness.insert()
        store = harness.store()
        loader = store.loader(harness.model)
        assert loader.scope == store.scope(harness.load(key)) == harness.model._meta.table_name
        loaded = loader(str(key))
        assert loaded is not None
        assert loaded.get_id() == key
        assert loader("not a key") is None
        harness.delete(key)
        assert loader(str(key)) is None

    def test_model_of_another_database_is_refused(self, harness: Harness) -> None:
        """A store on another database than the model's refuses to open the transaction,
        naming the fix, and nothing is written."""
        assert isinstance(harness, PeeweeLedgerHarness)
        key = harness.insert()
        project = harness.load(key)
        elsewhere_db = peewee.SqliteDatabase(":memory:")
        ledger = Ledger(PeeweeAttemptStore(elsewhere_db), clock=Clock())
        with pytest.raises(ValueError, match="the database the model is bound to"):
            ledger.start(harness.lifecycle(project))
        assert harness.row(key)["status"] == harness.literal(Status.DRAFT)

    def test_created_table_matches_the_other_stores(self, harness: Harness) -> None:
        """create_ledger_table makes the columns and index names of attempt_table()."""
        assert isinstance(harness, PeeweeLedgerHarness)
        database = harness.database
        columns = {c.name for c in elsewhere(lambda: database.get_columns("renderstate_attempt"))}
        indexes = {i.name for i in elsewhere(lambda: database.get_indexes("renderstate_attempt"))}
        assert columns == set(FIELDS)
        assert indexes >= {"renderstate_attempt_project", "renderstate_attempt_lease"}
        assert not {i for i in indexes if "attempt" in i} - {
            "renderstate_attempt_project",
            "renderstate_attempt_lease",
            "renderstate_attempt_pkey",
        }
        elsewhere(lambda: create_ledger_table(database))  # again: nothing to do, no error


def test_one_model_per_database() -> None:
    """attempt_model gives one class per database and table name, bound to it."""
    first, second = peewee.SqliteDatabase(":memory:"), peewee.SqliteDatabase(":memory:")
    assert attempt_model(first) is attempt_model(first)
    assert attempt_model(first) is not attempt_model(second)
    assert attempt_model(second)._meta.database is second
    other = attempt_model(first, table_name="render_log")
    assert other._meta.table_name == "render_log"
    assert other is not attempt_model(first)


def test_proxy_database_is_the_same_database() -> None:
    """A model bound to a DatabaseProxy shares the ledger of the database behind it, and
    the store may be built on the proxy before it is initialised (as at import time)."""
    proxy = peewee.DatabaseProxy()
    store = PeeweeAttemptStore(proxy)
    database = peewee.SqliteDatabase(":memory:")
    proxy.initialize(database)

    class Item(peewee.Model):
        status = peewee.CharField(default="DRAFT")
        output_path = peewee.CharField(null=True)

        class Meta:
            database = proxy
            table_name = "item"

    create_ledger_table(proxy)
    database.create_tables([Item])
    item = Item.create()
    ledger = Ledger(store, clock=Clock())
    lifecycle = ProjectLifecycle(item, PeeweeAdapter())
    _, attempt = ledger.start(lifecycle)
    assert attempt.scope == "item"
    assert store.loader(Item)(attempt.project_key) == item
    assert store.get(attempt.id) == attempt
    other = peewee.SqliteDatabase(":memory:")
    with pytest.raises(ValueError, match="bound to"):
        PeeweeAttemptStore(other).atomic(item).__enter__()
    assert PeeweeAttemptStore(database).get(attempt.id) == attempt  # the same table
    database.close()


def test_composite_and_uuid_keys_load() -> None:
    """The loader converts key text to the key fields' types, composite keys from JSON."""
    database = peewee.SqliteDatabase(":memory:")

    class Pair(peewee.Model):
        left = peewee.IntegerField()
        right = peewee.CharField()

        class Meta:
            primary_key = peewee.CompositeKey("left", "right")

    class Film(peewee.Model):
        id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)

    database.bind([Pair, Film])
    database.create_tables([Pair, Film])
    pair = Pair.create(left=3, right="b")
    film = Film.create()
    assert PeeweeLoader(Pair)(encode_key(pair.get_id())) == pair
    assert PeeweeLoader(Pair)('["x", "b"]') is None
    assert PeeweeLoader(Pair)("3") is None
    assert PeeweeLoader(Film)(str(film.id)) == film
    assert PeeweeLoader(Film)(str(uuid.uuid4())) is None
    assert PeeweeLoader(Film)("nope") is None
    database.close()


def test_a_foreign_object_is_refused_with_the_store_to_use() -> None:
    """A plain object, or a class that is no Peewee model, gets a TypeError naming the
    stores to use instead; nothing is written."""
    project = MemoryProject(title="plain")
    ledger = Ledger(PeeweeAttemptStore(peewee.SqliteDatabase(":memory:")), clock=Clock())
    with pytest.raises(TypeError, match=r"files Peewee model instances; got a .*MemoryProject"):
        ledger.start(ProjectLifecycle(project))
    assert project.status == "DRAFT"
    with pytest.raises(TypeError, match=r"renderstate\.ledger\.sqlalchemy, \.django"):
        PeeweeLoader(MemoryProject)
    with pytest.raises(TypeError, match="Peewee model instances"):
        PeeweeAttemptStore(peewee.SqliteDatabase(":memory:")).atomic(project).__enter__()
