"""The fleet's sweep turn with real processes on SQLite, PostgreSQL and MariaDB: of K worker
processes sweeping at once, over several intervals, one sweeps per interval in all (the
sweep's query is counted in each process), and a dead worker's render is still sent again
exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from renderstate import ProjectLifecycle
from renderstate.cli._store import Store
from renderstate.ledger import Ledger

from .cli_stores import db_targets, store, url

__all__ = ["db_targets", "store", "url"]

CHILD = Path(__file__).with_name("sweep_child.py")
LEASE = 2.0
INTERVAL = LEASE / 2
PROCESSES = 4
SECONDS = 8.0

pytestmark = pytest.mark.slow


def test_k_processes_run_one_sweep_query_per_interval_and_requeue_once(
    url: str, store: Store
) -> None:
    """Four processes sweep for eight intervals: the sweep's query runs at most once per
    interval in all (without the turn each would run it every half to whole interval, about
    five times as often), at least twice, and the one attempt whose worker died (on another
    machine, its lease expired) is sent again by exactly one of them."""
    ledger = Ledger(store.ledger.store, lease=LEASE)
    project = store.create("orphan", {"width": 8, "height": 8})
    _, attempt = ledger.start(ProjectLifecycle(project, store.adapter))
    assert ledger.hand_off(attempt, executor="celery")
    ledger.begin(attempt, worker="elsewhere.example:4242")
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), url, str(LEASE), str(SECONDS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    reports = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    queries = sorted(t for report in reports for t in report["queries"])
    assert len(queries) >= 2
    window = queries[-1] - queries[0]
    # Each query follows a turn won, and a turn excludes every other for an interval on
    # the database's clock: a window holds at most one more turn than it has intervals
    # (and one for the few milliseconds between a claim and its query).
    assert len(queries) <= window / INTERVAL + 2, (len(queries), window)
    assert sum(len(r["queries"]) > 0 for r in reports) >= 1
    # The database may hold other tests' attempts, which the sweeps take over too.
    sent = [a for report in reports for a in report["sent"]]
    assert sent.count(attempt.id) == 1
