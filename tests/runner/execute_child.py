"""Child process of the jobs-as-data tests: a worker that received a job spec.

Usage:
    python execute_child.py URL MEDIA SPEC_JSON

Runs ``RenderRunner.execute(JobSpec.from_dict(json.loads(SPEC_JSON)))`` on the command
line's SQLAlchemy store and prints the job's status and error type as JSON.
"""

from __future__ import annotations

import json
import os
import sys

from renderstate import RenderRunner
from renderstate.cli._store import Project, Store
from renderstate.runner import JobSpec
from renderstate.testing import FakeRenderer


def main(url: str, media: str, spec: str) -> None:
    store = Store(url)
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        FakeRenderer(frames=5),
        media_root=media,
        ledger=store.ledger,
        loader=store.loader,
    )
    job = runner.execute(JobSpec.from_dict(json.loads(spec)))
    runner.shutdown()
    store.close()
    error = None if job.error is None else type(job.error).__name__
    status = None if job.status is None else job.status.value
    print(json.dumps({"status": status, "error": error, "pid": os.getpid()}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
