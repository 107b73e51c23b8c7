"""Renders on Celery workers: throughput with 1 vs 2 workers, and the Celery path's overhead.

Contenders, on the same machine, Redis (127.0.0.1:6379) as broker, one SQLite file shared by
this process and the workers (the command line's store: projects + attempt ledger):
  throughput  --renders renders (one per project, all submitted at once) through one
              `celery worker` vs two (solo pool, concurrency 1 each): wall time from the
              first submit to the end of the last attempt, as its worker wrote it in the
              ledger (polled every 0.5 s, so the poll costs the workers no CPU), --rounds times
              (1 and 2 workers alternating), medians reported. Goal: >= 1.7x on two cores.
              Also the CPU the workers and their ffmpeg children used (read from
              /proc/<pid>/stat while they run) and what this process used (submitting and
              polling), so the reader sees how many cores one worker keeps busy.
  overhead    one near-empty render at a time (FakeRenderer, 1 frame), submit to COMPLETED
              seen in the database: RenderRunner with its ThreadExecutor in this process vs
              CeleryExecutor + a worker (send, deliver, load, begin, render, fenced
              complete). The difference is the Celery path's cost per render.

The throughput renders are MoviePyRenderer (--renderer moviepy, the default; --size and
--preset set how much encoding each does) with --threads 1, the setting for one render per
core: one x264 thread, the soundtrack encoded before the video rather than beside it, so a
render keeps about one core busy, which is what two workers of concurrency 1 on two cores
presume (--threads auto lets ffmpeg decide and encodes the soundtrack beside the video: a
render alone is faster, but keeps more than one core busy, so a second worker has less to
win); or a renderer that burns --cpu-seconds of one core in Python per render (cpu), or
FakeRenderer sleeping per frame (fake: no CPU).

Run: .venv/bin/python benchmarks/bench_celery.py [--renders 40] [--rounds 3] [--repeats 30]
This file is also the workers' Celery app (`celery -A bench_celery worker`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from celery import Celery
from sqlalchemy import func, select

from renderstate import RenderRunner, Status
from renderstate.cli._store import Project, Store
from renderstate.ledger import Ledger
from renderstate.runner.celery import CeleryExecutor, register
from renderstate.testing import FakeRenderer

ENV = "RENDERSTATE_BENCH_CELERY"
BROKER = "redis://127.0.0.1:6379/0"
LEASE = 300.0  # longer than any queue wait here: a queued attempt is not renewed
# The sample timeline: three scenes, crossfades, a tone; 6 s at 24 fps.
SAMPLE: dict[str, Any] = json.loads(
    resources.files("renderstate.rendering").joinpath("sample_timeline.json").read_text()
)
TICK = os.sysconf("SC_CLK_TCK")


def timeline(size: str) -> dict[str, Any]:
    width, height = (int(n) for n in size.split("x"))
    return {**SAMPLE, "width": width, "height": height}


def build_app(settings: dict[str, Any]) -> Celery:
    app = Celery("bench-celery", broker=BROKER)
    app.conf.update(
        broker_transport_options={"global_keyprefix": settings["prefix"]},
        task_default_queue=settings["queue"],
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
    )
    return app


class BusyRenderer:
    """Burns ``seconds`` of this process's CPU (one core: pure Python) over 24 frames,
    reporting each, then writes a small file: a CPU-bound render without ffmpeg."""

    def __init__(self, seconds: float, frames: int = 24) -> None:
        self.seconds = seconds
        self.frames = frames

    def __call__(self, project: object, target: Path, progress: Any) -> None:
        per_frame = self.seconds / self.frames
        for frame in range(1, self.frames + 1):
            until = time.process_time() + per_frame
            while time.process_time() < until:
                sum(range(1000))
            progress("rendering", frame, self.frames)
        target.write_bytes(b"BUSY VIDEO\n")


def make_runner(settings: dict[str, Any], **options: Any) -> RenderRunner[Project]:
    store = Store(settings["db"])
    if settings["renderer"] == "moviepy":
        from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415

        threads = None if settings["threads"] == "auto" else int(settings["threads"])
        renderer: Any = MoviePyRenderer(preset=settings["preset"], threads=threads)
    elif settings["renderer"] == "cpu":
        renderer = BusyRenderer(settings["cpu_seconds"])
    else:
        renderer = FakeRenderer(frames=settings["frames"], frame_delay=settings["frame_delay"])
    return RenderRunner(
        store.adapter,
        renderer,
        media_root=settings["media"],
        ledger=Ledger(store.ledger.store, lease=LEASE),
        loader=store.loader,
        **options,
    )


if ENV in os.environ:  # a worker process: `celery -A bench_celery worker`
    _SETTINGS = json.loads(os.environ[ENV])
    app = build_app(_SETTINGS)
    register(app, lambda: make_runner(_SETTINGS))


class Workers:
    def __init__(self, settings: dict[str, Any], count: int, logs: Path) -> None:
        env = {**os.environ, ENV: json.dumps(settings)}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")])
        )
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        for n in range(count):
            log = logs / f"worker-{settings['queue']}-{n}.log"
            with log.open("wb") as out:
                command = [
                    *(sys.executable, "-m", "celery", "-A", "bench_celery", "worker"),
                    *("--pool", "solo", "--queues", settings["queue"]),
                    *("--hostname", f"bench{n}-{settings['queue']}@%h", "--loglevel", "INFO"),
                    *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                ]
                process = subprocess.Popen(
                    command,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.processes.append((process, log))
        for process, log in self.processes:
            deadline = time.monotonic() + 60
            while " ready." not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    msg = f"a worker did not start:\n{log.read_text()[-3000:]}"
                    raise SystemExit(msg)
                time.sleep(0.05)

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds the workers used so far: their own, and their reaped children's
        (the ffmpeg processes that encode each video)."""
        own = children = 0
        for process, _ in self.processes:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime, cutime, cstime: fields 14-17 of proc(5), 12-15 after the name.
            utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
            own += utime + stime
            children += cutime + cstime
        return own / TICK, children / TICK

    def stop(self) -> None:
        for process, _ in self.processes:
            process.terminate()
        for process, _ in self.processes:
            process.wait(timeout=30)


