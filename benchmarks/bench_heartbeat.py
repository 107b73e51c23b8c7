"""What a worker's heartbeat costs the database: per worker (now) against per render (before).

Run from the project root (PostgreSQL as in docs/benchmarks.md)::

    .venv/bin/python benchmarks/bench_heartbeat.py [--parts twenty,fleet]
        [--backend postgres] [--window 20] [--rounds 2]
        [--processes 50] [--renders 1000] [--fleet-seconds 60] [--modes worker,render]
        [--fleet-rounds 3]

``twenty``: 20 renders at once in one process, through ``RenderRunner`` (20 threads) and
``FakeRenderer`` (30 frames a second, each reported), with the attempt ledger at its
defaults (30 s lease, 1 s progress interval). Once all 20 render, the engine's commits and
statements are counted over ``--window`` seconds. "Per render" is the same runner over the
same store with its ``renew`` hidden, so ``Ledger.renew`` falls back to one fenced
``UPDATE`` (one transaction) per render, and the heartbeat sends only the renders that are
due, as the heartbeat did before issue 19; "per worker" is the store as it ships. The two
modes alternate for ``--rounds`` rounds; the ratio is per worker / per render.

``fleet``: ``--renders`` renders over ``--processes`` worker processes (forked, each with
its own engine and one heartbeat over its share of the renders), whose fake renderer
reports a frame count that grows 30 a second. The parent starts and begins every attempt
(what the workers would have received), then each worker runs its heartbeat for
``--fleet-seconds`` from one shared moment plus a random part of a second (workers do not
tick in step). Reported: the
ledger's statements and transactions per second over the whole fleet, the worst and 99th
percentile gap between two renewals of one lease (from the moment the beats were added;
the lease is 30 s and the heartbeat renews a third of the way), the worst ``renew()``
call, and renewals that failed or were skipped. With ``--modes worker,render`` it runs the
per-render heartbeat too (it then sends one transaction per render per second); with
``--fleet-rounds`` the modes alternate for that many rounds, each row with the load average
and the PostgreSQL checkpoints forced while it ran (by anyone: every ``CREATE DATABASE`` or
``DROP DATABASE`` on the server forces one, and writes then wait on its I/O).

Counts are what SQLAlchemy's ``before_cursor_execute`` and ``commit`` events see: BEGIN and
COMMIT are not statements. The machine's load average is printed before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import psycopg  # noqa: E402
from sqlalchemy import create_engine, event  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from adapters.databases import BACKENDS, PG, Target, create, drop  # noqa: E402
from renderstate import ProjectLifecycle, RenderRunner  # noqa: E402
from renderstate.cli._store import ATTEMPTS, Store  # noqa: E402
from renderstate.ledger import (  # noqa: E402
    Attempt,
    AttemptState,
    Ledger,
    Renewal,
    RenewalOutcome,
    Renewed,
)
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore  # noqa: E402
from renderstate.runner import Phase  # noqa: E402
from renderstate.runner._heartbeat import Heartbeat  # noqa: E402
from renderstate.runner.progress import Progress  # noqa: E402
from renderstate.testing import FakeRenderer  # noqa: E402
from renderstate.typing import AttemptStore  # noqa: E402

FPS = 30
MODES = {"worker": "per worker (now)", "render": "per render (before)"}


class PerRender:
    """The store with its ``renew`` hidden: one fenced UPDATE per renewal, as before."""

    def __init__(self, inner: AttemptStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "renew":
            raise AttributeError(name)
        return getattr(self.inner, name)


def ledger_for(store: Store, mode: str) -> Ledger:
    inner = store.ledger.store
    return Ledger(inner if mode == "worker" else PerRender(inner))  # type: ignore[arg-type]


class Counts:
    """The statements and commits an engine sends, and how long the statements took."""

    def __init__(self, engine: Any) -> None:
        self.statements = 0
        self.commits = 0
        self.waited: list[float] = []
        """Each statement's seconds, from its send to its answer."""
        self._sent = 0.0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "after_cursor_execute", self._answered)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *args: Any) -> None:
        self.statements += 1
        self._sent = time.monotonic()

    def _answered(self, *args: Any) -> None:
        self.waited.append(time.monotonic() - self._sent)

    def _commit(self, *args: Any) -> None:
        self.commits += 1

    def take(self) -> tuple[int, int]:
        taken = (self.statements, self.commits)
        self.statements = self.commits = 0
        return taken


