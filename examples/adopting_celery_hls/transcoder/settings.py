"""Settings of the transcoding app: SQLite and the media directory under the working directory."""

import os
from pathlib import Path

BASE_DIR = Path.cwd()
SECRET_KEY = "example-only"  # noqa: S105 - a throwaway example
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
ROOT_URLCONF = "transcoder.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "renderstate.ledger.django",  # the swap: the attempt ledger's table (migrate adds it)
    "videos",
]
MIDDLEWARE = [
    # The swap: a second request for a video being transcoded answers 409, not 500.
    "renderstate.web.django.RenderStateMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TRANSCODER_DATABASE", str(BASE_DIR / "transcoder.sqlite3")),
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}
USE_TZ = True
MEDIA_ROOT = BASE_DIR / "media"
MEDIA_URL = "/media/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CELERY_BROKER_URL = os.environ.get("TRANSCODER_BROKER", "redis://127.0.0.1:6379/0")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TRANSCODER_QUEUE", "celery")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
