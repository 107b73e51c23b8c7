"""Settings of the example app: SQLite and the media directory under the working directory."""

from pathlib import Path

BASE_DIR = Path.cwd()
SECRET_KEY = "example-only"  # noqa: S105 - a throwaway example
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
ROOT_URLCONF = "storyapp.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "storyapp",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "storyapp.sqlite3",
        "OPTIONS": {"timeout": 20},  # a busy timeout; WAL stays your choice (docs/cli.md)
    }
}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
USE_TZ = True
MEDIA_ROOT = BASE_DIR / "media"
MEDIA_URL = "/media/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Step 1 (guard): renderstate errors answer as DRF responses with a problem+json body.
REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "renderstate.web.drf.exception_handler",
}
