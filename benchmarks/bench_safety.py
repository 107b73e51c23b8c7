"""What owner tokens and the publish journal cost per render, against the code before them.

Run from the project root (PostgreSQL as in docs/benchmarks.md; ``strace`` on the PATH)::

    .venv/bin/python benchmarks/bench_safety.py --baseline /work/wt/baseline/src
        [--candidate src] [--parts statements,syscalls,time] [--backends sqlite postgres]
        [--without-ledger sqlite] [--rounds 15] [--renders 20] [--frames 10]

Two source trees side by side: ``--baseline`` (the code before this round, e.g. a worktree of
commit 5031def) and ``--candidate`` (this checkout's ``src`` by default). Every measurement
runs in a child process per tree (``PYTHONPATH=<tree>``, this interpreter), each with a
database of its own (a SQLite file, a PostgreSQL database created for the run and dropped
after it): the baseline's attempt table has no ``owner`` column. The children use only what
both trees have: the command line's store (``renderstate.cli._store.Store``: adapter, ledger
and loader on one engine), ``RenderRunner(adapter, renderer, media_root=..., ledger=...,
loader=...)``, ``runner.submit(project).wait()`` and ``FakeRenderer(frames=...)``.

What is measured is a **re-render**: one project rendered once at set-up (so ``final.mp4``
exists and every measured publish replaces it), then rendered again and again. Cases: each
``--backends`` database with a ledger, each ``--without-ledger`` database without one.

``statements``: the SQL statements the driver sees per re-render (``before_cursor_execute``),
by verb, and the statements the set-up sent (``Store()``, the project's INSERT and the first
render: where a once-per-store check shows); then which statements read differently.

``syscalls``: a child per tree runs ``--renders`` re-renders under ``strace -f -y``, between
two marker ``openat`` calls, and the link, unlink, rename, fsync and openat calls (each
family with its ``*at``/``fdatasync`` variants) between the markers are counted per
re-render, split by the file they touch: the media root (the render's files and directory)
or the SQLite database (its file and rollback journal).

``time``: ``--rounds`` rounds; in every round each tree's child does ``--renders`` timed
re-renders, baseline and candidate in turn (which goes first alternates). The median wall
time of a re-render (``submit()`` to ``wait()`` returning) per tree, the ratio
candidate/baseline, and the range of the per-round ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MARKER = "bench-safety-marker"
FAMILIES = {
    "link": ("link", "linkat"),
    "unlink": ("unlink", "unlinkat"),
    "rename": ("rename", "renameat", "renameat2"),
    "fsync": ("fsync", "fdatasync"),
    "openat": ("open", "openat"),
}
VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE")


# ---------------------------------------------------------------- the child (either tree)
class Renders:
    """One project in one tree's store, rendered once; re-rendered on the parent's commands.

    Only what the baseline has too is used here.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        from sqlalchemy import event  # noqa: PLC0415
        from sqlalchemy.engine import Engine  # noqa: PLC0415

        import renderstate  # noqa: PLC0415
        from renderstate import RenderRunner, Status  # noqa: PLC0415
        from renderstate.cli._store import Store  # noqa: PLC0415
        from renderstate.testing import FakeRenderer  # noqa: PLC0415

        self.completed = Status.COMPLETED
        self.listened = (Engine, "before_cursor_execute", self._record)
        self.listen, self.unlisten = event.listen, event.remove
        self.sent: list[str] = []
        # On the Engine class: Store() runs create_all before its engine can be listened to.
        self.listen(*self.listened)
        self.store = Store(config["url"])
        self.media = Path(config["media"])
        renderer = FakeRenderer(frames=config["frames"])
        if config["ledger"]:
            self.runner = RenderRunner(
                self.store.adapter,
                renderer,
                media_root=self.media,
                ledger=self.store.ledger,
                loader=self.store.loader,
            )
        else:
            self.runner = RenderRunner(self.store.adapter, renderer, media_root=self.media)
        self.project = self.store.create("bench", {})
        self.render()
        self.folder = next((self.media / "projects").iterdir())
        reply({"module": renderstate.__file__, "setup": self.take()})
        self.unlisten(*self.listened)

    def _record(self, *args: Any) -> None:
        self.sent.append(args[2])

    def take(self) -> list[str]:
        taken, self.sent = self.sent, []
        return taken

    def render(self) -> None:
        status = self.runner.submit(self.project).wait()
        if status is not self.completed:
            msg = f"a re-render ended {status}"
            raise RuntimeError(msg)

    def count(self, renders: int) -> dict[str, Any]:
        """Each re-render's statements, and any file but final.mp4 left after one."""
        listed: list[list[str]] = []
        leftovers: set[str] = set()
        self.listen(*self.listened)
        for _ in range(renders):
            self.render()
            listed.append(self.take())
            leftovers.update(p.name for p in self.folder.iterdir() if p.name != "final.mp4")
        self.unlisten(*self.listened)
        return {"renders": listed, "leftovers": sorted(leftovers)}

    def time(self, renders: int) -> dict[str, Any]:
        """Each re-render's wall time, and the CPU time of all of them (every thread's)."""
        seconds = []
        cpu = time.process_time()  # the process's threads, the runner's worker included
        for _ in range(renders):
            began = time.perf_counter()
            self.render()
            seconds.append(time.perf_counter() - began)
        return {"seconds": seconds, "cpu": time.process_time() - cpu}

    def run(self, renders: int) -> dict[str, Any]:
        for _ in range(renders):
            self.render()
        return {}

    def mark(self, name: str) -> dict[str, Any]:
        """An ``openat`` strace sees, of a path that is not there."""
        with contextlib.suppress(FileNotFoundError):
            os.close(os.open(self.media / f"{MARKER}-{name}", os.O_RDONLY))
        return {}

    def close(self) -> None:
        self.runner.shutdown()
        self.store.close()