@contextlib.contextmanager
def database(backend: str) -> Iterator[Target]:
    with tempfile.TemporaryDirectory() as tmp:
        target = create(backend, Path(tmp), "bench")
        try:
            yield target
        finally:
            drop(target)


def load() -> str:
    """The load average, and on PostgreSQL the checkpoints asked for so far (a database
    created or dropped by anyone forces one, and every commit then waits on its writes)."""
    averages = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        with psycopg.connect(host=PG["host"], port=PG["port"], dbname=PG["dbname"]) as c:
            (forced,) = c.execute("SELECT checkpoints_req FROM pg_stat_bgwriter").fetchone()
    except Exception:  # no server: the load average alone
        return averages
    return f"{averages}; PostgreSQL checkpoints requested so far: {forced}"


# ---------------------------------------------------------------- twenty
def twenty_round(store: Store, counts: Counts, mode: str, window: float) -> tuple[float, float]:
    """Commits and statements a second while 20 renders run in one runner."""
    ledger = ledger_for(store, mode)
    frames = int((window + 15) * FPS)
    with tempfile.TemporaryDirectory() as media:
        runner = RenderRunner(
            store.adapter,
            FakeRenderer(frames=frames, frame_delay=1 / FPS),
            media_root=media,
            ledger=ledger,
            loader=store.loader,
            max_workers=20,
        )
        jobs = [runner.submit(store.create(f"r{i}", {})) for i in range(20)]
        deadline = time.monotonic() + 60
        while any(j.progress.phase is not Phase.RENDERING for j in jobs):
            if time.monotonic() > deadline:
                msg = "the 20 renders did not all begin within a minute"
                raise RuntimeError(msg)
            time.sleep(0.05)
        time.sleep(2)  # every render reported and is past its first write
        counts.take()
        began = time.monotonic()
        time.sleep(window)
        statements, commits = counts.take()
        took = time.monotonic() - began
        runner.shutdown(cancel_running=True)
    return commits / took, statements / took


def part_twenty(args: argparse.Namespace) -> None:
    print(f"20 renders at once in one process, {args.backend}, window {args.window:g} s")
    print(f"load average before: {load()}")
    samples: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    with database(args.backend) as target:
        store = Store(target.sqlalchemy_url())
        counts = Counts(store.engine)
        for round_ in range(args.rounds):
            order = list(MODES) if round_ % 2 == 0 else list(reversed(MODES))
            for mode in order:
                samples[mode].append(twenty_round(store, counts, mode, args.window))
                tx, st = samples[mode][-1]
                print(
                    f"  round {round_ + 1} {mode}: {tx:.2f} transactions/s, {st:.2f} statements/s"
                )
        store.close()
    print(f"load average after: {load()}")
    print()
    print("| heartbeat | transactions/s | statements/s |")
    print("|---|---:|---:|")
    medians = {}
    for mode, label in MODES.items():
        tx = statistics.median(s[0] for s in samples[mode])
        st = statistics.median(s[1] for s in samples[mode])
        medians[mode] = tx
        print(f"| {label} | {tx:.2f} | {st:.2f} |")
    print(f"| ratio | **{medians['worker'] / medians['render']:.3f}x** | |")
    print()


# ---------------------------------------------------------------- fleet
class Recording(Ledger):
    """A ledger that notes when each lease was renewed and how long each call took."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.renewed: dict[int, list[float]] = {}
        self.calls: list[float] = []
        self.skipped = 0
        self.failed = 0

    def renew(self, renewals: Sequence[Renewal]) -> list[Renewed]:
        began = time.monotonic()
        try:
            results = super().renew(renewals)
        except Exception:
            self.failed += 1
            raise
        ended = time.monotonic()
        self.calls.append(ended - began)
        for renewal, result in zip(renewals, results, strict=True):
            attempt_id = renewal.attempt if isinstance(renewal.attempt, int) else renewal.attempt.id
            if result.outcome is RenewalOutcome.RENEWED:
                self.renewed.setdefault(attempt_id, []).append(ended)
            elif result.outcome is RenewalOutcome.SKIPPED:
                self.skipped += 1
        return results


def fake_renderer(started: float) -> Callable[[], Progress]:
    """A render's progress as a fake renderer reports it: 30 frames a second."""
    total = 10**6

    def read() -> Progress:
        done = int((time.monotonic() - started) * FPS) + 1
        return Progress(
            phase=Phase.RENDERING,
            fraction=done / total,
            frames_done=done,
            frames_total=total,
            elapsed=0.0,
            eta=None,
            step="rendering",
            step_done=done,
            step_total=total,
        )

    return read


