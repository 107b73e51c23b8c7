"""Shared test configuration: Hypothesis profiles and the CI rule that a skip is a failure."""

from __future__ import annotations

import compileall
import importlib.util
import os
import signal
from collections.abc import Generator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "dev"))

# The Ctrl-C tests send real SIGINTs, to this process and to children. A run started in the
# background by a non-interactive shell (`cmd &`, a CI runner's step) inherits SIGINT
# ignored, and Python then installs no handler: no KeyboardInterrupt ever comes. Restore
# Python's own handler; children then start with SIGINT at its default, as in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    """Sort the tests longest first (:class:`LongestFirst`, in every process that collects);
    compile renderstate and the tests' helper modules once, before any child starts.

    The suite starts hundreds of Python processes (crash-point children, command lines,
    workers); they run without writing bytecode (a write is a rename: a crash point of its
    own), and where ``PYTHONDONTWRITEBYTECODE`` is set for everything, as on CI, no process
    ever wrote it, so each one compiled renderstate from source again. Written once here
    (in the controller, before the xdist workers start), every process reads it.
    """
    config.pluginmanager.register(LongestFirst(), "renderstate-longest-first")
    if hasattr(config, "workerinput"):
        return
    spec = importlib.util.find_spec("renderstate")
    packages = list(spec.submodule_search_locations or []) if spec is not None else []
    for directory in [*packages, str(Path(__file__).parent)]:
        compileall.compile_dir(directory, quiet=2)


def _expected_length(item: pytest.Item) -> int:
    """0 for the longest tests (a timeout of their own above the suite's: the crash sweeps),
    1 for the slow ones (real video, processes, servers), 2 for the rest."""
    own = item.get_closest_marker("timeout")
    if own is not None and own.args and float(own.args[0]) > float(item.config.getini("timeout")):
        return 0
    return 1 if item.get_closest_marker("slow") is not None else 2


class LongestFirst:
    """Orders the tests longest first, so that no worker ends the run alone with a long one.

    xdist hands the tests out in this order, one at a time (``--maxschedchunk=1`` in
    pyproject.toml), so each worker takes the next longest as it becomes free. Runs after
    pytest's own reordering by fixture (``trylast``); the sort is stable, so within a length
    the tests keep the order pytest gave them.
    """

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items.sort(key=_expected_length)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI=true a skipped test fails the run: every integration must really be tested."""
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
    return report


@pytest.fixture
def no_earlier_jobs() -> None:
    """Stop the jobs earlier tests of this process left waiting or running.

    ``stop_all_jobs()`` reaches every job of the process, so a test that counts what it
    stops would count a job an earlier test on the same xdist worker left in an executor
    still alive (a full run saw 3 for 2); stopped here, the count is the test's own.
    """
    from renderstate.testing import stop_all_jobs  # noqa: PLC0415 - renderstate on use

    stop_all_jobs(timeout=60)
