"""The public surface: exported names, version, and what importing renderstate costs."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import renderstate
import renderstate.exceptions


def test_all_is_exactly_the_public_names() -> None:
    """__all__ lists every public name of the facade and nothing else, alphabetised."""
    public = {n for n in vars(renderstate) if not n.startswith("_")} - {
        "annotations",
        "version",
        "PackageNotFoundError",
        "adapters",
        "cli",
        "exceptions",
        "files",
        "ledger",
        "recovery",
        "rendering",
        "runner",
        "typing",
        "telemetry",
        "testing",
        "web",
    }
    assert set(renderstate.__all__) - {"__version__"} == public
    assert renderstate.__all__ == sorted(renderstate.__all__, key=lambda n: (n.upper() != n, n))


def test_every_exception_is_exported_at_top_level() -> None:
    """The exception tree is importable from renderstate and renderstate.exceptions alike."""
    for name in renderstate.exceptions.__all__:
        assert getattr(renderstate, name) is getattr(renderstate.exceptions, name)
        assert issubclass(getattr(renderstate, name), renderstate.RenderStateError)
        assert name.endswith("Error")


def test_version_comes_from_the_package_metadata() -> None:
    """__version__ is the installed distribution's version."""
    assert renderstate.__version__ == importlib.metadata.version("renderstate")


def test_importing_renderstate_imports_no_optional_package() -> None:
    """A web process that only reads a status pays for nothing optional."""
    optional = [
        "django",
        "sqlalchemy",
        "peewee",
        "moviepy",
        "celery",
        "redis",
        "rich",
        "numpy",
        "PIL",
        "imageio",
        "imageio_ffmpeg",
        "proglog",
        "flask",
        "fastapi",
        "psycopg",
        "pymysql",
        "opentelemetry",  # imported on a render's first event, not with renderstate
    ]
    code = (
        "import json, sys, renderstate, renderstate.adapters.memory, renderstate.testing, "
        "renderstate.typing; print(json.dumps(sorted(sys.modules)))"
    )
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)))
    assert loaded.isdisjoint(optional), loaded & set(optional)
    assert "transitions" in loaded
