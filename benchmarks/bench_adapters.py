"""Adapters against a hand-written conditional UPDATE, on SQLite, PostgreSQL and MariaDB.

Run from the project root (PostgreSQL and MariaDB as in docs/benchmarks.md)::

    .venv/bin/python benchmarks/bench_adapters.py [--rounds 300] [--attempts 500]

Per adapter and database it reports: SQL statements per successful transition and per
refused start; the median latency of ``start_render()`` + ``complete()`` next to the same
two conditional UPDATEs written by hand through the same ORM; and a contention run
(8 threads x ``--attempts`` start attempts on one project while a completer thread
completes whatever is PROCESSING), counting successes, conflicts and other errors.

The harnesses of ``tests/adapters`` are reused, so the models are the tested ones. The async
adapters (``sqlalchemy-async``, ``django-async``) run through ``astart_render()`` and
``acomplete()`` on the harness's event loop, next to the same two UPDATEs awaited by hand
through the same async ORM, so both columns pay the same loop round trips.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from adapters.contract import Harness, run  # noqa: E402
from adapters.databases import BACKENDS, Target, create, drop  # noqa: E402
from renderstate import RenderConflictError, Status  # noqa: E402

PATH = "projects/bench/final.mp4"
STARTABLE = ["DRAFT", "COMPLETED", "FAILED"]


def handwritten_sqlalchemy(harness: Any) -> Callable[[object], None]:
    from sqlalchemy import update  # noqa: PLC0415

    from adapters.test_sqlalchemy import Project, now  # noqa: PLC0415

    def run(key: object) -> None:
        with harness.factory.begin() as session:
            session.execute(
                update(Project)
                .where(Project.id == key, Project.status.in_(STARTABLE))
                .values(status="PROCESSING", updated_at=now())
            )
        with harness.factory.begin() as session:
            session.execute(
                update(Project)
                .where(Project.id == key, Project.status == "PROCESSING")
                .values(status="COMPLETED", output_path=PATH, updated_at=now())
            )

    return run


def handwritten_django(harness: Any) -> Callable[[object], None]:
    from django.utils import timezone  # noqa: PLC0415

    def run(key: object) -> None:
        rows = harness.model.objects.using(harness.alias)
        rows.filter(pk=key, status__in=STARTABLE).update(
            status="PROCESSING", updated_at=timezone.now()
        )
        rows.filter(pk=key, status="PROCESSING").update(
            status="COMPLETED", output_path=PATH, updated_at=timezone.now()
        )

    return run


def handwritten_peewee(harness: Any) -> Callable[[object], None]:
    from adapters.test_peewee import Project, utcnow  # noqa: PLC0415

    def run(key: object) -> None:
        Project.update(status="PROCESSING", updated_at=utcnow()).where(
            (Project.id == key) & Project.status.in_(STARTABLE)
        ).execute()
        Project.update(status="COMPLETED", output_path=PATH, updated_at=utcnow()).where(
            (Project.id == key) & (Project.status == "PROCESSING")
        ).execute()

    return run


def handwritten_sqlalchemy_async(harness: Any) -> Callable[[object], None]:
    from sqlalchemy import update  # noqa: PLC0415

    from adapters.test_sqlalchemy import Project, now  # noqa: PLC0415

    async def pair(key: object) -> None:
        async with harness.async_factory.begin() as session:
            await session.execute(
                update(Project)
                .where(Project.id == key, Project.status.in_(STARTABLE))
                .values(status="PROCESSING", updated_at=now())
            )
        async with harness.async_factory.begin() as session:
            await session.execute(
                update(Project)
                .where(Project.id == key, Project.status == "PROCESSING")
                .values(status="COMPLETED", output_path=PATH, updated_at=now())
            )

    return lambda key: run(pair(key))


def handwritten_django_async(harness: Any) -> Callable[[object], None]:
    from django.utils import timezone  # noqa: PLC0415

    async def pair(key: object) -> None:
        rows = harness.model.objects.using(harness.alias)
        await rows.filter(pk=key, status__in=STARTABLE).aupdate(
            status="PROCESSING", updated_at=timezone.now()
        )
        await rows.filter(pk=key, status="PROCESSING").aupdate(
            status="COMPLETED", output_path=PATH, updated_at=timezone.now()
        )

    return lambda key: run(pair(key))


def harnesses() -> dict[str, tuple[type[Harness], Callable[[Any], Callable[[object], None]]]]:
    from adapters.test_django import DjangoHarness  # noqa: PLC0415
    from adapters.test_django_async import AsyncDjangoHarness  # noqa: PLC0415
    from adapters.test_peewee import PeeweeHarness  # noqa: PLC0415
    from adapters.test_sqlalchemy import SQLAlchemyHarness  # noqa: PLC0415
    from adapters.test_sqlalchemy_async import AsyncSQLAlchemyHarness  # noqa: PLC0415

    return {
        "django": (DjangoHarness, handwritten_django),
        "django-async": (AsyncDjangoHarness, handwritten_django_async),
        "sqlalchemy": (SQLAlchemyHarness, handwritten_sqlalchemy),
        "sqlalchemy-async": (AsyncSQLAlchemyHarness, handwritten_sqlalchemy_async),
        "peewee": (PeeweeHarness, handwritten_peewee),
    }


def statements(harness: Harness) -> tuple[float, float]:
    """SQL statements per successful transition and per start refused by the database."""
    key = harness.insert()
    lifecycle = harness.lifecycle(harness.load(key))
    stale = harness.lifecycle(harness.load(key))  # still DRAFT in memory
    with harness.capture() as success:
        lifecycle.start_render()
        lifecycle.complete(PATH)
        lifecycle.start_render()
    with harness.capture() as refused, contextlib.suppress(RenderConflictError):
        stale.start_render()
    return len(success) / 3, float(len(refused))


def latency(
    harness: Harness, handwritten: Callable[[object], None], rounds: int
) -> tuple[float, float]:
    """Median seconds of start_render()+complete() and of the hand-written pair."""
    key = harness.insert(Status.COMPLETED, output=PATH)
    lifecycle = harness.lifecycle(harness.load(key))
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        lifecycle.start_render()
        lifecycle.complete(PATH)
        ours.append(time.perf_counter() - began)
        began = time.perf_counter()
        handwritten(key)
        theirs.append(time.perf_counter() - began)
    return statistics.median(ours), statistics.median(theirs)


def contention(harness: Harness, attempts: int, threads: int = 8) -> dict[str, int]:
    """Starters race on one project while a completer finishes every render it sees."""
    key = harness.insert()
    counts = {"successes": 0, "conflicts": 0, "errors": 0, "completes": 0}
    lock = threading.Lock()
    done = threading.Event()
    errors: list[str] = []

    def starter() -> None:
        try:
            for _ in range(attempts):
                try:
                    harness.lifecycle(harness.load(key)).start_render()
                    outcome = "successes"
                except RenderConflictError:
                    outcome = "conflicts"
                except Exception as exc:
                    outcome = "errors"
                    errors.append(repr(exc))
                with lock:
                    counts[outcome] += 1
        finally:
            harness.release()

    def completer() -> None:
        try:
            while not done.is_set():
                lifecycle = harness.lifecycle(harness.load(key))
                if lifecycle.status is Status.PROCESSING:
                    try:
                        lifecycle.complete(PATH)
                        with lock:
                            counts["completes"] += 1
                    except Exception as exc:
                        errors.append(repr(exc))
                        with lock:
                            counts["errors"] += 1
        finally:
            harness.release()

    workers = [threading.Thread(target=starter) for _ in range(threads)]
    finisher = threading.Thread(target=completer)
    finisher.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done.set()
    finisher.join()
    final = harness.row(key)["status"]
    # Starts and completes alternate in the database; two PROCESSING owners at once
    # would show as more successful starts than completes + 1.
    owners_ok = counts["successes"] - counts["completes"] == (1 if final == "PROCESSING" else 0)
    counts["double_owner"] = 0 if owners_ok else 1
    if errors:
        print(f"  first errors: {errors[:3]}", file=sys.stderr)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--attempts", type=int, default=500)
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS))
    parser.add_argument("--adapters", nargs="*", default=None, help="default: all")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        targets: dict[str, Target] = {}
        try:
            for backend in args.backends:
                targets[backend] = create(backend, Path(tmp), "bench")
            chosen = harnesses()
            if args.adapters:
                chosen = {name: chosen[name] for name in args.adapters}
            for name, (harness_class, handwritten) in chosen.items():
                for backend, target in targets.items():
                    harness = harness_class(target, variant=False)
                    harness.prepare()
                    per_success, per_refusal = statements(harness)
                    ours, theirs = latency(harness, handwritten(harness), args.rounds)
                    race = contention(harness, args.attempts)
                    rows.append(
                        f"| {name} | {backend} | {per_success:g} | {per_refusal:g} "
                        f"| {ours * 1e3:.2f} | {theirs * 1e3:.2f} | {ours / theirs:.2f} "
                        f"| {race['successes']} | {race['conflicts']} | {race['errors']} "
                        f"| {race['double_owner']} |"
                    )
                    print(rows[-1], file=sys.stderr, flush=True)
        finally:
            for target in targets.values():
                drop(target)
    print(
        "| adapter | database | statements / transition | statements / refused start "
        "| start+complete median (ms) | hand-written UPDATEs (ms) | ratio "
        "| contention successes | conflicts | other errors | double owners |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