def child(config: dict[str, Any]) -> None:
    """Serve the parent's commands (``count N``, ``time N``, ``run N``, ``mark NAME``)."""
    renders = Renders(config)
    commands = {
        "count": lambda n: renders.count(int(n)),
        "time": lambda n: renders.time(int(n)),
        "run": lambda n: renders.run(int(n)),
        "mark": renders.mark,
    }
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "quit":
            break
        reply(commands[command](argument))
    renders.close()


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- the parent
@dataclass
class Case:
    """A database, with or without a ledger; per tree its URL and scratch directory."""

    backend: str
    ledger: bool
    urls: dict[str, str] = field(default_factory=dict)
    scratch: dict[str, Path] = field(default_factory=dict)

    @property
    def label(self) -> str:
        name = {"sqlite": "SQLite file", "postgres": "PostgreSQL"}.get(self.backend, self.backend)
        return f"{name}, {'ledger' if self.ledger else 'no ledger'}"


class Child:
    """A child process running one tree's renderstate, answering one JSON line per command."""

    def __init__(
        self, args: argparse.Namespace, tree: str, case: Case, media: Path, strace: Path | None
    ) -> None:
        config = {"url": case.urls[tree], "media": str(media), "ledger": case.ledger}
        config["frames"] = args.frames
        command = [sys.executable, __file__, "--child", json.dumps(config)]
        if strace is not None:
            calls = ",".join(name for names in FAMILIES.values() for name in names)
            command = ["strace", "-f", "-y", "-qq", "-e", f"trace={calls}", "-o", str(strace)]
            command += [sys.executable, __file__, "--child", json.dumps(config)]
        env = {**os.environ, "PYTHONPATH": str(getattr(args, tree))}
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.setup = self.ask(None)
        expected = Path(getattr(args, tree)).resolve()
        if not Path(self.setup["module"]).resolve().is_relative_to(expected):
            msg = f"the {tree} child imported {self.setup['module']}, not from {expected}"
            raise RuntimeError(msg)

    def ask(self, command: str | None) -> Any:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            msg = f"a child ended without answering {command!r}"
            raise RuntimeError(msg)
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(timeout=60)


