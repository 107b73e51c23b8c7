"""What the attempt ledger costs: statements and latency per render, and writes while it runs.

Run from the project root (PostgreSQL and MariaDB as in docs/benchmarks.md)::

    .venv/bin/python benchmarks/bench_ledger.py [--parts cycle,stores,progress] [--rounds 200]
        [--backends sqlite postgres mariadb] [--stores sqlalchemy django peewee]
        [--render-seconds 60] [--fps 30]

Each part prints one Markdown table; without and with a ledger run in turn in every round
(``--rounds``), and each column is the median.

``cycle``, per database, through the command line's store (the SQLAlchemy adapter and
store, its model): SQL statements sent per start and per complete, without and with a
ledger (BEGIN and COMMIT are not statements the driver sees; the count is what
``before_cursor_execute`` sees), and the median latency of create + start + complete, as a
ratio, with the spread of the per-round ratios (p10-p90; the sides rotate which runs first)
and the machine's load average before and after. Three ledgers side by side: "before
issue 22" is the same store with its one-statement insert and its folded writes hidden, so
the ledger starts as it did before issue 22 (``INSERT`` then a ``SELECT`` of the live
attempts; 3 + 2); "unfolded" hides only the folded writes (the attempt's own ``INSERT ...
RETURNING`` and ``UPDATE``; 2 + 2); "now" is the store as it is (on PostgreSQL 1 + 1, on
MariaDB the start's two statements in one round trip and a one-statement completion).
To time the code of another commit, run this script with ``PYTHONPATH`` set to that
commit's ``src``.

``stores``, per ORM's store and database, one render's database work side by side:

- without a ledger: ``start_render()`` + ``complete()`` (the adapter's two conditional
  UPDATEs, each its own transaction);
- with a ledger: ``Ledger.start()`` (guarded UPDATE + attempt INSERT + live-attempt SELECT in
  one transaction), ``begin()``, one ``heartbeat()`` with progress, and the fenced
  ``complete()`` (attempt UPDATE + project UPDATE in one transaction);

the data statements each executes (SELECT/INSERT/UPDATE, as the harness captures them;
BEGIN/COMMIT/SAVEPOINT not counted) and the median latency, with the ratio. A heartbeat alone
is one UPDATE by primary key; its median is reported too (a 60 s render with the default
1 s progress interval costs about 60 of them). The harnesses of ``tests/ledger`` (built on
``tests/adapters``) are reused, so the models, tables and stores are the tested ones.

``progress``, on a SQLite file: a render of ``--render-seconds`` at ``--fps`` frames a second
through ``RenderRunner`` with a ledger (a FakeRenderer reporting every frame in real time),
counting the ledger's UPDATEs: progress writes plus lease renewals, against the frame count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import event  # noqa: E402

from adapters.databases import BACKENDS, Target, create, drop  # noqa: E402
from renderstate import ProjectLifecycle, RenderRunner, Status  # noqa: E402
from renderstate.cli._store import ATTEMPTS, Store  # noqa: E402
from renderstate.ledger import Ledger  # noqa: E402
from renderstate.testing import FakeRenderer  # noqa: E402

PATH = "projects/bench/final.mp4"
DATA = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")  # WITH: a folded write
PROGRESS = {"phase": "rendering", "done": 10, "total": 20, "fraction": 0.5}
STORES = ("sqlalchemy", "django", "peewee")


# ---------------------------------------------------------------- shared
@contextmanager
def databases(backends: list[str]) -> Iterator[dict[str, Target]]:
    """A fresh database on each reachable backend, dropped afterwards; a table row for the rest."""
    with tempfile.TemporaryDirectory() as tmp:
        targets: dict[str, Target] = {}
        try:
            for backend in backends:
                try:
                    targets[backend] = create(backend, Path(tmp), "bench")
                except Exception as exc:
                    print(f"| {backend} | unreachable: {exc} |", flush=True)
            yield targets
        finally:
            for target in targets.values():
                drop(target)


def timed(call: Callable[[], object]) -> float:
    """Seconds ``call`` takes."""
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def medians_ms(rounds: int, *contenders: Callable[[], float]) -> list[float]:
    """Each contender's median in ms; every round runs them in turn (each times itself)."""
    samples: list[list[float]] = [[] for _ in contenders]
    for _ in range(rounds):
        for sample, contender in zip(samples, contenders, strict=True):
            sample.append(contender())
    return [statistics.median(sample) * 1e3 for sample in samples]


def nothing() -> None:
    """No step between two others."""


