"""The ledger's Django admin, through Django's test client, in a child ``manage.py test``.

The admin needs ``django.contrib.admin`` and its apps in a configured project; this
process's Django settings belong to other tests, so the site runs in a child process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from child_suites import child_path, run_suite


def test_the_admin_suite_passes(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ledger.adminsite.settings",
        "RENDERSTATE_TEST_ADMIN": json.dumps(
            {
                "database": str(tmp_path / "site.sqlite3"),
                "test_database": str(tmp_path / "test.sqlite3"),
                "media": str(tmp_path / "media"),
            }
        ),
        "PYTHONPATH": child_path(),
    }
    output = run_suite(
        ["-m", "django", "test", "ledger.adminsite", "-v", "2", "--noinput"],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert "Ran 13 tests" in output, output
    assert "\nOK\n" in output, output  # the failing renderer logs its tracebacks on purpose
