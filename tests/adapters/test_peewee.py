"""PeeweeAdapter: the shared contract on SQLite, PostgreSQL and MariaDB, plus Peewee's dirty set."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import peewee
import pytest

from renderstate import Status
from renderstate.adapters.peewee import PeeweeAdapter

from .contract import (
    AdapterContract,
    Harness,
    Transaction,
    assert_missing_extra,
    elsewhere,
    set_columns,
)
from .databases import MARIADB, PG, Target


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class JSONField(peewee.TextField):
    """JSON stored as text: the same on the three databases."""

    def db_value(self, value: Any) -> Any:
        return None if value is None else json.dumps(value)

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


class Project(peewee.Model):
    """The reference model, declared for Peewee (which has no auto_now: see auto_update)."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    title = peewee.CharField(max_length=255)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    status = peewee.CharField(max_length=20, default="DRAFT")
    resolution_width = peewee.IntegerField(default=1920)
    resolution_height = peewee.IntegerField(default=1080)
    framerate = peewee.IntegerField(default=30)
    output_path = peewee.CharField(max_length=500, null=True)
    timeline = JSONField(default=dict)

    class Meta:
        table_name = "pw_project"


class Clip(peewee.Model):
    """The variant: other names, integer literals, a NOT NULL output, no timestamp."""

    name = peewee.CharField(max_length=255)
    state = peewee.IntegerField(default=10)
    video = peewee.CharField(max_length=500, default="")

    class Meta:
        table_name = "pw_clip"


_DATABASES: dict[Target, peewee.Database] = {}
_LOCK = threading.Lock()


def database_for(target: Target) -> peewee.Database:
    """One Peewee database per target and process; SQLite in WAL mode with a busy timeout."""
    with _LOCK:
        if target not in _DATABASES:
            database: peewee.Database
            if target.backend == "sqlite":
                database = peewee.SqliteDatabase(
                    target.name, pragmas={"journal_mode": "wal", "busy_timeout": 30_000}
                )
            elif target.backend == "postgres":
                database = peewee.PostgresqlDatabase(
                    target.name, user=target.user, host=PG["host"], port=PG["port"]
                )
            else:
                database = peewee.MySQLDatabase(
                    target.name,
                    user=MARIADB["user"],
                    password=MARIADB["password"],
                    host=MARIADB["host"],
                    port=MARIADB["port"],
                    charset="utf8mb4",
                    field_types={"DATETIME": "DATETIME(6)"},
                )
            database.bind([Project, Clip])
            elsewhere(lambda: database.create_tables([Project, Clip], safe=True))
            _DATABASES[target] = database
        database = _DATABASES[target]
        database.bind([Project, Clip])
        return database


class PeeweeHarness(Harness):
    orm = "peewee"

    def prepare(self) -> None:
        self.database = database_for(self.target)
        self.model: Any = Clip if self.variant else Project

    def adapter(self) -> PeeweeAdapter:
        if self.variant:
            return PeeweeAdapter()
        return PeeweeAdapter(auto_update={"updated_at": utcnow})

    def insert(self, status: Status = Status.DRAFT, output: str | None = None) -> object:
        fields = self.new_row(status, output)
        return elsewhere(lambda: self.model.create(**fields).get_id())

    def load(self, key: object) -> Any:
        return self.model.get_by_id(key)

    def row(self, key: object) -> dict[str, Any]:
        names = list(self.columns)
        fields = [getattr(self.model, self.columns[n]) for n in names]
        query = self.model.select(*fields).where(self.model._meta.primary_key == key).tuples()
        return dict(zip(names, elsewhere(query.get), strict=True))

    def edit(self, key: object, **values: Any) -> None:
        assignments = {getattr(self.model, self.columns[n]): v for n, v in values.items()}
        query = self.model.update(assignments).where(self.model._meta.primary_key == key)
        elsewhere(query.execute)

    def delete(self, key: object) -> None:
        elsewhere(lambda: self.model.delete_by_id(key))

    def unsaved(self) -> Any:
        if self.variant:
            return self.model(name="t", state=self.literal(Status.DRAFT))
        return self.model(title="t", status="DRAFT")

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        statements: list[str] = []
        thread = threading.get_ident()

        class Recorder(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.thread == thread and isinstance(record.msg, tuple):
                    statements.append(record.msg[0])

        logger = logging.getLogger("peewee")
        handler, level = Recorder(logging.DEBUG), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        try:
            yield statements
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        # On SQLite, BEGIN IMMEDIATE: a transaction that read first could otherwise fail
        # with "database is locked" when it tries to write.
        lock = ("IMMEDIATE",) if self.backend == "sqlite" else ()
        with self.database.atomic(*lock):
            yield Transaction(self.adapter(), self.load)

    def release(self) -> None:
        self.database.close()

    def save_title(self, project: Any, title: str) -> None:
        setattr(project, self.columns["title"], title)
        project.save()


class TestPeeweeAdapter(AdapterContract):
    harness_class = PeeweeHarness

    def test_transition_leaves_nothing_dirty(self, harness: Harness) -> None:
        """After a transition the written fields are clean: save(only=dirty) writes nothing."""
        key = harness.insert()
        project = harness.load(key)
        harness.lifecycle(project).start_render()
        assert not project.dirty_fields

    def test_empty_auto_update_writes_only_the_change(self, harness: Harness) -> None:
        """Without auto_update, the UPDATE names only the fields the transition changes."""
        key = harness.insert()
        project = harness.load(key)
        with harness.capture() as sql:
            harness.lifecycle(project, PeeweeAdapter()).start_render()
        assert len(sql) == 1
        assert set_columns(sql[0]) == {harness.columns["status"]}

    def test_job_scope_closes_the_thread_connection(self, harness: Harness) -> None:
        """After a job, the worker thread's connection is closed (not while in a transaction)."""
        assert isinstance(harness, PeeweeHarness)
        key = harness.insert()
        adapter = harness.adapter()
        seen: list[bool] = []

        def job() -> None:
            with adapter.job_scope():
                harness.lifecycle(harness.load(key), adapter).start_render()
                seen.append(harness.database.is_closed())
            seen.append(harness.database.is_closed())
            with harness.database.atomic(), adapter.job_scope():
                harness.lifecycle(harness.load(key), adapter).fail("stop")
            seen.append(harness.database.is_closed())
            with adapter.job_scope():
                pass
            seen.append(harness.database.is_closed())

        worker = threading.Thread(target=job)
        worker.start()
        worker.join(30)
        assert seen == [False, True, False, True]
        assert harness.row(key)["status"] == harness.literal(Status.FAILED)


def test_missing_peewee_names_the_extra() -> None:
    """Importing the adapter without Peewee raises ImportError quoting the pip command."""
    assert_missing_extra("renderstate.adapters.peewee", "peewee", "peewee")


@pytest.mark.parametrize(
    ("model", "field", "empty"), [(Project, "output_path", None), (Clip, "video", "")]
)
def test_empty_output_follows_the_field(model: Any, field: str, empty: str | None) -> None:
    """empty_output is None for a null=True field and '' otherwise."""
    assert PeeweeAdapter().empty_output(model(), field) == empty
