"""DjangoAttemptStore: the ledger contract on SQLite, PostgreSQL and MariaDB, plus the app.

The ledger's app (``renderstate.ledger.django``) is installed in the adapter tests' Django
settings, and its migration creates the table in each test database.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

from adapters.contract import Harness, elsewhere
from adapters.test_django import DjangoHarness
from renderstate import ProjectLifecycle, RenderConflictError, RenderJob, RenderRunner, Status
from renderstate._attempts import FIELDS
from renderstate.exceptions import AttemptSupersededError
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger.django import DjangoAttemptStore, DjangoLoader
from renderstate.runner import JobSpec
from renderstate.testing import MemoryProject
from renderstate.typing import Job

from .contract import Clock, LedgerContract, LedgerHarness, ledger_for
from .runner_case import Held, render_through_the_runner


class DjangoLedgerHarness(DjangoHarness, LedgerHarness):
    def store(self) -> DjangoAttemptStore:
        return DjangoAttemptStore(using=self.alias)

    def loader(self) -> DjangoLoader[Any]:
        return self.store().loader(self.model)

    def attempts(self) -> int:
        from renderstate.ledger.django.models import RenderAttempt  # noqa: PLC0415

        return elsewhere(lambda: RenderAttempt.objects.using(self.alias).count())

    @contextmanager
    def statements(self) -> Iterator[list[tuple[str, bool, object]]]:
        """Each SQL statement run on this thread's connection meanwhile, with whether it
        ran inside a transaction and which outermost ``atomic()`` block that was."""
        connection = connections[self.alias]
        seen: list[tuple[str, bool, object]] = []

        def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            outermost = connection.atomic_blocks[0] if connection.atomic_blocks else None
            seen.append((sql, not connection.get_autocommit(), outermost))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            yield seen


class TestDjangoLedger(LedgerContract):
    harness_class = DjangoLedgerHarness

    def test_runner_renders_with_the_store(self, harness: Harness, tmp_path: Path) -> None:
        """A RenderRunner on worker threads records, heartbeats and fences with this store."""
        assert isinstance(harness, LedgerHarness)
        render_through_the_runner(harness, tmp_path)

    def test_submit_inside_a_transaction_renders_once_it_commits(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """runner.submit() in the caller's transaction (a view under ATOMIC_REQUESTS): the
        worker thread may begin the attempt before the start has committed, and the
        heartbeat renew it. On PostgreSQL their UPDATE then matched no row: the job ended
        as superseded, nothing rendered and the project stayed PROCESSING until recovery.
        They wait for the commit instead."""
        ledger = Ledger(harness.store(), lease=1.5, progress_interval=0.05)
        renderer = Held(frames=2)
        renderer.release.set()
        runner = RenderRunner(
            harness.adapter(), renderer, media_root=tmp_path, ledger=ledger, **harness.options
        )
        try:
            key = harness.insert()
            with transaction.atomic(using=harness.alias):
                job = runner.submit(harness.load(key))
                time.sleep(0.8)  # the rest of the view, longer than a heartbeat period
            assert job.wait(30) is Status.COMPLETED, job.error
            assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)
            jobs = []

            def failing_view() -> None:
                with transaction.atomic(using=harness.alias):
                    jobs.append(runner.submit(harness.load(key)))
                    raise RuntimeError("the view fails: its writes, the start too, roll back")

            with pytest.raises(RuntimeError, match="the view fails"):
                failing_view()
            rolled_back = jobs[0]
            rolled_back.wait(30)
            assert isinstance(rolled_back.error, AttemptSupersededError)
            assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)
        finally:
            runner.shutdown()
            harness.release()

    def test_execute_before_the_senders_commit_waits_for_it(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """A worker in another thread (its own connection) receives the job's spec while
        the sender's transaction (a view under ATOMIC_REQUESTS) is still open: on
        PostgreSQL execute() then found no attempt and raised "not an attempt ... in this
        ledger". It waits for the commit, as begin() does, and renders."""
        assert isinstance(harness, LedgerHarness)
        sent: list[JobSpec] = []

        class Broker:
            def schedule(self, job: Job, /) -> None:
                assert isinstance(job, RenderJob)
                sent.append(JobSpec.from_dict(job.spec.to_dict()))
                job.hand_off()

            def shutdown(self, wait: bool = True) -> None:
                pass

        ledger = Ledger(harness.store(), lease=5.0, progress_interval=0.05)
        options = {**harness.options, "ledger": ledger, "loader": harness.loader()}
        sender = RenderRunner(
            harness.adapter(), Held(frames=1), media_root=tmp_path, executor=Broker(), **options
        )
        renderer = Held(frames=2)
        renderer.release.set()
        worker = RenderRunner(harness.adapter(), renderer, media_root=tmp_path, **options)
        executed: list[RenderJob[Any]] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                executed.append(worker.execute(sent[0]))
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)
            finally:
                connections.close_all()

        try:
            key = harness.insert()
            with transaction.atomic(using=harness.alias):
                job = sender.submit(harness.load(key))
                thread = threading.Thread(target=work)
                thread.start()
                time.sleep(0.8)  # the rest of the view; the worker has the spec already
                assert not executed, "nothing rendered before the start committed"
            thread.join(30)
            assert not errors, errors
            (done,) = executed
            assert done.status is Status.COMPLETED, done.error
            assert job.wait(10) is Status.COMPLETED
            assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)
            assert renderer.started.is_set()
        finally:
            sender.shutdown()
            worker.shutdown()
            harness.release()

    def test_fenced_complete_is_two_updates_in_one_transaction(self, harness: Harness) -> None:
        """A fenced complete runs exactly the attempt's UPDATE then the project's UPDATE,
        both inside one atomic() block (its savepoints aside)."""
        assert isinstance(harness, DjangoLedgerHarness)
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
        assert harness.model._meta.db_table in second
        assert first_inside
        assert second_inside
        assert first_block is not None
        assert first_block is second_block
        assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)

    def test_refused_start_runs_no_insert(self, harness: Harness) -> None:
        """A start that loses the race (its object says DRAFT, another process started the
        project) runs the guarded UPDATE, which matches no row, and reads: no INSERT."""
        assert isinstance(harness, DjangoLedgerHarness)
        ledger = ledger_for(harness)
        key = harness.insert()
        before = harness.attempts()
        lifecycle = harness.lifecycle(harness.load(key))
        harness.edit(key, status=harness.literal(Status.PROCESSING))
        with harness.statements() as seen, pytest.raises(RenderConflictError):
            ledger.start(lifecycle)
        sql = [s for s, _, _ in seen if s.split()[0] in {"UPDATE", "INSERT", "SELECT"}]
        assert sql[0].startswith("UPDATE"), sql
        assert harness.model._meta.db_table in sql[0], sql
        assert [s.split()[0] for s in sql[1:]] == ["SELECT"] * (len(sql) - 1), sql
        assert not any("renderstate_attempt" in s for s in sql), sql
        assert harness.attempts() == before

    def test_proxy_shares_the_concrete_scope(self, harness: Harness) -> None:
        """A proxy's instances are its concrete model's rows: same scope, same attempts."""
        assert isinstance(harness, DjangoLedgerHarness)
        from djangoapp.variant import ClipProxy, ProjectProxy  # noqa: PLC0415

        proxy = ClipProxy if harness.variant else ProjectProxy
        ledger = ledger_for(harness)
        key = harness.insert()
        as_proxy = proxy._base_manager.using(harness.alias).get(pk=key)
        _, attempt = ledger.start(harness.lifecycle(as_proxy))
        loader = harness.store().loader(proxy)
        assert loader.scope == harness.model._meta.label_lower == attempt.scope
        loaded = loader(attempt.project_key)
        assert isinstance(loaded, proxy)
        assert ledger.current(*ledger.key(harness.lifecycle(harness.load(key)))) == attempt

    def test_loader_by_label_and_bad_keys(self, harness: Harness) -> None:
        """A loader from the scope text alone loads the same row; text that is not a key
        of the model, or a deleted row, loads None."""
        assert isinstance(harness, DjangoLedgerHarness)
        key = harness.insert()
        store = harness.store()
        project = harness.load(key)
        scope = store.scope(project)
        assert scope == harness.model._meta.label_lower
        by_label = store.loader(scope)
        assert by_label.scope == scope
        assert by_label.model is harness.model
        loaded = by_label(str(key))
        assert loaded is not None
        assert loaded.pk == key
        assert by_label("not a key") is None
        harness.delete(key)
        assert by_label(str(key)) is None

    def test_project_from_another_database_is_refused(self, harness: Harness) -> None:
        """A store on another alias than the project's refuses to open the transaction,
        naming the fix, and nothing is written."""
        assert isinstance(harness, DjangoLedgerHarness)
        key = harness.insert()
        project = harness.load(key)
        ledger = Ledger(DjangoAttemptStore(using="default"), clock=Clock())
        fix = rf"DjangoAttemptStore\(using='{harness.alias}'\)"
        with pytest.raises(ImproperlyConfigured, match=fix):
            ledger.start(harness.lifecycle(project))
        assert harness.row(key)["status"] == harness.literal(Status.DRAFT)

    def test_migrated_table_matches_the_other_stores(self, harness: Harness) -> None:
        """The migration makes the columns and index names of attempt_table()."""
        assert isinstance(harness, DjangoLedgerHarness)

        def describe() -> tuple[set[str], set[str]]:
            connection = connections[harness.alias]
            with connection.cursor() as cursor:
                columns = {
                    c.name
                    for c in connection.introspection.get_table_description(
                        cursor, "renderstate_attempt"
                    )
                }
                constraints = connection.introspection.get_constraints(
                    cursor, "renderstate_attempt"
                )
            indexes = {
                name
                for name, info in constraints.items()
                if info["index"] and not info["primary_key"]
            }
            return columns, indexes

        columns, indexes = elsewhere(describe)
        assert columns == set(FIELDS)
        assert indexes == {"renderstate_attempt_project", "renderstate_attempt_lease"}