def fleet_worker(  # noqa: PLR0917 - a process target's arguments
    url: str, mode: str, begun: list[Attempt], start_at: float, seconds: float, results: Any
) -> None:
    """One worker process: heartbeat its renders for ``seconds`` from ``start_at``."""
    try:
        engine = create_engine(url, pool_size=2)
        inner = SQLAlchemyAttemptStore(sessionmaker(engine, expire_on_commit=False), table=ATTEMPTS)
        inner._checked = True  # the parent made the table
        ledger = Recording(inner if mode == "worker" else PerRender(inner))  # type: ignore[arg-type]
        counts = Counts(engine)
        heartbeat = Heartbeat(ledger, contextlib.nullcontext)
        # Workers start when they start: their ticks are not in step with each other's.
        phase = random.uniform(0.0, 1.0)
        late = time.time() - start_at  # > 0: this process was not up in time
        time.sleep(max(0.0, start_at - time.time()) + phase)
        counts.take()
        started = time.monotonic()
        for attempt in begun:
            assert attempt.owner is not None
            heartbeat.add(attempt.owner, attempt, fake_renderer(started), lambda: None)
        time.sleep(seconds)
        heartbeat.stop()
        statements, commits = counts.take()
        took = time.monotonic() - started
        waited = counts.waited
        gaps = []
        for attempt in begun:
            times = [started, *ledger.renewed.get(attempt.id, [])]
            if len(times) == 1:
                times.append(time.monotonic())  # never renewed: the whole run is its gap
            gaps.extend(b - a for a, b in itertools.pairwise(times))
        lost = sum(
            1
            for a in begun
            if (now := ledger.get(a.id)) is None or now.state is not AttemptState.RENDERING
        )
        engine.dispose()
        results.put(
            {
                "statements": statements,
                "commits": commits,
                "seconds": took,
                "late": late,
                "gaps": gaps,
                "calls": ledger.calls,
                "waited": waited,
                "skipped": ledger.skipped,
                "failed": ledger.failed,
                "lost": lost,
            }
        )
    except Exception as exc:  # reported by the parent
        results.put({"error": repr(exc)})


def begin_renders(url: str, renders: int) -> list[Attempt]:
    """Start and begin ``renders`` renders (what the workers would have received)."""
    store = Store(url)
    begun = []
    for i in range(renders):
        project = store.create(f"p{i}", {})
        _, attempt = store.ledger.start(ProjectLifecycle(project, store.adapter))
        begun.append(store.ledger.begin(attempt))
    store.close()
    return begun


def fleet(args: argparse.Namespace, mode: str, target: Target) -> dict[str, Any]:
    url = target.sqlalchemy_url()
    share = args.renders // args.processes
    begun = begin_renders(url, share * args.processes)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 5 + args.processes * 0.1  # every process is up
    workers = [
        context.Process(
            target=fleet_worker,
            args=(
                url,
                mode,
                begun[n * share : (n + 1) * share],
                start_at,
                args.fleet_seconds,
                results,
            ),
        )
        for n in range(args.processes)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=start_at - time.time() + args.fleet_seconds + 300)]
    reports += [results.get(timeout=300) for _ in workers[1:]]
    for worker in workers:
        worker.join()
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        msg = f"{len(errors)} workers failed: {errors[:3]}"
        raise RuntimeError(msg)
    seconds = statistics.median(r["seconds"] for r in reports)
    gaps = sorted(g for r in reports for g in r["gaps"])
    calls = sorted(c for r in reports for c in r["calls"])
    waited = sorted(w for r in reports for w in r["waited"])
    return {
        "statements/s": sum(r["statements"] for r in reports) / seconds,
        "transactions/s": sum(r["commits"] for r in reports) / seconds,
        "worst gap": gaps[-1],
        "p99 gap": gaps[int(0.99 * (len(gaps) - 1))],
        "median gap": statistics.median(gaps),
        "worst call": calls[-1],
        "p99 call": calls[int(0.99 * (len(calls) - 1))],
        "median call": statistics.median(calls),
        "worst statement": waited[-1],
        "p99 statement": waited[int(0.99 * (len(waited) - 1))],
        "latest start": max(r["late"] for r in reports),
        "skipped": sum(r["skipped"] for r in reports),
        "failed": sum(r["failed"] for r in reports),
        "lost": sum(r["lost"] for r in reports),
        "renders": share * args.processes,
    }


