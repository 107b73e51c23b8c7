"""A ledger table made before the columns added since its first version (owner, the cancel
request): refused with the fix before anything is written, and brought up to date by the
store's own create_table(), the Django migrations and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from adapters.conftest import BACKEND_PARAMS, db_targets, target_for
from renderstate import LedgerSchemaError, ProjectLifecycle, Status
from renderstate.adapters.sqlalchemy import SQLAlchemyAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.sqlalchemy import _ADDED as ADDED
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore, attempt_table

__all__ = ["db_targets"]


class _Base(DeclarativeBase):
    pass


class Clip(_Base):
    __tablename__ = "schema_clip"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="DRAFT")
    output_path: Mapped[str | None] = mapped_column(String(500), nullable=True)


def old_attempt_table(metadata: MetaData) -> Table:
    """The ledger's table as the first version declared it: none of the columns added since."""
    current = attempt_table(MetaData())
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in current.c
        if c.name not in ADDED
    ]
    return Table(current.name, metadata, *columns)


@pytest.fixture(params=BACKEND_PARAMS)
def url(request: pytest.FixtureRequest, db_targets: dict[str, object]) -> Iterator[str]:
    address = target_for(db_targets, request.param).sqlalchemy_url()  # type: ignore[arg-type]
    engine = create_engine(address)
    old = MetaData()
    old_attempt_table(old)
    with engine.begin() as connection:
        old.drop_all(connection)
        _Base.metadata.drop_all(connection)
        old.create_all(connection)
        _Base.metadata.create_all(connection)
    engine.dispose()
    yield address
    engine = create_engine(address)
    with engine.begin() as connection:
        attempt_table(MetaData()).drop(connection, checkfirst=True)
        _Base.metadata.drop_all(connection)
    engine.dispose()


def test_sqlalchemy_refuses_an_old_table_then_upgrades_it(url: str) -> None:
    """A start on a table without the added columns is refused with LedgerSchemaError
    naming create_table() and the migration, and the project stays DRAFT;
    create_table() adds the columns (nothing else) and the start then records its
    owner."""
    engine = create_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions.begin() as session:
        session.add(Clip(id=1))
    store = SQLAlchemyAttemptStore(sessions)
    ledger = Ledger(store)
    adapter = SQLAlchemyAdapter(sessions)
    with sessions() as session:
        clip = session.get(Clip, 1)
    assert clip is not None
    with pytest.raises(LedgerSchemaError) as refused:
        ledger.start(ProjectLifecycle(clip, adapter))
    assert refused.value.missing == (
        "owner",
        "cancel_requested_at",
        "cancel_reason",
        "executor",
        "task_id",
        "traceparent",
        "label",
    )
    assert "create_table()" in str(refused.value)
    assert "nothing was written" in str(refused.value)
    with sessions() as session:
        assert session.get(Clip, 1).status == "DRAFT"  # type: ignore[union-attr]
    before = {c["name"] for c in inspect(engine).get_columns("renderstate_attempt")}
    store.create_table()
    after = {c["name"] for c in inspect(engine).get_columns("renderstate_attempt")}
    assert after - before == set(ADDED)
    record, attempt = ledger.start(ProjectLifecycle(clip, adapter))
    assert record.target is Status.PROCESSING
    assert attempt.owner is not None
    assert ledger.get(attempt.id) == attempt
    store.create_table()  # again: nothing to add
    engine.dispose()


