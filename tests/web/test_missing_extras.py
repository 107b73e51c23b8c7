"""A web helper whose framework is missing says which extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "blocked", "command"),
    [
        ("renderstate.web.django", "django", "pip install 'renderstate[django]'"),
        ("renderstate.web.fastapi", "starlette", "pip install 'renderstate[web]'"),
        ("renderstate.web.flask", "flask", "pip install 'renderstate[web]'"),
        ("renderstate.web.drf", "rest_framework", "pip install 'renderstate[drf]'"),
    ],
)
def test_import_error_quotes_the_install_command(module: str, blocked: str, command: str) -> None:
    """Importing the helper without its framework raises ImportError naming the extra."""
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        f"try:\n    import {module}\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert command in out


def test_the_web_package_itself_needs_no_framework() -> None:
    """renderstate.web (problem details) imports without any web framework or moviepy."""
    code = (
        "import sys\n"
        "for name in ('django', 'flask', 'starlette', 'fastapi', 'moviepy'):\n"
        "    sys.modules[name] = None\n"
        "import renderstate.web\nprint('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