# ---------------------------------------------------------------- cycle
class Counter:
    def __init__(self, store: Store) -> None:
        self.statements: list[str] = []
        event.listen(store.engine, "before_cursor_execute", self._record)

    def _record(self, *args: Any) -> None:
        self.statements.append(args[2])

    def take(self) -> list[str]:
        taken, self.statements = self.statements, []
        return taken


def cycle(
    store: Store,
    ledger: Ledger | None,
    after_create: Callable[[], object] = nothing,
    after_start: Callable[[], object] = nothing,
) -> None:
    """Create a project, start its render and complete it, with or without ``ledger``."""
    project = store.create("bench", {})
    lifecycle = ProjectLifecycle(project, store.adapter)
    after_create()
    if ledger is None:
        lifecycle.start_render()
        after_start()
        lifecycle.complete(PATH)
    else:
        _, attempt = ledger.start(lifecycle)
        after_start()
        ledger.complete(lifecycle, attempt, PATH)


def statements(store: Store, counter: Counter, ledger: Ledger | None) -> str:
    """The statements one start and one complete send, as ``start + complete``."""
    started: list[str] = []
    cycle(store, ledger, counter.take, lambda: started.extend(counter.take()))
    return f"{round_trips(started)} + {round_trips(counter.take())}"


def rotated(rounds: int, *contenders: Callable[[], float]) -> list[list[float]]:
    """Each contender's seconds per round; the order rotates, so none always runs first."""
    samples: list[list[float]] = [[] for _ in contenders]
    for n in range(rounds):
        for i in range(len(contenders)):
            k = (i + n) % len(contenders)
            samples[k].append(contenders[k]())
    return samples


def ratio_of(base: list[float], other: list[float]) -> str:
    """The ratio of the medians, and the per-round ratios' p10-p90."""
    ratios = sorted(o / b for b, o in zip(base, other, strict=True))
    median = statistics.median(other) / statistics.median(base)
    return f"{median:.2f}x ({ratios[len(ratios) // 10]:.2f}-{ratios[len(ratios) * 9 // 10]:.2f})"


class Hidden:
    """The store with some of its optional methods hidden, so the ledger works as it did
    without them; the rest is today's store."""

    def __init__(self, store: Any, *names: str) -> None:
        self._store = store
        self._hidden = frozenset(names)

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            raise AttributeError(name)
        return getattr(self._store, name)


def before_issue_22(store: Any) -> Hidden:
    """The start as before issue 22: ``insert`` then ``live``, and nothing folded (3 + 2)."""
    return Hidden(store, "insert_and_find_live", "ride_insert", "ride_update")


def unfolded(store: Any) -> Hidden:
    """The attempt's writes as statements of their own: the one-statement insert (2 + 2)."""
    return Hidden(store, "ride_insert", "ride_update")


def round_trips(statements: list[str]) -> str:
    """How many statements were sent, and in how many round trips where that differs."""
    trips = len(statements)
    sent = sum(1 + sql.count("; INSERT INTO") for sql in statements)
    return str(trips) if sent == trips else f"{sent} in {trips}"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


SIDES = ("before issue 22", "unfolded", "now")


def part_cycle(args: argparse.Namespace) -> None:
    print("Cycle: statements (start + complete) and median latency of a cycle; ratios to the")
    print("cycle without a ledger, as medians and (per-round p10-p90)")
    print(f"load average (1, 5, 15 min) before: {load()}")
    print(
        "| database | statements: without | "
        + " | ".join(SIDES)
        + " | without | "
        + " | ".join(SIDES)
        + " | "
        + " | ".join(f"ratio {side}" for side in SIDES)
        + " |"
    )
    print("|---" * (3 + 3 * len(SIDES)) + "|")
    with databases(args.backends) as targets:
        for target in targets.values():
            store = Store(target.sqlalchemy_url())
            ledger = store.ledger
            ledgers = [
                None,
                Ledger(before_issue_22(ledger.store)),
                Ledger(unfolded(ledger.store)),
                ledger,
            ]
            cycle(store, ledger)  # first use: what a store sets up once (its engine's hooks)
            counter = Counter(store)
            counts = [statements(store, counter, chosen) for chosen in ledgers]
            # Project creation is inside each timed cycle on all sides; it is the same INSERT.
            samples = rotated(
                args.rounds,
                *[
                    lambda store=store, chosen=chosen: timed(lambda: cycle(store, chosen))
                    for chosen in ledgers
                ],
            )
            store.close()
            ms = [f"{statistics.median(x) * 1e3:.2f} ms" for x in samples]
            ratios = [ratio_of(samples[0], other) for other in samples[1:]]
            print(
                f"| {target.backend} | {' | '.join(counts)} | {' | '.join(ms)} "
                f"| {' | '.join(ratios)} |",
                flush=True,
            )
    print(f"load average (1, 5, 15 min) after: {load()}")


