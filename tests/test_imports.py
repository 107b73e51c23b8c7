"""Import order: every core module imports cleanly whichever module a process imports first.

A circle among the core modules bites only on some import orders, so each module is
imported first in a fresh interpreter: once through the package (``import renderstate._x``,
which runs the facade first), and once with the facade left out, so that the module's own
imports are the first to run.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import renderstate

# The domain at the package root: the private core modules, the Protocols and the errors.
CORE = sorted(
    name
    for _, name, is_package in pkgutil.iter_modules(renderstate.__path__)
    if not is_package
    and (name in ("typing", "exceptions") or (name.startswith("_") and not name.startswith("__")))
)

# Puts an empty package in place of renderstate's __init__, so `import renderstate.<name>`
# runs that module first.
WITHOUT_FACADE = (
    "import importlib.util, sys, types\n"
    "package = types.ModuleType('renderstate')\n"
    "package.__path__ = importlib.util.find_spec('renderstate').submodule_search_locations\n"
    "sys.modules['renderstate'] = package\n"
)


def test_the_core_modules_are_found() -> None:
    assert {"_jobs", "_lifecycle", "_paths", "typing"} <= set(CORE)


@pytest.mark.parametrize("name", CORE)
@pytest.mark.parametrize("preamble", ["", WITHOUT_FACADE], ids=["through-facade", "first"])
def test_each_core_module_imports_first(name: str, preamble: str) -> None:
    code = f"{preamble}import renderstate.{name}\n"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert run.returncode == 0, run.stderr
