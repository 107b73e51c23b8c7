"""The command line's modules: one command family each, small, importable in any order."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import renderstate.cli

MODULES = sorted(name for _, name, _ in pkgutil.iter_modules(renderstate.cli.__path__))
PACKAGE = Path(renderstate.cli.__file__).parent


def test_the_commands_are_split_by_family() -> None:
    """Each command family has a module of its own beside the dispatcher."""
    assert {"_commands", "_demo", "_render", "_show", "_recover"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_each_module_stays_small(name: str) -> None:
    """No module of the command line passes ~400 lines (it would hold more than one concern)."""
    lines = (PACKAGE / f"{name}.py").read_text("utf-8").count("\n")
    assert lines <= 400, f"renderstate/cli/{name}.py has {lines} lines"


@pytest.mark.parametrize("name", MODULES)
def test_each_module_imports_first(name: str) -> None:
    """Importing any module of the command line first, in a fresh interpreter, meets no cycle."""
    run = subprocess.run(
        [sys.executable, "-c", f"import renderstate.cli.{name}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