@contextmanager
def databases(args: argparse.Namespace, scratch: Path) -> Iterator[list[Case]]:
    """The cases, each tree with a fresh database of its own; PostgreSQL's dropped after."""
    sys.path.insert(0, str(ROOT / "tests"))
    from adapters.databases import Target, create, drop  # noqa: PLC0415

    cases = [Case(backend, ledger=True) for backend in args.backends]
    cases += [Case(backend, ledger=False) for backend in args.without_ledger]
    made: list[Target] = []
    reachable: list[Case] = []
    try:
        for case in cases:
            try:
                for tree in ("baseline", "candidate"):
                    folder = scratch / f"{tree}-{case.backend}-{int(case.ledger)}"
                    folder.mkdir()
                    target = create(case.backend, folder, f"safety_{tree}")
                    made.append(target)
                    case.urls[tree] = target.sqlalchemy_url()
                    case.scratch[tree] = folder
            except Exception as exc:
                print(f"{case.label}: unreachable ({exc}), left out", flush=True)
                continue
            reachable.append(case)
        yield reachable
    finally:
        for target in made:
            drop(target)


def verbs(statements: list[str]) -> Counter[str]:
    return Counter(sql.lstrip().split(None, 1)[0].upper() for sql in statements)


def shape(statements: list[str]) -> str:
    count = verbs(statements)
    parts = [f"{count[verb]} {verb}" for verb in VERBS if count[verb]]
    other = len(statements) - sum(count[verb] for verb in VERBS)
    parts += [f"{other} other"] if other else []
    return f"{len(statements)} ({', '.join(parts)})"


def per_render(renders: list[list[str]]) -> str:
    """The statement count of a re-render: one figure if all agree, else the median and range."""
    counts = [len(sent) for sent in renders]
    if min(counts) == max(counts):
        return shape(renders[0])
    return f"{statistics.median(counts):g} ({min(counts)} to {max(counts)})"


def words(sql: str) -> Counter[str]:
    """The statement's words, without commas and the parentheses they do not open or close."""
    found: Counter[str] = Counter()
    for written in sql.split():
        word = written.rstrip(",")
        while word.endswith(")") and word.count(")") > word.count("("):
            word = word[:-1].rstrip(",")
        while word.startswith("(") and word.count("(") > word.count(")"):
            word = word[1:]
        found[word] += 1
    return found


def head(sql: str) -> str:
    return " ".join(sql.split()[:3])


def changed(baseline: list[str], candidate: list[str]) -> list[str]:
    """What the candidate sends differently: statements added or gone, words added or gone.

    Statements are paired by their first three words, in order (the order of a set-up's
    ``CREATE INDEX`` statements is not the code's), then compared word by word.
    """
    grouped: dict[str, tuple[list[str], list[str]]] = {}
    for side, statements in enumerate((baseline, candidate)):
        for sql in statements:
            grouped.setdefault(head(sql), ([], []))[side].append(sql)
    lines: list[str] = []
    for first, (olds, news) in grouped.items():
        for old, new in zip(olds, news, strict=False):
            if old != new:
                more, fewer = words(new) - words(old), words(old) - words(new)
                diff = [f"`+{w}`" for w in more.elements()]
                diff += [f"`-{w}`" for w in fewer.elements()]
                lines.append(f"`{first} ...`: {' '.join(diff)}")
        if len(olds) != len(news):
            lines.append(f"`{first} ...`: {len(olds)} → {len(news)} statements")
    return lines