def settings_for(root: Path, **values: Any) -> dict[str, Any]:
    token = uuid.uuid4().hex[:10]
    return {
        "prefix": f"renderstate-bench-{token}:",
        "queue": f"renderstate-bench-{token}",
        "db": f"sqlite:///{root / f'{token}.sqlite3'}",
        "media": str(root / "media"),
        "renderer": "fake",
        "frames": 1,
        "frame_delay": 0.0,
        "preset": "ultrafast",
        "cpu_seconds": 1.0,
        "threads": "1",
        **values,
    }


def wait_completed(store: Store, projects: list[Project], pause: float = 0.005) -> None:
    """Poll until every project is COMPLETED: one small query per poll, whatever the count."""
    keys = [p.id for p in projects]
    query = (
        select(Project.status, func.count()).where(Project.id.in_(keys)).group_by(Project.status)
    )
    while True:
        with store.sessions() as session:
            counts: dict[str, int] = dict(session.execute(query).all())
        if counts.get(Status.FAILED.value):
            failed = next(k for k in keys if store.get(k).status == Status.FAILED.value)
            msg = f"project {failed} FAILED: {store.current_attempt(store.get(failed))}"
            raise SystemExit(msg)
        if counts.get(Status.COMPLETED.value, 0) == len(keys):
            return
        time.sleep(pause)


class Run(NamedTuple):
    rate: float
    """Renders per second."""
    worker_cpu: float
    """CPU seconds the worker processes (Python: frames, moviepy, Celery, the ledger) used."""
    encoder_cpu: float
    """CPU seconds their ffmpeg children used."""
    own_cpu: float
    """CPU seconds this process used (submitting, polling)."""
    wall: float


def throughput(root: Path, workers: int, renders: int, options: dict[str, Any]) -> Run:
    settings = settings_for(root, frames=24, frame_delay=0.01, **options)
    started = Workers(settings, workers, root)
    try:
        sender = make_runner(settings, executor=CeleryExecutor(build_app(settings)))
        store = Store(settings["db"])
        size = settings["size"]
        width, height = (int(n) for n in size.split("x"))
        projects = [
            store.create(f"p{i}", timeline(size), width=width, height=height)
            for i in range(renders)
        ]
        cpu_before = started.cpu_seconds()
        own_before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.time()
        for project in projects:
            sender.submit(project)
        # Seldom polled, so that this process takes next to no CPU from the workers: the
        # end is when the last attempt finished, as the worker wrote it in the ledger.
        wait_completed(store, projects, pause=0.5)
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        cpu_after = started.cpu_seconds()
        attempts = [store.current_attempt(store.get(p.id)) for p in projects]
        ends = [a.finished_at for a in attempts if a is not None and a.finished_at is not None]
        if len(ends) != len(projects):
            msg = f"{len(projects) - len(ends)} COMPLETED projects have no finished attempt"
            raise SystemExit(msg)
        elapsed = max(ends) - began
        store.close()
        sender.shutdown()
    finally:
        started.stop()
    own = (own_after.ru_utime - own_before.ru_utime) + (own_after.ru_stime - own_before.ru_stime)
    return Run(
        renders / elapsed, cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1], own, elapsed
    )


