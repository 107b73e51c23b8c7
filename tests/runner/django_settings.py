"""Django settings of the Celery worker tests: a project's own settings module, as a worker
loads it (``DJANGO_SETTINGS_MODULE``), with the ``CELERY_`` settings beside the database.

The test process passes what is per test (its database, broker prefix, queue, media root)
as JSON in ``RENDERSTATE_TEST_DJANGO``.
"""

from __future__ import annotations

import json
import os

_TEST = json.loads(os.environ["RENDERSTATE_TEST_DJANGO"])

SECRET_KEY = "renderstate-tests"
DATABASES = {"default": _TEST["database"]}
INSTALLED_APPS = ["djangoapp.apps.DjangoAppConfig", "renderstate.ledger.django"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
MEDIA_ROOT = _TEST["media"]

CELERY_BROKER_URL = _TEST["broker"]
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": _TEST["prefix"]}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = _TEST["queue"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
