"""What the attempt ledger costs: statements and latency per transition, and progress writes.

Run from the project root (PostgreSQL and MariaDB as in docs/benchmarks.md)::

    .venv/bin/python benchmarks/bench_ledger.py [--rounds 200] [--render-seconds 60] [--fps 30]

Part 1, per database (SQLite file, PostgreSQL, MariaDB), through the SQLAlchemy adapter and
store: SQL statements sent per start and per complete, without and with a ledger (BEGIN and
COMMIT are not statements the driver sees; the count is what ``before_cursor_execute``
sees), and the median latency of start + complete, interleaved rounds, as a ratio.

Part 2, on a SQLite file: a render of ``--render-seconds`` at ``--fps`` frames a second
through ``RenderRunner`` with a ledger (a FakeRenderer reporting every frame in real time),
counting the ledger's UPDATEs: progress writes plus lease renewals, against the frame count.
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

from sqlalchemy import event  # noqa: E402

from adapters.databases import BACKENDS, Target, create, drop  # noqa: E402
from renderstate import ProjectLifecycle, RenderRunner  # noqa: E402
from renderstate.cli._store import ATTEMPTS, Store  # noqa: E402
from renderstate.ledger import Ledger  # noqa: E402
from renderstate.testing import FakeRenderer  # noqa: E402

PATH = "projects/bench/final.mp4"


class Counter:
    def __init__(self, store: Store) -> None:
        self.statements: list[str] = []
        event.listen(store.engine, "before_cursor_execute", self._record)

    def _record(self, *args: Any) -> None:
        self.statements.append(args[2])

    def take(self) -> list[str]:
        taken, self.statements = self.statements, []
        return taken


def cycle(store: Store, ledger: Ledger | None) -> None:
    project = store.create("bench", {})
    lifecycle = ProjectLifecycle(project, store.adapter)
    if ledger is None:
        lifecycle.start_render()
        lifecycle.complete(PATH)
    else:
        _, attempt = ledger.start(lifecycle)
        ledger.complete(lifecycle, attempt, PATH)


def statements(store: Store, counter: Counter, ledger: Ledger | None) -> tuple[int, int]:
    project = store.create("count", {})
    lifecycle = ProjectLifecycle(project, store.adapter)
    counter.take()
    if ledger is None:
        lifecycle.start_render()
        started = len(counter.take())
        lifecycle.complete(PATH)
    else:
        _, attempt = ledger.start(lifecycle)
        started = len(counter.take())
        ledger.complete(lifecycle, attempt, PATH)
    return started, len(counter.take())


def part1(target: Target, rounds: int) -> list[str]:
    store = Store(target.sqlalchemy_url())
    ledger = store.ledger
    counter = Counter(store)
    plain_counts = statements(store, counter, None)
    ledger_counts = statements(store, counter, ledger)
    plain: list[float] = []
    with_ledger: list[float] = []
    for _ in range(rounds):
        for sink, used in ((plain, None), (with_ledger, ledger)):
            start = time.perf_counter()
            cycle(store, used)
            sink.append(time.perf_counter() - start)
    store.close()
    # Project creation is inside each timed cycle on both sides; it is the same INSERT.
    p, w = statistics.median(plain) * 1e3, statistics.median(with_ledger) * 1e3
    row = (
        f"| {target.backend} | {plain_counts[0]} + {plain_counts[1]} "
        f"| {ledger_counts[0]} + {ledger_counts[1]} | {p:.2f} ms | {w:.2f} ms | {w / p:.2f}x |"
    )
    return [row]


def part2(seconds: float, fps: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'db.sqlite3'}")
        writes: list[str] = []

        def record(*args: Any) -> None:
            if args[2].lstrip().upper().startswith("UPDATE " + ATTEMPTS.name.upper()):
                writes.append(args[2])

        event.listen(store.engine, "before_cursor_execute", record)
        frames = int(seconds * fps)
        runner = RenderRunner(
            store.adapter,
            FakeRenderer(frames=frames, frame_delay=1 / fps),
            media_root=Path(tmp) / "media",
            ledger=store.ledger,
            loader=store.loader,
        )
        started = time.perf_counter()
        runner.submit(store.create("progress", {})).wait()
        took = time.perf_counter() - started
        runner.shutdown()
        store.close()
    return (
        f"| {took:.1f} s at {fps} fps | {frames} | {len(writes)} "
        f"| {len(writes) / took:.2f} per second |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--render-seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    print("Part 1: statements (start + complete) and median latency of a cycle")
    print("| database | without ledger | with ledger | without | with | ratio |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in BACKENDS:
            try:
                target = create(backend, Path(tmp), "bench")
            except Exception as exc:
                print(f"| {backend} | unreachable: {exc} |")
                continue
            try:
                for line in part1(target, args.rounds):
                    print(line, flush=True)
            finally:
                drop(target)
    print()
    print("Part 2: ledger UPDATEs (progress + lease renewals) during one render")
    print("| render | frames reported | ledger UPDATEs | rate |")
    print("|---|---|---|---|")
    print(part2(args.render_seconds, args.fps), flush=True)


if __name__ == "__main__":
    main()
