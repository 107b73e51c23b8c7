"""Run an app's own test suite (``manage.py test``, pytest) in a child process.

Django's settings and pytest's plugins are per process: a suite that configures its own
runs in a fresh interpreter, and the test reads what it printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
"""The tests directory: ``djangoapp`` and the other test apps import from it."""


def child_path(*first: Path) -> str:
    """A ``PYTHONPATH`` for the child: ``first``, the tests directory, then this one's."""
    return os.pathsep.join([*map(str, first), str(TESTS), *sys.path[1:]])


def run_suite(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run ``python *argv`` and return its output; fail the test, showing it, unless it passed."""
    run = subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    return output
