"""The attempt ledger's cost per render, for each ORM's store, on SQLite, PostgreSQL and MariaDB.

Run from the project root (PostgreSQL and MariaDB as in docs/benchmarks.md)::

    .venv/bin/python benchmarks/bench_ledger_stores.py [--rounds 200] [--backends sqlite ...]

Per store and database it reports, for one render's database work, side by side:

- without a ledger: ``start_render()`` + ``complete()`` (the adapter's two conditional
  UPDATEs, each its own transaction);
- with a ledger: ``Ledger.start()`` (guarded UPDATE + attempt INSERT + live-attempt SELECT in
  one transaction), ``begin()``, one ``heartbeat()`` with progress, and the fenced
  ``complete()`` (attempt UPDATE + project UPDATE in one transaction);

the data statements each run executes (SELECT/INSERT/UPDATE, as the harness captures them;
BEGIN/COMMIT/SAVEPOINT not counted) and the median latency, with the ratio. A heartbeat alone
is one UPDATE by primary key; its median is reported too (a 60 s render with the default
1 s progress interval costs about 60 of them).

The harnesses of ``tests/ledger`` (built on ``tests/adapters``) are reused, so the models,
tables and stores are the tested ones.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from adapters.databases import BACKENDS, Target, create, drop  # noqa: E402
from renderstate import Status  # noqa: E402
from renderstate.ledger import Ledger  # noqa: E402

PATH = "projects/bench/final.mp4"
DATA = ("SELECT", "INSERT", "UPDATE", "DELETE")
PROGRESS = {"phase": "rendering", "done": 10, "total": 20, "fraction": 0.5}


def harnesses() -> dict[str, Any]:
    from ledger.test_django import DjangoLedgerHarness  # noqa: PLC0415
    from ledger.test_peewee import PeeweeLedgerHarness  # noqa: PLC0415
    from ledger.test_sqlalchemy import SQLAlchemyLedgerHarness  # noqa: PLC0415

    return {
        "sqlalchemy": SQLAlchemyLedgerHarness,
        "django": DjangoLedgerHarness,
        "peewee": PeeweeLedgerHarness,
    }


def data_statements(captured: list[str]) -> int:
    return sum(1 for sql in captured if sql.lstrip().split(" ", 1)[0].upper() in DATA)


def render_without(harness: Any, key: object) -> None:
    lifecycle = harness.lifecycle(harness.load(key))
    lifecycle.start_render()
    lifecycle.complete(PATH)


def render_with(harness: Any, ledger: Ledger, key: object) -> None:
    lifecycle = harness.lifecycle(harness.load(key))
    _, attempt = ledger.start(lifecycle, output_path=PATH)
    attempt = ledger.begin(attempt)
    ledger.heartbeat(attempt, PROGRESS)
    ledger.complete(lifecycle, attempt, PATH)


def measure(harness: Any, rounds: int) -> dict[str, float]:
    ledger = Ledger(harness.store())
    key = harness.insert(Status.COMPLETED, output=PATH)
    # What each run executes; the loads are outside the capture.
    lifecycle = harness.lifecycle(harness.load(key))
    with harness.capture() as plain:
        lifecycle.start_render()
        lifecycle.complete(PATH)
    lifecycle = harness.lifecycle(harness.load(key))
    with harness.capture() as fenced:
        _, attempt = ledger.start(lifecycle, output_path=PATH)
        attempt = ledger.begin(attempt)
        ledger.heartbeat(attempt, PROGRESS)
        ledger.complete(lifecycle, attempt, PATH)
    without: list[float] = []
    with_ledger: list[float] = []
    beats: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        render_without(harness, key)
        without.append(time.perf_counter() - began)
        lifecycle = harness.lifecycle(harness.load(key))
        began = time.perf_counter()
        _, attempt = ledger.start(lifecycle, output_path=PATH)
        attempt = ledger.begin(attempt)
        ledger.heartbeat(attempt, PROGRESS)
        ledger.complete(lifecycle, attempt, PATH)
        with_ledger.append(time.perf_counter() - began)
    lifecycle = harness.lifecycle(harness.load(key))
    _, attempt = ledger.start(lifecycle, output_path=PATH)
    attempt = ledger.begin(attempt)
    for _ in range(rounds):
        began = time.perf_counter()
        ledger.heartbeat(attempt, PROGRESS)
        beats.append(time.perf_counter() - began)
    ledger.complete(lifecycle, attempt, PATH)
    return {
        "plain_statements": data_statements(plain),
        "ledger_statements": data_statements(fenced),
        "plain_ms": statistics.median(without) * 1e3,
        "ledger_ms": statistics.median(with_ledger) * 1e3,
        "heartbeat_ms": statistics.median(beats) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        targets: dict[str, Target] = {}
        try:
            for backend in args.backends:
                targets[backend] = create(backend, Path(tmp), "bench")
            for name, harness_class in harnesses().items():
                for backend, target in targets.items():
                    harness = harness_class(target, variant=False)
                    harness.prepare()
                    m = measure(harness, args.rounds)
                    rows.append(
                        f"| {name} | {backend} | {m['plain_statements']:g} "
                        f"| {m['ledger_statements']:g} | {m['plain_ms']:.2f} "
                        f"| {m['ledger_ms']:.2f} | {m['ledger_ms'] / m['plain_ms']:.2f} "
                        f"| {m['heartbeat_ms']:.2f} |"
                    )
                    print(rows[-1], file=sys.stderr, flush=True)
                    harness.release()
        finally:
            for target in targets.values():
                drop(target)
    print(
        "| store | database | statements, no ledger | statements, ledger "
        "| render median, no ledger (ms) | render median, ledger (ms) | ratio "
        "| heartbeat median (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
