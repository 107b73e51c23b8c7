"""DjangoAdapter: the shared contract on SQLite, PostgreSQL and MariaDB, plus Django's signals.

The reference model (``tests/djangoapp/models.py``) is the application's model copied
unmodified. mysqlclient cannot be built here, so Django reaches MariaDB through PyMySQL
installed as ``MySQLdb``; PyMySQL reports ``version_info`` (2, 2, 8), which Django 5.2 accepts.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import django
import pymysql
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections, models, transaction
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext

from renderstate import ProjectLifecycle, RenderConflictError, Status
from renderstate.adapters.django import DjangoAdapter

from .conftest import target_for
from .contract import (
    AdapterContract,
    Harness,
    Transaction,
    assert_missing_extra,
    elsewhere,
    set_columns,
)
from .databases import MARIADB, PG, Target

pymysql.install_as_MySQLdb()


_LOCK = threading.Lock()
_PREPARED: set[str] = set()
_ALIASES: dict[Target, str] = {}


def database_settings(target: Target) -> dict[str, Any]:
    """Django's DATABASES entry for ``target``; SQLite in WAL mode with a busy timeout."""
    if target.backend == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": target.name,
            # BEGIN IMMEDIATE for atomic(): a transaction that read first could otherwise
            # fail with "database is locked" when it tries to write.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    if target.backend == "postgres":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": target.name,
            "USER": target.user,
            "HOST": PG["host"],
            "PORT": PG["port"],
        }
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": target.name,
        "USER": MARIADB["user"],
        "PASSWORD": MARIADB["password"],
        "HOST": MARIADB["host"],
        "PORT": MARIADB["port"],
        # Django asks MySQL for READ COMMITTED by default; the server's own default,
        # REPEATABLE READ, is the harder case for a refused CAS, so the tests use it.
        "OPTIONS": {"charset": "utf8mb4", "isolation_level": "repeatable read"},
    }


def use_database(target: Target) -> str:
    """Configure Django (once per process) and register ``target`` under an alias of its own.

    The alias is the backend's name for its first target in this process; the adapter and
    ledger tests each have their own databases (a session fixture per directory), so a
    second target of a backend gets a numbered alias instead of reusing the first's.
    """
    with _LOCK:
        alias = _ALIASES.get(target)
        if alias is None:
            taken = sum(1 for other in _ALIASES if other.backend == target.backend)
            alias = target.backend if not taken else f"{target.backend}{taken + 1}"
            _ALIASES[target] = alias
        if not settings.configured:
            settings.configure(
                DATABASES={"default": database_settings(target)},
                # The attempt ledger's app too: tests/ledger run its migration here.
                INSTALLED_APPS=["djangoapp.apps.DjangoAppConfig", "renderstate.ledger.django"],
                USE_TZ=True,
                DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            )
            django.setup()
        if alias not in connections.settings:
            configured = connections.configure_settings(
                {"default": database_settings(target), alias: database_settings(target)}
            )
            connections.settings[alias] = configured[alias]
        if alias not in _PREPARED:
            from djangoapp.models import Project  # noqa: PLC0415 - needs django.setup()
            from djangoapp.variant import Clip, Transcode  # noqa: PLC0415 - needs django.setup()

            def create_tables() -> None:
                connection = connections[alias]
                existing = connection.introspection.table_names()
                with connection.schema_editor() as editor:
                    for model in (Project, Clip, Transcode):
                        if model._meta.db_table not in existing:
                            editor.create_model(model)
                if "renderstate_attempt" not in existing:
                    # The ledger's own migration, as `manage.py migrate renderstate` runs it.
                    call_command("migrate", "renderstate", database=alias, verbosity=0)

            elsewhere(create_tables)
            _PREPARED.add(alias)
    return alias


