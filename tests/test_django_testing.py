"""renderstate.django_testing.RenderJobsRunner: no render job outlives its test, by settings."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

TESTS = '''
import threading
import unittest

from renderstate import RenderRunner
from renderstate.testing import FakeRenderer, MemoryAdapter, MemoryProject

STARTED = {}


class Exports(unittest.TestCase):
    """The first test starts a slow render in a thread and ends; the second looks at it."""

    def test_1_starts_a_render(self):
        runner = RenderRunner(MemoryAdapter(), FakeRenderer(frames=400, frame_delay=0.05),
                              media_root=MEDIA, max_workers=1)
        STARTED["runner"] = runner  # the app's runner lives as long as the process
        STARTED["job"] = runner.submit(MemoryProject(id=1))

    def test_2_finds_it_ended(self):
        job = STARTED["job"]
        print("JOB", job.done(), job.status, type(job.error).__name__, flush=True)
        self.assertTrue(job.done(), "the first test's render outlived it")
'''


@pytest.mark.parametrize("switched", [True, False])
def test_a_render_started_by_one_test_is_stopped_before_the_next(
    tmp_path: Path, switched: bool
) -> None:
    """With TEST_RUNNER set, the render a test left running is cancelled when it ends (the
    next test finds it FAILED as cancelled); with Django's own runner it is still running."""
    runner = "renderstate.django_testing.RenderJobsRunner" if switched else None
    (tmp_path / "exports_settings.py").write_text(
        textwrap.dedent(f"""
        SECRET_KEY = "t"
        DATABASES = {{}}
        INSTALLED_APPS = []
        {"TEST_RUNNER = " + repr(runner) if runner else ""}
        """)
    )
    (tmp_path / "test_exports.py").write_text(f"MEDIA = {str(tmp_path / 'media')!r}\n" + TESTS)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{SRC}"}
    env.pop("RENDERSTATE_IMMEDIATE", None)
    done = subprocess.run(
        [sys.executable, "-m", "django", "test", "test_exports", "--settings=exports_settings"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if switched:
        assert done.returncode == 0, done.stderr
        assert "JOB True FAILED RenderCancelledError" in done.stdout
    else:
        assert done.returncode != 0
        assert "the first test's render outlived it" in done.stderr