def part_statements(args: argparse.Namespace, cases: list[Case]) -> None:
    print(f"\nStatements per re-render (each of {args.renders} counted), and at set-up")
    print(
        "| case | baseline, per re-render | candidate, per re-render "
        "| baseline, set-up | candidate, set-up |"
    )
    print("|---|---|---|---|---|")
    notes: list[str] = []
    for case in cases:
        replies: dict[str, Any] = {}
        setups: dict[str, list[str]] = {}
        for tree in ("baseline", "candidate"):
            media = case.scratch[tree] / "media-statements"
            one = Child(args, tree, case, media, None)
            replies[tree] = one.ask(f"count {args.renders}")
            setups[tree] = one.setup["setup"]
            one.close()
            if replies[tree]["leftovers"]:
                notes.append(f"{case.label}, {tree}: left {replies[tree]['leftovers']}")
        print(
            f"| {case.label} | {per_render(replies['baseline']['renders'])} "
            f"| {per_render(replies['candidate']['renders'])} "
            f"| {len(setups['baseline'])} | {len(setups['candidate'])} |",
            flush=True,
        )
        renders = changed(replies["baseline"]["renders"][0], replies["candidate"]["renders"][0])
        notes += [f"{case.label}, re-render: {line}" for line in renders]
        # The set-up renders once too: only what the re-renders do not show already.
        setup = changed(setups["baseline"], setups["candidate"])
        notes += [f"{case.label}, set-up: {line}" for line in setup if line not in renders]
    for note in notes:
        print(f"- {note}")


SYSCALL = re.compile(r"^\d+\s+(?!<\.\.\.)(?P<name>\w+)\(")


def count_calls(trace: Path, media: Path, database: Path | None) -> dict[str, Counter[str]]:
    """Per family, the calls between the two markers, by what they touch."""
    counted: dict[str, Counter[str]] = {family: Counter() for family in FAMILIES}
    family_of = {name: family for family, names in FAMILIES.items() for name in names}
    inside = False
    for line in trace.read_text().splitlines():
        if MARKER in line:
            inside = f"{MARKER}-begin" in line
            continue
        matched = SYSCALL.match(line)
        if not inside or matched is None or matched["name"] not in family_of:
            continue
        if str(media) in line:
            where = "media"
        elif database is not None and str(database) in line:
            where = "database"
        else:
            where = "other"
        counted[family_of[matched["name"]]][where] += 1
    return counted


def cell(counted: Counter[str], renders: int) -> str:
    def each(n: int) -> str:
        return f"{n / renders:.2f}".rstrip("0").rstrip(".")

    parts = [each(counted["media"])]
    if counted["database"]:
        parts.append(f"db {each(counted['database'])}")
    if counted["other"]:
        parts.append(f"other {each(counted['other'])}")
    return " + ".join(parts)


def difference(baseline: Counter[str], candidate: Counter[str], renders: int) -> str:
    """The candidate's calls minus the baseline's, per re-render, where they differ."""
    parts = []
    for where in ("media", "database", "other"):
        more = (candidate[where] - baseline[where]) / renders
        if more or where == "media":
            text = f"{more:+.2f}".rstrip("0").rstrip(".") if more else "0"
            parts.append(text if where == "media" else f"{where} {text}")
    return " + ".join(parts).replace("database", "db")


def part_syscalls(args: argparse.Namespace, cases: list[Case]) -> None:
    if shutil.which("strace") is None:
        print("\nSystem calls: strace is not installed, left out")
        return
    print(
        f"\nSystem calls per re-render (mean of {args.renders}, under strace -f): media root "
        "files + database files"
    )
    print(f"| case | tree | {' | '.join(FAMILIES)} |")
    print(f"|---|---|{'---|' * len(FAMILIES)}")
    for case in cases:
        counts: dict[str, dict[str, Counter[str]]] = {}
        for tree in ("baseline", "candidate"):
            media = case.scratch[tree] / "media-syscalls"
            trace = case.scratch[tree] / "strace.txt"
            one = Child(args, tree, case, media, trace)
            one.ask("mark begin")
            one.ask(f"run {args.renders}")
            one.ask("mark end")
            one.close()
            database = case.scratch[tree] if case.backend == "sqlite" else None
            counted = counts[tree] = count_calls(trace, media, database)
            cells = " | ".join(cell(counted[family], args.renders) for family in FAMILIES)
            print(f"| {case.label} | {tree} | {cells} |", flush=True)
            if args.traces is not None:
                args.traces.mkdir(parents=True, exist_ok=True)
                name = f"{tree}-{case.backend}-{'ledger' if case.ledger else 'plain'}.txt"
                shutil.copyfile(trace, args.traces / name)
        differences = " | ".join(
            difference(counts["baseline"][family], counts["candidate"][family], args.renders)
            for family in FAMILIES
        )
        print(f"| {case.label} | difference | {differences} |", flush=True)