def test_peewee_refuses_an_old_table_then_upgrades_it(tmp_path: Path) -> None:
    """The same with Peewee: refused, then create_ledger_table() adds the column."""
    import peewee  # noqa: PLC0415

    from renderstate.adapters.peewee import PeeweeAdapter  # noqa: PLC0415
    from renderstate.ledger.peewee import PeeweeAttemptStore, create_ledger_table  # noqa: PLC0415

    file = tmp_path / "old.sqlite3"
    engine = create_engine(f"sqlite:///{file}")
    old = MetaData()
    old_attempt_table(old)
    old.create_all(engine)
    engine.dispose()
    db = peewee.SqliteDatabase(str(file))

    class Video(peewee.Model):
        status = peewee.CharField(default="DRAFT")
        output_path = peewee.CharField(null=True)

        class Meta:
            database = db

    db.create_tables([Video])
    video = Video.create()
    ledger = Ledger(PeeweeAttemptStore(db))
    with pytest.raises(LedgerSchemaError, match="create_ledger_table"):
        ledger.start(ProjectLifecycle(video, PeeweeAdapter()))
    assert Video.get_by_id(video.id).status == "DRAFT"
    create_ledger_table(db)
    assert set(ADDED) <= {c.name for c in db.get_columns("renderstate_attempt")}
    fresh = Ledger(PeeweeAttemptStore(db))
    _, attempt = fresh.start(ProjectLifecycle(Video.get_by_id(video.id), PeeweeAdapter()))
    assert attempt.owner is not None
    db.close()


def test_django_refuses_an_unmigrated_table_then_migrate_adds_the_column(tmp_path: Path) -> None:
    """A database migrated to 0001, then to 0002: the store names the columns each lacks
    and `manage.py migrate renderstate`; after migrating, it reads the ledger."""
    child = textwrap.dedent(
        f"""
        import json
        import django
        from django.conf import settings
        settings.configure(
            INSTALLED_APPS=["renderstate.ledger.django"],
            DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3",
                                    "NAME": {str(tmp_path / "dj.sqlite3")!r}}}}},
        )
        django.setup()
        from django.core.management import call_command
        from renderstate import LedgerSchemaError
        from renderstate.ledger.django import DjangoAttemptStore
        call_command("migrate", "renderstate", "0001", verbosity=0)
        out = {{}}
        try:
            DjangoAttemptStore().get(1)
        except LedgerSchemaError as exc:
            out["refused"] = str(exc)
        call_command("migrate", "renderstate", "0002", verbosity=0)
        try:
            DjangoAttemptStore().get(1)
        except LedgerSchemaError as exc:
            out["refused_0002"] = str(exc)
        call_command("migrate", "renderstate", verbosity=0)
        out["after"] = DjangoAttemptStore().get(1)
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (
        "lacks the columns owner, cancel_requested_at, cancel_reason, executor, task_id,"
        in out["refused"]
    )
    assert "python manage.py migrate renderstate" in out["refused"]
    assert (
        "lacks the columns cancel_requested_at, cancel_reason, executor, task_id,"
        in out["refused_0002"]
    )
    assert out["after"] is None


def test_the_command_line_upgrades_its_own_database_file(tmp_path: Path) -> None:
    """A database file written by an earlier renderstate (its ledger table without the
    owner column): the next command adds the column and renders."""
    from renderstate.cli._store import _Base as CliBase  # noqa: PLC0415

    file = tmp_path / "renderstate.sqlite3"
    engine = create_engine(f"sqlite:///{file}")
    old = MetaData()
    for table in CliBase.metadata.sorted_tables:
        if table.name == "renderstate_attempt":
            old_attempt_table(old)
        else:
            table.to_metadata(old)
    old.create_all(engine)
    assert "owner" not in {c["name"] for c in inspect(engine).get_columns("renderstate_attempt")}
    engine.dispose()
    timeline = tmp_path / "timeline.json"
    sample = subprocess.run(
        [sys.executable, "-m", "renderstate", "sample"], capture_output=True, text=True, check=True
    )
    timeline.write_text(sample.stdout)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "renderstate",
            "render",
            str(timeline),
            "--db",
            f"sqlite:///{file}",
            "--media",
            str(tmp_path / "media"),
            "--renderer",
            "fake",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    engine = create_engine(f"sqlite:///{file}")
    assert set(ADDED) <= {c["name"] for c in inspect(engine).get_columns("renderstate_attempt")}
    with engine.connect() as connection:
        owners = connection.exec_driver_sql("SELECT owner FROM renderstate_attempt").all()
    engine.dispose()
    assert owners
    assert all(owner for (owner,) in owners)