def overhead(root: Path, repeats: int) -> tuple[list[float], list[float]]:
    settings = settings_for(root)
    started = Workers(settings, 1, root)
    threads: list[float] = []
    celery: list[float] = []
    try:
        store = Store(settings["db"])
        local = make_runner(settings)
        remote = make_runner(settings, executor=CeleryExecutor(build_app(settings)))
        for n in range(repeats):
            # Alternate which goes first, so drift on a shared machine hits both alike.
            order = [(local, threads), (remote, celery)]
            for runner, times in order if n % 2 == 0 else order[::-1]:
                project = store.create("one", SAMPLE)
                began = time.perf_counter()
                runner.submit(project)
                wait_completed(store, [project])
                times.append(time.perf_counter() - began)
        local.shutdown()
        remote.shutdown()
        store.close()
    finally:
        started.stop()
    return threads, celery


def load() -> str:
    return ", ".join(f"{n:.2f}" for n in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--renderer", choices=["moviepy", "cpu", "fake"], default="moviepy")
    parser.add_argument("--cpu-seconds", type=float, default=1.0, help="cpu: CPU per render")
    parser.add_argument("--size", default="320x180", help="moviepy: frame size WxH")
    parser.add_argument("--preset", default="ultrafast", help="moviepy: x264 preset")
    parser.add_argument(
        "--threads", default="1", help="moviepy: MoviePyRenderer(threads=), a number or auto"
    )
    parser.add_argument("--parts", default="throughput,overhead")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    options = {
        "renderer": args.renderer,
        "size": args.size,
        "preset": args.preset,
        "cpu_seconds": args.cpu_seconds,
        "threads": args.threads,
    }
    if args.threads != "auto" and not (args.threads.isdigit() and int(args.threads) > 0):
        parser.error(f"--threads must be a positive number or auto, got {args.threads!r}")
    print(f"load average before: {load()} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as scratch:
        root = Path(scratch)
        if "throughput" in parts:
            what = args.renderer
            if args.renderer == "moviepy":
                what = (
                    f"moviepy {args.size} preset {args.preset} threads {args.threads}, "
                    "6 s sample timeline"
                )
            elif args.renderer == "cpu":
                what = f"cpu: {args.cpu_seconds:g} CPU-s of Python each"
            print(f"throughput, {args.renders} renders ({what}), {args.rounds} rounds")
            runs: dict[int, list[Run]] = {1: [], 2: []}
            for n in range(args.rounds):
                for count in (1, 2) if n % 2 == 0 else (2, 1):
                    run = throughput(root, count, args.renders, options)
                    runs[count].append(run)
                    print(
                        f"  round {n + 1}, {count} worker{'s' if count > 1 else ' '}: "
                        f"{run.rate:5.2f} renders/s; per render {count / run.rate:4.2f} s, "
                        f"CPU {run.worker_cpu / args.renders:4.2f} s Python + "
                        f"{run.encoder_cpu / args.renders:4.2f} s ffmpeg; cores busy: "
                        f"workers {(run.worker_cpu + run.encoder_cpu) / run.wall:4.2f}, "
                        f"this process {run.own_cpu / run.wall:4.2f} (load {load()})"
                    )
            one = statistics.median(r.rate for r in runs[1])
            two = statistics.median(r.rate for r in runs[2])
            cores = statistics.median((r.worker_cpu + r.encoder_cpu) / r.wall for r in runs[1])
            cpu = statistics.median((r.worker_cpu + r.encoder_cpu) / args.renders for r in runs[1])
            print(f"  median, 1 worker   {one:5.2f} renders/s ({1 / one:.2f} s per render)")
            print(f"  median, 2 workers  {two:5.2f} renders/s")
            paired = [b.rate / a.rate for a, b in zip(runs[1], runs[2], strict=True)]
            print(f"  ratio of medians   {two / one:5.2f}x   (goal >= 1.7x on two cores)")
            print(f"  ratio per round    {min(paired):.2f}x to {max(paired):.2f}x")
            print(
                f"  one worker keeps {cores:.2f} cores busy ({cpu:.2f} CPU-s per render), so "
                f"{os.cpu_count()} cores allow at most "
                f"{min(2.0, (os.cpu_count() or 1) / cores):.2f}x with two"
            )
        if "overhead" in parts:
            threads, celery = overhead(root, args.repeats)
            t, c = statistics.median(threads), statistics.median(celery)
            print(f"submit -> COMPLETED of a 1-frame render, median of {args.repeats} (ms)")
            print(f"  ThreadExecutor  {t * 1000:8.1f}")
            print(f"  CeleryExecutor  {c * 1000:8.1f}")
            print(f"  Celery path costs {1000 * (c - t):.1f} ms more per render")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
