"""Settings of the example site, read from the environment (``serve.py`` sets them).

- ``EXPORTSITE_DATABASE_URL``: ``sqlite:///path/to/db.sqlite3``,
  ``postgresql://user:password@host:port/name`` or ``mysql://user:password@host:port/name``.
- ``EXPORTSITE_MEDIA_ROOT``: where uploads (``uploads/``) and rendered videos
  (``projects/<id>/final.mp4``) live; served under ``/media/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


def database_from_url(url: str) -> dict[str, Any]:
    """Translate a database URL into Django's ``DATABASES["default"]``."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy spells them.
        name = unquote(parts.path.removeprefix("/"))
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "OPTIONS": {
                # Writers wait for each other instead of failing with "database is locked";
                # IMMEDIATE takes the write lock when a transaction begins, not when it first
                # writes, which is where deferred transactions deadlock.
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    if scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    if scheme in {"mysql", "mariadb"}:
        try:
            import MySQLdb  # noqa: F401, PLC0415 - mysqlclient, Django's own choice
        except ImportError:
            import pymysql  # noqa: PLC0415 - a pure-Python stand-in (requirements.txt)

            pymysql.install_as_MySQLdb()
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "OPTIONS": {"charset": "utf8mb4"},
        }
    msg = (
        f"unsupported database URL {url!r}: use sqlite:///path, postgresql://user@host/name "
        "or mysql://user@host/name"
    )
    raise ValueError(msg)


BASE_DIR = Path(__file__).resolve().parent.parent

# An example runs on a developer's machine: set a real secret in production.
SECRET_KEY = os.environ.get("EXPORTSITE_SECRET_KEY", "renderstate-example-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["django.contrib.contenttypes", "projects"]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    # A RenderStateError escaping a view becomes its problem+json answer (409, 404, 422).
    "renderstate.web.django.RenderStateMiddleware",
]

ROOT_URLCONF = "exportsite.urls"
WSGI_APPLICATION = "exportsite.wsgi.application"

DATABASES = {
    "default": database_from_url(
        os.environ.get("EXPORTSITE_DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

MEDIA_ROOT = Path(os.environ.get("EXPORTSITE_MEDIA_ROOT", BASE_DIR / "media")).resolve()
MEDIA_URL = "/media/"

# The JSON API's bodies are small: a larger one is refused (413) before it is read, from its
# Content-Length. Django's WSGI handler reads no body that comes without one (chunked).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

USE_TZ = True
TIME_ZONE = "UTC"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"renderstate": {"handlers": ["console"], "level": "INFO"}},
}