class DjangoHarness(Harness):
    orm = "django"

    def prepare(self) -> None:
        self.alias = use_database(self.target)
        from djangoapp.models import Project  # noqa: PLC0415 - needs django.setup()
        from djangoapp.variant import Clip  # noqa: PLC0415 - needs django.setup()

        self.model: Any = Clip if self.variant else Project

    def adapter(self) -> DjangoAdapter:
        return DjangoAdapter()

    def insert(self, status: Status = Status.DRAFT, output: str | None = None) -> object:
        fields = self.new_row(status, output)
        return elsewhere(lambda: self.model.objects.using(self.alias).create(**fields).pk)

    def load(self, key: object) -> Any:
        return self.model._base_manager.using(self.alias).get(pk=key)

    def row(self, key: object) -> dict[str, Any]:
        names = list(self.columns)
        columns = [self.columns[n] for n in names]
        values = elsewhere(
            lambda: self.model._base_manager.using(self.alias).values_list(*columns).get(pk=key)
        )
        return dict(zip(names, values, strict=True))

    def edit(self, key: object, **values: Any) -> None:
        assignments = {self.columns[n]: v for n, v in values.items()}
        elsewhere(
            lambda: self.model._base_manager.using(self.alias).filter(pk=key).update(**assignments)
        )

    def delete(self, key: object) -> None:
        elsewhere(lambda: self.model._base_manager.using(self.alias).filter(pk=key).delete())

    def unsaved(self) -> Any:
        if self.variant:
            return self.model(name="t", state=self.literal(Status.DRAFT))
        return self.model(title="t")

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        statements: list[str] = []
        with CaptureQueriesContext(connections[self.alias]) as context:
            yield statements
        statements.extend(query["sql"] for query in context.captured_queries)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with transaction.atomic(using=self.alias):
            yield Transaction(DjangoAdapter(), self.load)

    def release(self) -> None:
        connections[self.alias].close()

    def save_title(self, project: Any, title: str) -> None:
        setattr(project, self.columns["title"], title)
        project.save()

    def save_fields(self, project: Any, fields: list[str]) -> None:
        """Save ``fields`` of ``project`` the ORM's own way: ``save(update_fields=...)``."""
        project.save(update_fields=fields)


class FiveStatuses(models.TextChoices):
    """An app's five statuses as Django choices: QUEUED and PROCESS are both PROCESSING."""

    CREATED = "CREATED"
    QUEUED = "QUEUED"
    PROCESS = "PROCESS"
    DONE = "DONE"
    ERROR = "ERROR"


class FiveIntegerStatuses(models.IntegerChoices):
    """The variant model's integers as Django choices: 20 and 25 are both PROCESSING."""

    CREATED = 10
    QUEUED = 20
    PROCESS = 25
    DONE = 30
    ERROR = 40


