"""What a fleet's sweeps cost the database: in turn (now) against every process (before).

Run from the project root::

    .venv/bin/python benchmarks/bench_sweeps.py [--backend postgres] [--processes 8]
        [--seconds 20] [--lease 4] [--modes turn,every]

``--processes`` idle worker processes (forked, each with its own engine over the command
line's store, on a fresh database) sweep for ``--seconds``, with a ``--lease`` second lease
(so a sweep interval of half that). ``turn`` runs the Celery integration's ``Sweeper``: the
fleet's sweep turn is claimed before each sweep (idle workers: one small ``UPDATE`` each);
``every`` runs the loop every process ran before, ``runner.sweep()`` every interval times a
random 0.5 to 1. Reported per mode: the sweep queries (the ``SELECT`` of the live attempts
that missed a renewal) per interval over the whole fleet, and the fleet's statements and
transactions per second (what SQLAlchemy's ``before_cursor_execute`` and ``commit`` events
see: BEGIN and COMMIT are not statements).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import event  # noqa: E402

from adapters.databases import BACKENDS, Target, create, drop  # noqa: E402
from renderstate import RenderRunner  # noqa: E402
from renderstate.cli._store import Project, Store  # noqa: E402
from renderstate.ledger import Ledger  # noqa: E402
from renderstate.runner import JobSpec  # noqa: E402
from renderstate.runner._requeuing import Sweeper  # noqa: E402
from renderstate.testing import FakeRenderer  # noqa: E402


@contextlib.contextmanager
def database(backend: str) -> Iterator[Target]:
    with tempfile.TemporaryDirectory() as tmp:
        target = create(backend, Path(tmp), "bench")
        try:
            yield target
        finally:
            drop(target)


def worker(  # noqa: PLR0917 - a process target's arguments
    url: str, mode: str, lease: float, start_at: float, seconds: float, out: Any
) -> None:
    """One idle worker process: sweep for ``seconds`` from ``start_at``; report its counts."""
    store = Store(url)
    counts = {"queries": 0, "statements": 0, "commits": 0}

    def executed(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        counts["statements"] += 1
        text = " ".join(statement.split())
        if text.startswith("SELECT") and "lease_expires_at <" in text:
            counts["queries"] += 1

    def committed(connection: Any) -> None:
        counts["commits"] += 1

    event.listen(store.engine, "before_cursor_execute", executed)
    event.listen(store.engine, "commit", committed)
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        FakeRenderer(),
        media_root="media",
        ledger=Ledger(store.ledger.store, lease=lease),
        loader=store.loader,
    )

    def send(spec: JobSpec, route: str) -> None:
        pass

    time.sleep(max(0.0, start_at - time.time()))
    if mode == "turn":
        sweeper = Sweeper(lambda: runner, "celery", send)
        sweeper.start()
        time.sleep(seconds)
        sweeper.stop()
    else:  # the loop before the turn: every process sweeps every interval
        stopped = threading.Event()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            runner.sweep("celery", send)
            stopped.wait(lease / 2 * random.uniform(0.5, 1.0))
    out.put(dict(counts))
    runner.shutdown()
    store.close()


def measure(target: Target, mode: str, args: argparse.Namespace) -> dict[str, float]:
    Store(target.sqlalchemy_url()).close()  # the tables, made once
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    start_at = time.time() + 2.0
    processes = [
        context.Process(
            target=worker,
            args=(target.sqlalchemy_url(), mode, args.lease, start_at, args.seconds, out),
        )
        for _ in range(args.processes)
    ]
    for process in processes:
        process.start()
    reports = [out.get(timeout=args.seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    intervals = args.seconds / (args.lease / 2)
    return {
        "queries per interval": sum(r["queries"] for r in reports) / intervals,
        "statements/s": sum(r["statements"] for r in reports) / args.seconds,
        "transactions/s": sum(r["commits"] for r in reports) / args.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgres", choices=BACKENDS)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--lease", type=float, default=4.0)
    parser.add_argument("--modes", default="turn,every")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(
        f"{args.processes} idle worker processes on {args.backend}, {args.seconds:g} s, "
        f"lease {args.lease:g} s (a sweep interval of {args.lease / 2:g} s)"
    )
    print("| sweeps | sweep queries per interval | statements/s | transactions/s |")
    print("|---|---:|---:|---:|")
    for mode in args.modes.split(","):
        with database(args.backend) as target:
            found = measure(target, mode, args)
        label = "in turn (now)" if mode == "turn" else "every process (before)"
        print(
            f"| {label} | {found['queries per interval']:.2f} | {found['statements/s']:.1f} "
            f"| {found['transactions/s']:.1f} |"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