def test_migration_is_in_sync_with_the_model() -> None:
    """`makemigrations --check --dry-run renderstate` finds nothing to migrate."""
    child = (
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['renderstate.ledger.django'], DATABASES={})\n"
        "django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('makemigrations', 'renderstate', check=True, dry_run=True, verbosity=1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No changes detected" in done.stdout


def test_store_without_the_app_names_the_fix() -> None:
    """Without the app in INSTALLED_APPS, the store says what to add and what to run."""
    child = (
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=[], DATABASES={})\n"
        "django.setup()\n"
        "from renderstate.ledger.django import DjangoAttemptStore\n"
        "DjangoAttemptStore().get(1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert "add 'renderstate.ledger.django' to INSTALLED_APPS" in done.stderr
    assert "migrate renderstate" in done.stderr


def test_import_before_setup_is_safe() -> None:
    """The package imports no model: importing it before django.setup() works."""
    child = (
        "import renderstate.ledger.django as m\n"
        "import sys\n"
        "assert 'renderstate.ledger.django.models' not in sys.modules\n"
        "print(m.APP)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "renderstate.ledger.django"


def test_attempt_states_are_the_model_choices() -> None:
    """The model's state choices are exactly the attempt states."""
    from renderstate.ledger.django.models import RenderAttempt  # noqa: PLC0415

    field = RenderAttempt._meta.get_field("state")
    assert [value for value, _ in field.choices] == [s.value for s in AttemptState]


def test_a_foreign_object_is_refused_with_the_store_to_use() -> None:
    """A plain object, or a class that is no Django model, gets a TypeError naming the
    stores to use instead; nothing is written."""
    project = MemoryProject(title="plain")
    ledger = Ledger(DjangoAttemptStore(), clock=Clock())
    with pytest.raises(TypeError, match=r"files Django model instances; got a .*MemoryProject"):
        ledger.start(ProjectLifecycle(project))
    assert project.status == "DRAFT"
    with pytest.raises(TypeError, match=r"renderstate\.ledger\.sqlalchemy, \.peewee"):
        DjangoLoader(MemoryProject)  # type: ignore[arg-type]