class DjangoChecks:
    """What Django users rely on beyond the contract, checked on both Django adapters.

    :class:`TestDjangoAdapter` runs these through :class:`DjangoAdapter`,
    ``TestAsyncDjangoAdapter`` (``test_django_async.py``) through ``AsyncDjangoAdapter``:
    each harness drives its own adapter, so each scenario is written once.
    """

    def test_text_choices_literals_read_the_loaded_strings(self, harness: Harness) -> None:
        """values= given as TextChoices (IntegerChoices) members reads a loaded row's literal.

        Django hands back a plain ``str`` (``int``) for a field with choices, so a member
        given in ``values`` must match it: the project below was read as an unknown
        status, every load of every row, until members and strings counted as one kind.
        """
        choices: Any = FiveIntegerStatuses if harness.variant else FiveStatuses
        harness.values = {
            Status.DRAFT: choices.CREATED,
            Status.PROCESSING: [choices.QUEUED, choices.PROCESS],
            Status.COMPLETED: choices.DONE,
            Status.FAILED: choices.ERROR,
        }
        plain = type(choices.CREATED.value)
        key = harness.insert()
        harness.edit(key, status=plain(choices.CREATED))
        project = harness.load(key)
        assert type(getattr(project, harness.columns["status"])) is plain
        lifecycle = harness.lifecycle(project)
        assert lifecycle.status is Status.DRAFT
        lifecycle.start_render()
        assert harness.row(key)["status"] == choices.QUEUED
        harness.edit(key, status=plain(choices.PROCESS))
        again = harness.lifecycle(harness.load(key))
        assert again.status is Status.PROCESSING
        with pytest.raises(RenderConflictError):
            again.start_render()
        again.complete("projects/1/final.mp4")
        assert harness.row(key)["status"] == choices.DONE

    @pytest.mark.parametrize("receiver", ["sync", "async"])
    def test_signals_carry_update_fields(self, harness: Harness, receiver: str) -> None:
        """pre_save and post_save are sent as by save(update_fields=[changed fields]).

        The async adapter sends them as ``asave()`` does; an async ``post_save`` receiver
        is awaited too, whichever adapter sends.
        """
        assert isinstance(harness, DjangoHarness)
        key = harness.insert()
        project = harness.load(key)
        seen: list[tuple[str, object]] = []

        def on_pre_save(instance: Any, update_fields: frozenset[str], **kwargs: Any) -> None:
            status = getattr(instance, harness.columns["status"])
            seen.append(("pre_save", (update_fields, status, kwargs["raw"], kwargs["using"])))

        def post_save_details(instance: Any, update_fields: frozenset[str], **kwargs: Any) -> None:
            seen.append(("post_save", (update_fields, kwargs["created"], instance is project)))

        async def on_post_save_async(instance: Any, **kwargs: Any) -> None:
            await asyncio.sleep(0)
            post_save_details(instance, **kwargs)

        on_post_save = post_save_details if receiver == "sync" else on_post_save_async
        pre_save.connect(on_pre_save, sender=harness.model, weak=False)
        post_save.connect(on_post_save, sender=harness.model, weak=False)
        try:
            harness.lifecycle(project).start_render()
        finally:
            pre_save.disconnect(on_pre_save, sender=harness.model)
            post_save.disconnect(on_post_save, sender=harness.model)
        status = harness.columns["status"]
        fields = frozenset({status} if harness.variant else {status, "updated_at"})
        processing = harness.literal(Status.PROCESSING)
        assert seen == [
            ("pre_save", (fields, processing, False, harness.alias)),
            ("post_save", (fields, False, True)),
        ]

    def test_a_refused_start_sends_no_post_save(self, harness: Harness) -> None:
        """A start refused by the row sends pre_save (as save() would) but never post_save."""
        assert isinstance(harness, DjangoHarness)
        key = harness.insert(Status.PROCESSING)
        project = harness.load(key)
        setattr(project, harness.columns["status"], harness.literal(Status.DRAFT))  # stale
        sent: list[str] = []

        def on_post_save(**kwargs: Any) -> None:
            sent.append("post_save")

        post_save.connect(on_post_save, sender=harness.model, weak=False)
        try:
            applied = harness.adapter().apply(project, harness.start_change(Status.DRAFT))
        finally:
            post_save.disconnect(on_post_save, sender=harness.model)
        assert applied is False
        assert sent == []
        assert getattr(project, harness.columns["status"]) == harness.literal(Status.PROCESSING)

    def test_update_sets_what_save_with_update_fields_sets(self, harness: Harness) -> None:
        """The guarded UPDATE assigns the same columns as save(update_fields=[...]) would.

        Through the async adapter, the same columns as ``asave(update_fields=[...])``.
        """
        assert isinstance(harness, DjangoHarness)
        key = harness.insert()
        status = harness.columns["status"]
        fields = [status] if harness.variant else [status, "updated_at"]
        saved = harness.load(key)
        setattr(saved, status, harness.literal(Status.PROCESSING))
        with harness.capture() as by_save:
            harness.save_fields(saved, fields)
        harness.edit(key, status=harness.literal(Status.DRAFT))
        lifecycle = harness.lifecycle(harness.load(key))
        with harness.capture() as by_adapter:
            lifecycle.start_render()
        assert set_columns(by_adapter[0]) == set_columns(by_save[0]) == set(fields)

    def test_auto_now_is_stamped_on_the_instance(self, harness: Harness) -> None:
        """The instance's updated_at is the value the UPDATE stored, as after save()."""
        assert isinstance(harness, DjangoHarness)
        if harness.variant:
            return  # the variant has no auto_now field; nothing to stamp
        key = harness.insert()
        project = harness.load(key)
        loaded = project.updated_at
        harness.lifecycle(project).start_render()
        assert project.updated_at > loaded
        assert harness.row(key)["updated_at"] == project.updated_at

    def test_refusal_puts_back_the_instance(self, harness: Harness) -> None:
        """A refused start leaves the instance's timestamp as loaded and its status refreshed."""
        assert isinstance(harness, DjangoHarness)
        key = harness.insert()
        project = harness.load(key)
        harness.edit(key, status=harness.literal(Status.PROCESSING))
        before = {f.attname: getattr(project, f.attname) for f in project._meta.concrete_fields}
        with pytest.raises(RenderConflictError):
            harness.lifecycle(project).start_render()
        after = {f.attname: getattr(project, f.attname) for f in project._meta.concrete_fields}
        status = harness.columns["status"]
        assert after == {**before, status: harness.literal(Status.PROCESSING)}


