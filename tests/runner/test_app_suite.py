"""An app's own Django test suite on renderstate: ``manage.py test`` in a child process.

The app builds one runner at import time, with the Django ledger and a thread executor, as
the origin app does. Its tests submit renders: one inside a ``TestCase`` (the test's
transaction) in immediate mode, one that leaves a slow job behind in a
``TransactionTestCase``. With ``RenderJobsMixin`` the suite passes, renders in the test's
transaction, leaves no job running past its test and logs no "database table is locked"; an
immediate render inside the app's own ``transaction.atomic()`` (not the test's) is refused.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

from child_suites import child_path, run_suite

SUITE = """
import threading
from pathlib import Path

from django.db import transaction
from django.test import TestCase, TransactionTestCase

from djangoapp.models import Project
from renderstate import RenderRunner
from renderstate.adapters.django import DjangoAdapter
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger.django import DjangoAttemptStore
from renderstate.testing import FakeRenderer, RenderJobsMixin

store = DjangoAttemptStore()
ledger = Ledger(store)


def make_runner(renderer):
    return RenderRunner(
        DjangoAdapter(), renderer, media_root=MEDIA, ledger=ledger, loader=store.loader(Project)
    )


runner = make_runner(FakeRenderer(frames=3))
slow_runner = make_runner(FakeRenderer(frames=100_000, frame_delay=0.01))
LEFT = []


class ExportTests(RenderJobsMixin, TestCase):
    render_immediately = True

    def test_export_renders_inside_the_test_transaction(self):
        project = Project.objects.create(title="clip")
        job = runner.submit(project, actor="tester")
        assert job.done(), "immediate: ended before submit returned"
        project.refresh_from_db()
        assert project.status == "COMPLETED", project.status
        (attempt,) = ledger.history(store.scope(project), project.pk)
        assert attempt.state is AttemptState.COMPLETED
        names = {t.name for t in threading.enumerate()}
        assert "renderstate-heartbeat" not in names, names

    def test_a_second_export_in_the_same_test_is_a_re_render(self):
        project = Project.objects.create(title="clip")
        runner.submit(project)
        job = runner.submit(project)
        assert job.status.value == "COMPLETED"
        assert len(ledger.history(store.scope(project), project.pk)) == 2


    def test_a_block_of_the_test_s_own_inside_its_transaction_still_renders(self):
        project = Project.objects.create(title="clip")
        with transaction.atomic():
            job = runner.submit(project)
        assert job.status.value == "COMPLETED", job.status


class CallersTransactionTests(RenderJobsMixin, TransactionTestCase):
    render_immediately = True

    def test_an_immediate_render_inside_atomic_is_refused_and_changes_nothing(self):
        # Rendered in the caller's transaction, the new video replaced final.mp4 and a
        # rollback left the project COMPLETED on it, the previous video lost.
        project = Project.objects.create(title="clip")
        runner.submit(project)
        project.refresh_from_db()
        final = Path(MEDIA) / project.output_path
        final.write_bytes(b"PREVIOUS VIDEO")
        with self.assertRaisesRegex(RuntimeError, "Submit once the transaction"):
            with transaction.atomic():
                runner.submit(project)
                raise AssertionError("rendered inside the caller's transaction")
        project.refresh_from_db()
        assert project.status == "COMPLETED", project.status
        assert final.read_bytes() == b"PREVIOUS VIDEO"
        assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
        assert len(ledger.history(store.scope(project), project.pk)) == 1


class LeftRunningTests(RenderJobsMixin, TransactionTestCase):
    def test_leaves_a_slow_render_behind(self):
        LEFT.append(slow_runner.submit(Project.objects.create(title="slow")))
        assert not LEFT[0].done()

    @classmethod
    def tearDownClass(cls):
        # The mixin's clean-up ran after the test, before the table was flushed.
        assert LEFT and LEFT[0].done(), "a render job outlived its test"
        assert LEFT[0].status.value == "FAILED"
        super().tearDownClass()
"""


def test_an_app_suite_with_the_mixin_passes_quietly(tmp_path: Path) -> None:
    app = tmp_path / "apptests"
    app.mkdir()
    (app / "__init__.py").write_text("")
    media = tmp_path / "media"
    (app / "tests.py").write_text(f"MEDIA = {str(media)!r}\n" + SUITE)
    (tmp_path / "appsettings.py").write_text(
        textwrap.dedent(
            f"""
            SECRET_KEY = "renderstate-tests"
            DATABASES = {{"default": {{
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": {str(tmp_path / "app.sqlite3")!r},
                "TEST": {{"NAME": {str(tmp_path / "test.sqlite3")!r}}},
                "OPTIONS": {{"timeout": 20}},
            }}}}
            INSTALLED_APPS = ["djangoapp.apps.DjangoAppConfig", "renderstate.ledger.django",
                              "apptests"]
            USE_TZ = True
            DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
            LOGGING = {{"version": 1, "disable_existing_loggers": False,
                        "handlers": {{"err": {{"class": "logging.StreamHandler"}}}},
                        "root": {{"handlers": ["err"], "level": "INFO"}}}}
            """
        )
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "appsettings",
        "PYTHONPATH": child_path(tmp_path),
    }
    env.pop("RENDERSTATE_IMMEDIATE", None)
    output = run_suite(
        ["-m", "django", "test", "apptests", "-v", "2", "--noinput"],
        cwd=tmp_path,
        env=env,
        timeout=240,
    )
    assert "Ran 5 tests" in output, output
    assert "database table is locked" not in output, output
    assert "Traceback" not in output, output


PYTEST_SUITE = """
from renderstate import RenderRunner, Status
from renderstate.testing import FakeRenderer, MemoryAdapter, MemoryProject

slow = RenderRunner(MemoryAdapter(), FakeRenderer(frames=100_000, frame_delay=0.01),
                    media_root=MEDIA)
quick = RenderRunner(MemoryAdapter(), FakeRenderer(frames=2), media_root=MEDIA)
LEFT = []


def test_1_leaves_a_slow_render_behind():
    LEFT.append(slow.submit(MemoryProject()))
    assert not LEFT[0].done()


def test_2_the_plugin_stopped_it_after_the_test():
    assert LEFT[0].done(), "a render job outlived its test"
    assert LEFT[0].status is Status.FAILED


def test_3_immediate_renders_fixture(immediate_renders):
    job = quick.submit(MemoryProject())
    assert job.done() and job.status is Status.COMPLETED


def test_4_without_the_fixture_renders_run_in_the_background():
    job = quick.submit(MemoryProject())
    job.wait(30)
    assert job.status is Status.COMPLETED
"""


def test_the_pytest_plugin_stops_jobs_and_offers_immediate_renders(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["renderstate.pytest_plugin"]\n')
    (tmp_path / "test_app.py").write_text(f"MEDIA = {str(tmp_path / 'media')!r}\n" + PYTEST_SUITE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path[1:])}
    env.pop("RENDERSTATE_IMMEDIATE", None)
    options = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-c", os.devnull]
    output = run_suite(
        ["-m", "pytest", *options, "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        timeout=240,
    )
    assert "4 passed" in output, output
