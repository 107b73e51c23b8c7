"""A Django test runner under which no render job outlives its test: a switch in settings.

``TEST_RUNNER = "renderstate.django_testing.RenderJobsRunner"`` in the settings that
``manage.py test`` reads does for every test of the suite what
:class:`~renderstate.testing.RenderJobsMixin` does for the test cases it is mixed into,
without changing a test: after each test (before Django rolls its transaction back), every
unfinished render job of every runner in the process is cancelled and waited for
(:func:`~renderstate.testing.stop_all_jobs`), and once more before the test databases are
destroyed. A job started by a request in one test never renders into the next test's
rows, and never reaches the developer's own database after the test database is gone.
"""

from __future__ import annotations

from typing import Any

try:
    from django.test.runner import DiscoverRunner
    from django.test.utils import iter_test_cases  # type: ignore[attr-defined]
except ImportError as exc:  # pragma: no cover - the tests run with Django installed
    msg = "renderstate.django_testing needs Django: pip install 'renderstate[django]'"
    raise ImportError(msg) from exc

from renderstate.testing import stop_all_jobs

__all__ = ["RenderJobsRunner"]


class RenderJobsRunner(DiscoverRunner):
    """Django's ``DiscoverRunner``, stopping every render job after each test.

    Set ``render_jobs_timeout`` on a subclass to wait longer than 60 seconds for the
    cancelled jobs (a render stops at its next progress report).
    """

    render_jobs_timeout: float | None = 60.0
    """Seconds to wait for the cancelled jobs after each test."""

    def build_suite(self, *args: Any, **kwargs: Any) -> Any:
        """Django's suite, each test of it stopping the render jobs after its tear-down."""
        suite = super().build_suite(*args, **kwargs)
        for test in iter_test_cases(suite):
            test.addCleanup(stop_all_jobs, timeout=self.render_jobs_timeout)
        return suite

    def teardown_databases(self, old_config: Any, **kwargs: Any) -> None:
        """Stop the jobs still running, then destroy the test databases."""
        stop_all_jobs(timeout=self.render_jobs_timeout)
        super().teardown_databases(old_config, **kwargs)
