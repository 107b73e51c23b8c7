"""A pytest plugin for an app's test suite: no render job outlives a test.

Enable it in the app's ``conftest.py``::

    pytest_plugins = ["renderstate.pytest_plugin"]

Then, after every test, every unfinished render job of every runner in the process is
cancelled and waited for (:func:`renderstate.testing.stop_all_jobs`), before pytest-django
rolls back or destroys the test database. A test that asks for the ``immediate_renders``
fixture renders in the submitting thread: ``submit()`` returns once the render has ended.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from renderstate.testing import immediate_renders as _immediate_renders
from renderstate.testing import stop_all_jobs

__all__ = ["immediate_renders", "render_jobs"]


@pytest.fixture(autouse=True)
def render_jobs() -> Iterator[None]:
    """After the test, stop every unfinished render job of the process (autouse)."""
    yield
    stop_all_jobs(timeout=60.0)


@pytest.fixture
def immediate_renders() -> Iterator[None]:
    """During the test, every runner renders in the submitting thread."""
    with _immediate_renders():
        yield
