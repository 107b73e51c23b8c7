"""Renders on Celery workers: throughput with 1 vs 2 workers, and the Celery path's overhead.

Contenders, on the same machine, Redis (127.0.0.1:6379) as broker, one SQLite file shared by
this process and the workers (the command line's store: projects + attempt ledger):
  throughput  --renders short renders (one per project, all submitted at once) through one
              `celery worker` vs two (solo pool, concurrency 1 each): wall time from the
              first submit to the last COMPLETED read from the database. Goal: >= 1.7x on
              two cores.
  overhead    one near-empty render at a time (FakeRenderer, 1 frame), submit to COMPLETED
              seen in the database: RenderRunner with its ThreadExecutor in this process vs
              CeleryExecutor + a worker (send, deliver, claim, load, begin, render, fenced
              complete). The difference is the Celery path's cost per render.

The throughput renders are MoviePyRenderer with one encoder thread (--renderer moviepy,
the default: CPU-bound, as real renders are) or FakeRenderer sleeping per frame (fake).

Run: .venv/bin/python benchmarks/bench_celery.py [--renders 40] [--repeats 30]
This file is also the workers' Celery app (`celery -A bench_celery worker`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from celery import Celery

from renderstate import RenderRunner, Status
from renderstate.cli._store import Project, Store
from renderstate.ledger import Ledger
from renderstate.runner.celery import CeleryExecutor, register
from renderstate.testing import FakeRenderer

ENV = "RENDERSTATE_BENCH_CELERY"
BROKER = "redis://127.0.0.1:6379/0"
LEASE = 300.0  # longer than any queue wait here: a queued attempt is not renewed
# The sample timeline (three scenes, crossfades, a tone) at 320x180: about half a second
# of CPU per render here.
TIMELINE: dict[str, Any] = {
    **json.loads(
        resources.files("renderstate.rendering").joinpath("sample_timeline.json").read_text()
    ),
    "width": 320,
    "height": 180,
}


def build_app(settings: dict[str, Any]) -> Celery:
    app = Celery("bench-celery", broker=BROKER)
    app.conf.update(
        broker_transport_options={"global_keyprefix": settings["prefix"]},
        task_default_queue=settings["queue"],
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
    )
    return app


def make_runner(settings: dict[str, Any], **options: Any) -> RenderRunner[Project]:
    store = Store(settings["db"])
    if settings["renderer"] == "moviepy":
        from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415

        renderer: Any = MoviePyRenderer(preset="ultrafast", threads=1)
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
        **values,
    }


def wait_completed(store: Store, projects: list[Project], pause: float = 0.005) -> None:
    waiting = {p.id for p in projects}
    while waiting:
        for key in list(waiting):
            status = Status(store.get(key).status)
            if status is Status.COMPLETED:
                waiting.discard(key)
            elif status is Status.FAILED:
                msg = f"project {key} FAILED: {store.current_attempt(store.get(key))}"
                raise SystemExit(msg)
        if waiting:
            time.sleep(pause)


def throughput(root: Path, workers: int, renders: int, renderer: str) -> float:
    settings = settings_for(root, renderer=renderer, frames=24, frame_delay=0.01)
    started = Workers(settings, workers, root)
    try:
        sender = make_runner(settings, executor=CeleryExecutor(build_app(settings)))
        store = Store(settings["db"])
        projects = [store.create(f"p{i}", TIMELINE, width=320, height=180) for i in range(renders)]
        began = time.perf_counter()
        for project in projects:
            sender.submit(project)
        wait_completed(store, projects, pause=0.02)
        elapsed = time.perf_counter() - began
        store.close()
        sender.shutdown()
    finally:
        started.stop()
    return renders / elapsed


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
                project = store.create("one", TIMELINE)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--renderer", choices=["moviepy", "fake"], default="moviepy")
    parser.add_argument("--parts", default="throughput,overhead")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as scratch:
        root = Path(scratch)
        if "throughput" in parts:
            one = throughput(root, 1, args.renders, args.renderer)
            two = throughput(root, 2, args.renders, args.renderer)
            print(f"throughput, {args.renders} {args.renderer} renders (renders/s)")
            print(f"  1 worker   {one:8.2f}")
            print(f"  2 workers  {two:8.2f}")
            print(f"  ratio      {two / one:8.2f}x   (goal >= 1.7x on two cores)")
        if "overhead" in parts:
            threads, celery = overhead(root, args.repeats)
            t, c = statistics.median(threads), statistics.median(celery)
            print(f"submit -> COMPLETED of a 1-frame render, median of {args.repeats} (ms)")
            print(f"  ThreadExecutor  {t * 1000:8.1f}")
            print(f"  CeleryExecutor  {c * 1000:8.1f}")
            print(f"  Celery path costs {1000 * (c - t):.1f} ms more per render")


if __name__ == "__main__":
    main()