def part_time(args: argparse.Namespace, cases: list[Case]) -> None:
    print(
        f"\nMedian wall time per re-render ({args.rounds} rounds of {args.renders} re-renders "
        "per tree, interleaved), and CPU time per re-render (all of the child's threads)"
    )
    print(
        "| case | baseline ms | candidate ms | difference | ratio | per round "
        "| CPU baseline ms | CPU candidate ms | CPU ratio |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    with ExitStack() as stack:
        children: dict[tuple[int, str], Child] = {}
        for index, case in enumerate(cases):
            for tree in ("baseline", "candidate"):
                media = case.scratch[tree] / "media-time"
                one = Child(args, tree, case, media, None)
                stack.callback(one.close)
                one.ask(f"run {max(1, args.renders // 4)}")  # warm-up
                children[index, tree] = one
        walls: dict[tuple[int, str], list[float]] = {key: [] for key in children}
        cpus: dict[tuple[int, str], float] = dict.fromkeys(children, 0.0)
        ratios: dict[int, list[float]] = {index: [] for index in range(len(cases))}
        for round_ in range(args.rounds):
            for index in range(len(cases)):
                order = ("baseline", "candidate") if round_ % 2 == 0 else ("candidate", "baseline")
                medians: dict[str, float] = {}
                for tree in order:
                    timed = children[index, tree].ask(f"time {args.renders}")
                    walls[index, tree].extend(timed["seconds"])
                    cpus[index, tree] += timed["cpu"]
                    medians[tree] = statistics.median(timed["seconds"])
                ratios[index].append(medians["candidate"] / medians["baseline"])
        renders = args.rounds * args.renders
        for index, case in enumerate(cases):
            b = statistics.median(walls[index, "baseline"]) * 1e3
            c = statistics.median(walls[index, "candidate"]) * 1e3
            low, high = min(ratios[index]), max(ratios[index])
            cpu_b = cpus[index, "baseline"] / renders * 1e3
            cpu_c = cpus[index, "candidate"] / renders * 1e3
            print(
                f"| {case.label} | {b:.2f} | {c:.2f} | {c - b:+.2f} ms | {c / b:.2f}x "
                f"| {low:.2f}x to {high:.2f}x | {cpu_b:.2f} | {cpu_c:.2f} | {cpu_c / cpu_b:.2f}x |",
                flush=True,
            )


PARTS = {"statements": part_statements, "syscalls": part_syscalls, "time": part_time}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the old tree's src")
    parser.add_argument("--candidate", type=Path, default=ROOT / "src", help="the new src")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--without-ledger", nargs="*", default=["sqlite"], metavar="BACKEND")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds of time")
    parser.add_argument("--renders", type=int, default=20, help="re-renders per child a round")
    parser.add_argument("--frames", type=int, default=10, help="frames of the fake render")
    parser.add_argument("--traces", type=Path, help="keep the strace outputs in this directory")
    args = parser.parse_args()
    args.baseline, args.candidate = args.baseline.resolve(), args.candidate.resolve()
    print(f"baseline {args.baseline}, candidate {args.candidate}, {sys.executable}")
    with (
        tempfile.TemporaryDirectory(prefix="bench-safety-") as scratch,
        databases(args, Path(scratch)) as cases,
    ):
        for name in args.parts.split(","):
            PARTS[name.strip()](args, cases)


if __name__ == "__main__":
    main()