class TestDjangoAdapter(DjangoChecks, AdapterContract):
    harness_class = DjangoHarness


def test_missing_django_names_the_extra() -> None:
    """Importing the adapter without Django raises ImportError quoting the pip command."""
    assert_missing_extra("renderstate.adapters.django", "django", "django")


def test_rolled_back_savepoint_is_undone_on_the_object(
    db_targets: dict[str, Target | Exception], backend: str
) -> None:
    """A start in a nested atomic() that rolls back is undone; the outer commit keeps the title."""
    harness = DjangoHarness(target_for(db_targets, backend), variant=False)
    harness.prepare()
    key = harness.insert()

    def start_then_raise(project: Any) -> None:
        with transaction.atomic(using=harness.alias):
            harness.lifecycle(project, DjangoAdapter()).start_render()
            raise LookupError

    with transaction.atomic(using=harness.alias):
        project = harness.load(key)
        with pytest.raises(LookupError):
            start_then_raise(project)
        project.title = "edited after the savepoint"
        project.save()
    row = harness.row(key)
    assert (row["status"], row["title"]) == ("DRAFT", "edited after the savepoint")


def test_a_uuid_column_holds_celery_s_task_id(
    db_targets: dict[str, Target | Exception], backend: str
) -> None:
    """The transcoding app's Video.task_id is a UUIDField (Celery's ids are UUIDs): as
    task_id_field it gets the id in the start's own UPDATE, a start without one (a thread
    executor) empties it, and an id that is no UUID is refused before anything is written.
    It was refused as 'no text column', so the swap could not keep the app's column."""
    harness = DjangoHarness(target_for(db_targets, backend), variant=False)
    harness.prepare()
    from djangoapp.variant import Transcode  # noqa: PLC0415 - needs django.setup()

    videos = Transcode.objects.using(harness.alias)
    key = videos.create().pk
    values: Any = {
        Status.DRAFT: 0,
        Status.PROCESSING: [1, 2],
        Status.COMPLETED: 3,
        Status.FAILED: 4,
    }

    def lifecycle() -> ProjectLifecycle[Any]:
        return ProjectLifecycle(
            videos.get(pk=key),
            DjangoAdapter(),
            values=values,
            output_field=None,
            error_field="error",
            task_id_field="task_id",
        )

    task = str(uuid.uuid4())
    lifecycle().start_render(task_id=task)
    assert videos.values("status", "task_id").get(pk=key) == {
        "status": 1,
        "task_id": uuid.UUID(task),
    }
    lifecycle().fail(RuntimeError("the encoder crashed"))
    with pytest.raises(ValueError, match="no UUID"):
        lifecycle().start_render(task_id="render-7")
    assert videos.values("status", "task_id").get(pk=key) == {
        "status": 4,
        "task_id": uuid.UUID(task),
    }
    lifecycle().start_render()
    assert videos.values("status", "task_id", "error").get(pk=key) == {
        "status": 1,
        "task_id": None,
        "error": None,
    }
