"""Child process of the sweep-turn test: one worker process's sweeper, on the command line's store.

Usage:
    python sweep_child.py URL LEASE SECONDS

Runs the Celery integration's :class:`Sweeper` (every half lease, in turn with the other
processes) for SECONDS, counting the sweep's query (the SELECT of the live attempts that
missed a renewal) as this process sends it, and prints one JSON line: that count, the
attempts it sent again, and the wall-clock times it started and stopped sweeping.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from sqlalchemy import event

from renderstate import RenderRunner
from renderstate.cli._store import Project, Store
from renderstate.ledger import Ledger
from renderstate.runner import JobSpec
from renderstate.runner._requeuing import Sweeper
from renderstate.testing import FakeRenderer


def main(url: str, lease: str, seconds: str) -> None:
    store = Store(url)
    queries: list[float] = []
    sent: list[int | None] = []

    def counted(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split())
        if text.startswith("SELECT") and "lease_expires_at <" in text:
            queries.append(time.time())

    event.listen(store.engine, "before_cursor_execute", counted)
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        FakeRenderer(frames=2),
        media_root="media",
        ledger=Ledger(store.ledger.store, lease=float(lease)),
        loader=store.loader,
    )

    def send(spec: JobSpec, route: str) -> None:
        sent.append(spec.attempt_id)

    sweeper = Sweeper(lambda: runner, "celery", send)
    began = time.time()
    sweeper.start()
    time.sleep(float(seconds))
    sweeper.stop()
    ended = time.time()
    print(json.dumps({"queries": queries, "sent": sent, "began": began, "ended": ended}))
    store.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