# ---------------------------------------------------------------- stores
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


def render_without(lifecycle: Any) -> None:
    lifecycle.start_render()
    lifecycle.complete(PATH)


def render_with(ledger: Ledger, lifecycle: Any) -> None:
    _, attempt = ledger.start(lifecycle, output_path=PATH)
    attempt = ledger.begin(attempt)
    ledger.heartbeat(attempt, PROGRESS)
    ledger.complete(lifecycle, attempt, PATH)


def measure(harness: Any, rounds: int) -> dict[str, float]:
    ledger = Ledger(harness.store())
    key = harness.insert(Status.COMPLETED, output=PATH)

    def fresh() -> Any:
        return harness.lifecycle(harness.load(key))

    # What each run executes; the loads are outside the capture, and so is the store's
    # check of its table on first use (one warm-up render).
    render_with(ledger, fresh())
    lifecycle = fresh()
    with harness.capture() as plain:
        render_without(lifecycle)
    lifecycle = fresh()
    with harness.capture() as fenced:
        render_with(ledger, lifecycle)

    def with_ledger() -> float:
        lifecycle = fresh()  # the load is outside the timing here (inside it without)
        return timed(lambda: render_with(ledger, lifecycle))

    plain_ms, ledger_ms = medians_ms(
        rounds, lambda: timed(lambda: render_without(fresh())), with_ledger
    )
    lifecycle = fresh()
    _, attempt = ledger.start(lifecycle, output_path=PATH)
    attempt = ledger.begin(attempt)
    (heartbeat_ms,) = medians_ms(rounds, lambda: timed(lambda: ledger.heartbeat(attempt, PROGRESS)))
    ledger.complete(lifecycle, attempt, PATH)
    return {
        "plain_statements": data_statements(plain),
        "ledger_statements": data_statements(fenced),
        "plain_ms": plain_ms,
        "ledger_ms": ledger_ms,
        "heartbeat_ms": heartbeat_ms,
    }


def part_stores(args: argparse.Namespace) -> None:
    print("Stores: one render's statements and median latency, per store, and a heartbeat")
    print(
        "| store | database | statements, no ledger | statements, ledger "
        "| render median, no ledger (ms) | render median, ledger (ms) | ratio "
        "| heartbeat median (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with databases(args.backends) as targets:
        for name, harness_class in harnesses().items():
            if name not in args.stores:
                continue
            for backend, target in targets.items():
                harness = harness_class(target, variant=False)
                harness.prepare()
                m = measure(harness, args.rounds)
                print(
                    f"| {name} | {backend} | {m['plain_statements']:g} "
                    f"| {m['ledger_statements']:g} | {m['plain_ms']:.2f} "
                    f"| {m['ledger_ms']:.2f} | {m['ledger_ms'] / m['plain_ms']:.2f} "
                    f"| {m['heartbeat_ms']:.2f} |",
                    flush=True,
                )
                harness.release()


# ---------------------------------------------------------------- progress
def part_progress(args: argparse.Namespace) -> None:
    print("Progress: ledger UPDATEs (progress + lease renewals) during one render")
    print("| render | frames reported | ledger UPDATEs | rate |")
    print("|---|---|---|---|")
    seconds, fps = args.render_seconds, args.fps
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
        took = timed(lambda: runner.submit(store.create("progress", {})).wait())
        runner.shutdown()
        store.close()
    print(
        f"| {took:.1f} s at {fps} fps | {frames} | {len(writes)} "
        f"| {len(writes) / took:.2f} per second |",
        flush=True,
    )


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "cycle": part_cycle,
    "stores": part_stores,
    "progress": part_progress,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--rounds", type=int, default=200, help="rounds in cycle and stores")
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--stores", nargs="*", default=list(STORES), choices=STORES)
    parser.add_argument("--render-seconds", type=float, default=60.0, help="render in progress")
    parser.add_argument("--fps", type=int, default=30, help="frames a second in progress")
    args = parser.parse_args()
    parts = args.parts.split(",")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: no part {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    for name in parts:
        PARTS[name](args)
        print()


if __name__ == "__main__":
    main()
