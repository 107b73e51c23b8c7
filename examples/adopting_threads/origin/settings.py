"""Settings of the origin app: SQLite and the media directory under the working directory."""

from pathlib import Path

BASE_DIR = Path.cwd()
SECRET_KEY = "example-only"  # noqa: S105 - a throwaway example
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
ROOT_URLCONF = "origin.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "renderstate.ledger.django",  # the swap: the attempt ledger's table (migrate adds it)
    "studio",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "origin.sqlite3",
        # The swap: the render threads and the ledger's heartbeat write beside the requests;
        # writers wait for each other instead of failing with "database is locked".
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}
USE_TZ = True
MEDIA_ROOT = BASE_DIR / "media"
MEDIA_URL = "/media/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    # The swap: renderstate's errors answer {"error": "<sentence>"}, as the app always did.
    "EXCEPTION_HANDLER": "renderstate.web.drf.error_sentence_handler",
}
