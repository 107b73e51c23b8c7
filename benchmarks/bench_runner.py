"""The render runner's overhead: one render through RenderRunner vs the renderer called directly.

Contenders, interleaved in one run on the same machine:
  direct   renderer(project, target, no-op progress): what a hand-written task would do
  runner   RenderRunner(...).submit(project).wait(): guarded start, a worker thread, the
           progress sink, temp file + fsync + atomic rename + directory fsync, complete()

Render times on a shared machine vary by more than the overhead, so besides the medians the
script reports the runner's own time per job, measured around the renderer call: from
submit() to the renderer's first instruction plus from its return to wait() returning.

Parts:
  moviepy  MoviePyRenderer on the sample timeline (640x360, 24 fps, 5 s). Target: <= 1.03x.
  fake     FakeRenderer with --frames frames (no I/O per frame beyond a short write): the
           fixed cost per job and the cost of reporting every frame, in absolute terms.

Run: .venv/bin/python benchmarks/bench_runner.py [--parts moviepy,fake] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from renderstate import RenderRunner, Status
from renderstate.testing import FakeRenderer, MemoryAdapter, MemoryProject


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


class Timed:
    """Wraps a renderer and remembers when its last call started and ended."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.started = self.ended = 0.0

    def __call__(self, project: Any, target: Path, progress: Any) -> None:
        self.started = time.perf_counter()
        self.inner(project, target, progress)
        self.ended = time.perf_counter()


def measure(renderer: Any, repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Return (direct s, runner s, runner's own s), alternating which goes first."""
    direct: list[float] = []
    through_runner: list[float] = []
    own: list[float] = []
    timed = Timed(renderer)
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as scratch:
        root = Path(scratch)
        project = MemoryProject(title="bench")
        runner = RenderRunner(MemoryAdapter(), timed, media_root=root / "media")

        def run_direct() -> None:
            target = root / "direct.mp4"
            start = time.perf_counter()
            renderer(project, target, _no_progress)
            direct.append(time.perf_counter() - start)
            target.unlink()

        def run_runner() -> None:
            start = time.perf_counter()
            status = runner.submit(project).wait()
            end = time.perf_counter()
            through_runner.append(end - start)
            own.append((timed.started - start) + (end - timed.ended))
            assert status is Status.COMPLETED

        order: list[Callable[[], None]] = [run_direct, run_runner]
        order[1]()  # warm-up: imports, first-render caches, the worker thread
        order[0]()
        direct.clear()
        through_runner.clear()
        own.clear()
        for i in range(repeats):
            for fn in order if i % 2 == 0 else order[::-1]:
                fn()
        runner.shutdown()
    return direct, through_runner, own


def report(
    title: str, direct: list[float], runner: list[float], own: list[float], unit: str
) -> None:
    scale = 1000.0 if unit == "ms" else 1.0
    d, r, o = statistics.median(direct), statistics.median(runner), statistics.median(own)
    print(f"\n{title}")
    print(f"| contender | median {unit} | vs direct |")
    print("|---|---:|---:|")
    print(f"| renderer called directly | {d * scale:.3f} | 1.000x |")
    print(f"| through RenderRunner | {r * scale:.3f} | {r / d:.3f}x |")
    print(
        f"runner's own time per job (outside the renderer call): median {o * 1000:.1f} ms "
        f"= {o / d * 100:.1f}% of a direct render"
    )


def part_moviepy(args: argparse.Namespace) -> None:
    # imported here so that the fake part runs without the render extra
    from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415
    from renderstate.rendering.timeline import sample_timeline  # noqa: PLC0415

    renderer = MoviePyRenderer(timeline=sample_timeline())
    direct, runner, own = measure(renderer, args.repeats)
    title = f"moviepy: sample timeline, median of {args.repeats}, interleaved"
    report(title, direct, runner, own, "s")


def part_fake(args: argparse.Namespace) -> None:
    renderer = FakeRenderer(frames=args.frames)
    direct, runner, own = measure(renderer, args.repeats * 5)
    report(
        f"fake: {args.frames} frames, progress reported per frame, median of "
        f"{args.repeats * 5}, interleaved",
        direct,
        runner,
        own,
        "ms",
    )
    sink = statistics.median(runner) - statistics.median(direct) - statistics.median(own)
    print(f"progress sink: about {sink / args.frames * 1e9:.0f} ns per reported frame")


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "moviepy": part_moviepy,
    "fake": part_fake,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="moviepy,fake", help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--repeats", type=int, default=7, help="renders per contender")
    parser.add_argument("--frames", type=int, default=10_000, help="frames of the fake render")
    args = parser.parse_args()
    for name in args.parts.split(","):
        PARTS[name.strip()](args)


if __name__ == "__main__":
    main()
