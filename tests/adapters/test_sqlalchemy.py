"""SQLAlchemyAdapter: the shared contract on SQLite, PostgreSQL and MariaDB, plus session rules."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    String,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    make_transient_to_detached,
    mapped_column,
    sessionmaker,
    synonym,
)

from renderstate import ProjectLifecycle, Status
from renderstate.adapters.sqlalchemy import SQLAlchemyAdapter

from .conftest import target_for
from .contract import AdapterContract, Harness, Transaction, assert_missing_extra, set_columns
from .databases import Target


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


Stamp = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


class Base(DeclarativeBase):
    pass


class Project(Base):
    """The reference model, declared for SQLAlchemy."""

    __tablename__ = "sa_project"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(Stamp, default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(Stamp, default=now, onupdate=now)
    status: Mapped[str] = mapped_column(String(20), default="DRAFT")
    resolution_width: Mapped[int] = mapped_column(default=1920)
    resolution_height: Mapped[int] = mapped_column(default=1080)
    framerate: Mapped[int] = mapped_column(default=30)
    output_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    timeline: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Stamped(Base):
    """A model whose timestamp the database computes (onupdate=func.now())."""

    __tablename__ = "sa_stamped"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(20), default="DRAFT")
    output_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    touched: Mapped[dt.datetime | None] = mapped_column(Stamp, nullable=True, onupdate=func.now())


class Export(Base):
    """A model whose failure reason is a ``Text`` column (a MySQL ``TEXT``: 64 KiB)."""

    __tablename__ = "sa_export"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(20), default="PROCESSING")
    output_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")


class Footage(Base):
    """A parent in joined-table inheritance: status lives on this table."""

    __tablename__ = "sa_footage"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="DRAFT")
    output_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_on": "kind",
        "polymorphic_identity": "footage",
    }


class Trailer(Footage):
    """A child in joined-table inheritance: its own table holds no status."""

    __tablename__ = "sa_trailer"
    id: Mapped[int] = mapped_column(ForeignKey("sa_footage.id"), primary_key=True)
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "trailer"}


class Clip(Base):
    """The variant: other names, integer literals, a NOT NULL output, no timestamp."""

    __tablename__ = "sa_clip"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[int] = mapped_column(default=10)
    video: Mapped[str] = mapped_column(String(500), default="")


_ENGINES: dict[Target, Engine] = {}
_LOCK = threading.Lock()


def engine_for(target: Target) -> Engine:
    """One engine per database and process; SQLite in WAL mode with a busy timeout."""
    with _LOCK:
        if target not in _ENGINES:
            if target.backend == "sqlite":
                engine = create_engine(
                    target.sqlalchemy_url(), connect_args={"timeout": 30}, pool_size=20
                )

                @event.listens_for(engine, "connect")
                def _wal(dbapi_connection: Any, _: object) -> None:
                    dbapi_connection.execute("PRAGMA journal_mode=WAL")

            else:
                engine = create_engine(target.sqlalchemy_url(), pool_size=20)
            Base.metadata.create_all(engine)
            _ENGINES[target] = engine
        return _ENGINES[target]


class SQLAlchemyHarness(Harness):
    orm = "sqlalchemy"

    def prepare(self) -> None:
        self.engine = engine_for(self.target)
        self.model: type[Project] | type[Clip] = Clip if self.variant else Project
        self.factory = sessionmaker(self.engine, expire_on_commit=False)

    def adapter(self) -> SQLAlchemyAdapter:
        return SQLAlchemyAdapter(self.factory)

    def insert(self, status: Status = Status.DRAFT, output: str | None = None) -> object:
        with self.factory.begin() as session:
            obj = self.model(**self.new_row(status, output))
            session.add(obj)
        return obj.id

    def load(self, key: object) -> Any:
        with self.factory() as session:
            return session.get(self.model, key)

    def _column(self, logical: str) -> Any:
        return self.model.__table__.c[self.columns[logical]]

    def row(self, key: object) -> dict[str, Any]:
        names = list(self.columns)
        query = select(*(self._column(n) for n in names)).where(self.model.__table__.c.id == key)
        with self.engine.connect() as connection:
            return dict(zip(names, connection.execute(query).one(), strict=True))

    def edit(self, key: object, **values: Any) -> None:
        assignments = {self._column(n): v for n, v in values.items()}
        with self.engine.begin() as connection:
            table = self.model.__table__
            connection.execute(update(table).where(table.c.id == key).values(assignments))

    def delete(self, key: object) -> None:
        with self.engine.begin() as connection:
            table = self.model.__table__
            connection.execute(table.delete().where(table.c.id == key))

    def unsaved(self) -> Any:
        if self.variant:
            return Clip(name="t", state=self.literal(Status.DRAFT), video="")
        return Project(title="t", status="DRAFT")

    def blank(self) -> Any:
        # Column defaults apply on INSERT: until the first flush the status is None.
        return Clip(name="t") if self.variant else Project(title="t")

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(args[2])

        event.listen(self.engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(self.engine, "before_cursor_execute", record)

    def save_title(self, project: Any, title: str) -> None:
        with self.factory.begin() as session:
            session.add(project)
            setattr(project, self.columns["title"], title)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self.factory() as session, session.begin():
            yield Transaction(SQLAlchemyAdapter(session), lambda key: session.get(self.model, key))


class TestSQLAlchemyAdapter(AdapterContract):
    harness_class = SQLAlchemyHarness

    def test_next_flush_does_not_write_the_status_again(self, harness: Harness) -> None:
        """After a transition through a Session, the next flush issues no UPDATE of its own."""
        assert isinstance(harness, SQLAlchemyHarness)
        key = harness.insert()
        with harness.factory() as session:
            project = session.get(harness.model, key)
            harness.lifecycle(project, SQLAlchemyAdapter(session)).start_render()
            with harness.capture() as sql:
                session.flush()
            session.commit()
        assert sql == []
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_session_outside_a_transaction_commits_its_own(self, harness: Harness) -> None:
        """A Session with no transaction open gets one from the adapter, committed at once."""
        assert isinstance(harness, SQLAlchemyHarness)
        key = harness.insert()
        project = harness.load(key)
        with Session(harness.engine) as session:
            harness.lifecycle(project, SQLAlchemyAdapter(session)).start_render()
            assert not session.in_transaction()
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)


def test_database_computed_onupdate_is_expired_then_loaded(
    db_targets: dict[str, Target | Exception], backend: str
) -> None:
    """An onupdate=func.now() column is set by the UPDATE, expired, and loaded on access."""
    engine = engine_for(target_for(db_targets, backend))
    with Session(engine, expire_on_commit=False) as session:
        project = Stamped()
        session.add(project)
        session.commit()
        assert project.touched is None
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(args[2])

        event.listen(engine, "before_cursor_execute", record)
        try:
            ProjectLifecycle(project, SQLAlchemyAdapter(session)).start_render()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert "touched" in inspect(project).expired_attributes
        session.commit()
        assert project.touched is not None
        assert project.status == "PROCESSING"
    assert set_columns(statements[0]) == {"status", "touched"}


def test_a_long_failure_reason_fits_a_text_column(
    db_targets: dict[str, Target | Exception], backend: str
) -> None:
    """error_field on a Text column, which has no length to cut to: a reason longer than a
    MySQL TEXT holds (an encoder's whole output in the message) is cut to 8000 characters
    and saved; MariaDB refused the UPDATE and the project stayed PROCESSING."""
    engine = engine_for(target_for(db_targets, backend))
    with Session(engine, expire_on_commit=False) as session:
        project = Export()
        session.add(project)
        session.commit()
        lifecycle = ProjectLifecycle(project, SQLAlchemyAdapter(session), error_field="error")
        lifecycle.fail(RuntimeError("ffmpeg said: " + "\u00e9" * 70_000))
        session.commit()
    with Session(engine) as session:
        stored = session.get(Export, project.id)
        assert stored is not None
        assert stored.status == "FAILED"
        assert len(stored.error) == 8000
        assert stored.error.startswith("RuntimeError: ffmpeg said: \u00e9")
        assert stored.error.endswith("\u2026")


def test_columns_outside_the_own_table_are_refused() -> None:
    """With joined-table inheritance and status on the parent, apply says how to remap it."""
    trailer = Trailer(id=7, kind="trailer", status="DRAFT", output_path=None)
    make_transient_to_detached(trailer)
    with pytest.raises(TypeError) as info:
        ProjectLifecycle(trailer, SQLAlchemyAdapter(sessionmaker())).start_render()
    message = str(info.value)
    assert "Trailer: status is a column of sa_footage, not of sa_trailer" in message
    assert "move it to sa_trailer, or map Trailer with single-table inheritance" in message


class _SynonymBase(DeclarativeBase):
    pass


class Renamed(_SynonymBase):
    """A model whose ``state`` is a synonym, not a column (never created in a database)."""

    __tablename__ = "sa_renamed"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="DRAFT")
    output_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    state = synonym("status")


def test_a_field_that_is_not_a_column_names_the_option_to_fix() -> None:
    """status_field naming a synonym is refused with the option to pass a column instead."""
    project = Renamed(id=1, status="DRAFT", output_path=None)
    make_transient_to_detached(project)
    lifecycle = ProjectLifecycle(project, SQLAlchemyAdapter(sessionmaker()), status_field="state")
    with pytest.raises(TypeError) as info:
        lifecycle.start_render()
    message = str(info.value)
    assert "Renamed.state is not a mapped column" in message
    assert "pass ProjectLifecycle(status_field=..., output_field=...)" in message
    assert "naming a mapped column attribute of Renamed" in message
    assert project.status == "DRAFT"


def test_missing_sqlalchemy_names_the_extra() -> None:
    """Importing the adapter without SQLAlchemy raises ImportError quoting the pip command."""
    assert_missing_extra("renderstate.adapters.sqlalchemy", "sqlalchemy", "sqlalchemy")


@pytest.mark.parametrize("nullable", [True, False])
def test_empty_output_follows_the_column(nullable: bool) -> None:
    """empty_output is None for a nullable column and '' for a NOT NULL one."""
    project = Project(title="t") if nullable else Clip(name="t")
    field = "output_path" if nullable else "video"
    assert SQLAlchemyAdapter(sessionmaker()).empty_output(project, field) == (
        None if nullable else ""
    )
