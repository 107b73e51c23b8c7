"""Django settings of the Django tasks tests: a project's own settings module, as its web
processes and its ``db_worker`` processes load it (``DJANGO_SETTINGS_MODULE``), with the
``TASKS`` setting and ``RENDERSTATE_RUNNER`` beside the database, as docs/django-tasks.md
shows them.

The test process passes what is per test (its database, media root, lease, renderer) as JSON
in ``RENDERSTATE_TEST_DJANGO_TASKS``.
"""

from __future__ import annotations

import json
import os

import django

_TEST = json.loads(os.environ["RENDERSTATE_TEST_DJANGO_TASKS"])

if _TEST["database"]["ENGINE"] == "django.db.backends.mysql":
    import pymysql

    pymysql.install_as_MySQLdb()  # Django's MySQL backend on the pure-Python driver

SECRET_KEY = "renderstate-tests"
DATABASES = {"default": _TEST["database"]}
INSTALLED_APPS = [
    "djangoapp.apps.DjangoAppConfig",
    "renderstate.ledger.django",
    # Django 6 has django.tasks built in; before it, the backport is an app of its own.
    *(["django_tasks"] if django.VERSION < (6,) else []),
    "django_tasks_db",
]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
MEDIA_ROOT = _TEST["media"]

_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "immediate": "django.tasks.backends.immediate.ImmediateBackend"
    if django.VERSION >= (6,)
    else "django_tasks.backends.immediate.ImmediateBackend",
    "no defer": "runner.django_tasks_app.NoDeferBackend",
}
TASKS = {
    "default": {
        "BACKEND": _BACKENDS[_TEST.get("backend", "database")],
        # The queues a task may name: each test renders on a queue of its own.
        "QUEUES": ["default", _TEST["queue"]],
    }
}
if _TEST.get("runner", True):
    RENDERSTATE_RUNNER = "runner.django_tasks_app.make_runner"

RENDERSTATE_TEST = _TEST