def forced_checkpoints() -> int | None:
    """PostgreSQL's count of checkpoints asked for (a database created or dropped forces one)."""
    try:
        with psycopg.connect(host=PG["host"], port=PG["port"], dbname=PG["dbname"]) as c:
            row = c.execute("SELECT checkpoints_req FROM pg_stat_bgwriter").fetchone()
    except Exception:  # no server
        return None
    return None if row is None else int(row[0])


def part_fleet(args: argparse.Namespace) -> None:
    print(
        f"{args.renders} renders over {args.processes} worker processes, {args.backend}, "
        f"{args.fleet_seconds:g} s of heartbeats (lease 30 s: renewed every 10 s at the latest)"
    )
    print(f"load average before: {load()}")
    modes = args.modes.split(",")
    rows = []
    for round_ in range(args.fleet_rounds):
        for mode in modes if round_ % 2 == 0 else list(reversed(modes)):
            with database(args.backend) as target:
                before = forced_checkpoints()
                measured = fleet(args, mode, target)
                after = forced_checkpoints()
            measured["checkpoints"] = (
                "?" if before is None or after is None else str(after - before)
            )
            measured["load"] = os.getloadavg()[0]
            rows.append((round_ + 1, mode, measured))
            print(f"  round {round_ + 1} {mode}: done, load average {load()}", flush=True)
    print(f"load average after: {load()}")
    for round_, mode, r in rows:
        print(
            f"round {round_} {mode}: statements answered in {r['p99 statement'] * 1e3:.0f} ms "
            f"(p99), {r['worst statement'] * 1e3:.0f} ms at worst; the last worker was up "
            f"{r['latest start']:.2f} s after the start (< 0: before it)"
        )
    print()
    print(
        "| round | heartbeat | statements/s | transactions/s | renewal gap: median | p99 "
        "| worst | renew(): median | p99 | worst | skipped, failed, lost | load (1 min) "
        "| forced checkpoints |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for round_, mode, r in rows:
        print(
            f"| {round_} | {MODES[mode]} | {r['statements/s']:.0f} "
            f"| {r['transactions/s']:.1f} | {r['median gap']:.2f} s | {r['p99 gap']:.2f} s "
            f"| **{r['worst gap']:.2f} s** | {r['median call'] * 1e3:.0f} ms "
            f"| {r['p99 call'] * 1e3:.0f} ms | {r['worst call'] * 1e3:.0f} ms "
            f"| {r['skipped']}, {r['failed']}, {r['lost']} | {r['load']:.1f} "
            f"| {r['checkpoints']} |"
        )
    print()


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "twenty": part_twenty,
    "fleet": part_fleet,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--backend", default="postgres", choices=BACKENDS)
    parser.add_argument("--window", type=float, default=20.0, help="seconds counted in twenty")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each mode in twenty")
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--renders", type=int, default=1000)
    parser.add_argument("--fleet-seconds", type=float, default=60.0)
    parser.add_argument("--modes", default="worker", help="fleet modes: worker, render or both")
    parser.add_argument("--fleet-rounds", type=int, default=1, help="rounds of each fleet mode")
    args = parser.parse_args()
    # The renders cancelled at the end of each round log their end; the figures matter here.
    logging.disable(logging.WARNING)
    parts = args.parts.split(",")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: no part {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    for name in parts:
        PARTS[name](args)


if __name__ == "__main__":
    main()
