"""The renderer against an earlier version of itself, side by side, as ratios.

Each round renders, in turn and in fresh child processes, four cases with this tree's
``src`` and with the baseline's (``--baseline``, the ``src`` folder of an older checkout):

- ``reference``: the reference timeline of ``bench_render.py`` (colour scenes, a tone);
- ``pictures``: the same with a photograph behind each title;
- ``soundtrack``: the reference timeline with a WAV file as its soundtrack instead of a tone;
- ``runner``: the sample timeline re-rendered through ``RenderRunner`` (inline executor,
  memory adapter): the renderer with the runner's publishing around it.

The order of the two versions alternates each round. In each child one untimed render warms
imports and caches, then the median of three renders' wall time and CPU time (the child and
every ffmpeg it started) is recorded; the report gives,
per timeline, the median ratio (this tree / baseline) with its per-round range, and the
machine's load before and after.

Example (issue 24's "speed within 5 % of today's", against eee590b)::

    git worktree add --detach /tmp/base eee590b
    .venv/bin/python benchmarks/bench_against.py --baseline /tmp/base/src --rounds 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "src"

CHILD = """
import json, resource, statistics, sys, time
sys.path.insert(0, {benchmarks!r})
from pathlib import Path
import renderstate
assert renderstate.__file__.startswith({src!r}), renderstate.__file__
import bench_render as b
from renderstate.rendering.moviepy import MoviePyRenderer, no_progress
from renderstate.rendering.timeline import parse_timeline
case, target, wav, repeats = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])

if case == "runner":  # the sample timeline re-rendered through RenderRunner
    import tempfile
    from renderstate import RenderRunner, Status
    from renderstate.rendering.timeline import sample_timeline
    from renderstate.testing import InlineExecutor, MemoryAdapter, MemoryProject
    media = tempfile.mkdtemp()
    runner = RenderRunner(
        MemoryAdapter(), MoviePyRenderer(timeline=sample_timeline()), media_root=media,
        executor=InlineExecutor(),
    )
    project = MemoryProject()

def render():
    if case == "runner":
        assert runner.submit(project).wait() is Status.COMPLETED
        return
    target.unlink(missing_ok=True)
    if case == "reference":
        b.render_renderstate(target)
    elif case == "pictures":
        b.render_pictures(target)
    else:
        spec = dict(b.REFERENCE, soundtrack={{"file": Path(wav).name}})
        timeline = parse_timeline(spec, base_dir=Path(wav).parent)
        MoviePyRenderer(timeline=timeline, preset=b.PRESET, crf=b.CRF)(None, target, no_progress)
    assert target.stat().st_size > 0

def cpu():
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

render()  # warm: imports, fonts, caches
walls, cpus = [], []
for _ in range(repeats):
    start_wall, start_cpu = time.perf_counter(), cpu()
    render()
    walls.append(time.perf_counter() - start_wall)
    cpus.append(cpu() - start_cpu)
print(json.dumps([statistics.median(walls), statistics.median(cpus)]))
"""
CASES = ("reference", "pictures", "soundtrack", "runner")
REPEATS = 3


def write_wav(path: Path, seconds: float = 12.0, rate: int = 44100) -> None:
    """A stereo 16-bit chirp, longer than the video, so it is cut at the video's end."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.25 * np.sin(2 * np.pi * (220 + 40 * t) * t)
    samples = (np.stack([tone, tone], axis=1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def run(src: Path, case: str, directory: Path, wav: Path) -> tuple[float, float]:
    """Median wall and CPU seconds of a render in a fresh child process using ``src``.

    The child renders once untimed (imports, fonts, caches: what a long-lived worker has
    paid already), then :data:`REPEATS` times; CPU time counts ffmpeg's too.
    """
    target = directory / f"{case}.mp4"
    target.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(src))
    code = CHILD.format(benchmarks=str(HERE), src=str(src))
    out = subprocess.run(
        [sys.executable, "-c", code, case, str(target), str(wav), str(REPEATS)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wall, cpu = json.loads(out.strip().splitlines()[-1])
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the older tree's src")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cases", default=",".join(CASES), help=f"any of {','.join(CASES)}")
    args = parser.parse_args()
    baseline = args.baseline.resolve()
    if not (baseline / "renderstate" / "__init__.py").is_file():
        parser.error(f"--baseline {baseline} holds no renderstate package; give a tree's src")
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; use any of {','.join(CASES)}")
    trees = {"this": SOURCE, "baseline": baseline}
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        wav = directory / "soundtrack.wav"
        write_wav(wav)
        for round_ in range(args.rounds):
            order = list(trees.items())
            if round_ % 2:
                order.reverse()
            for case in cases:
                for name, src in order:
                    results.setdefault((case, name), []).append(run(src, case, directory, wav))
    load_after = os.getloadavg()[0]
    print(f"this tree: {SOURCE}\nbaseline:  {baseline}")
    print(
        f"{args.rounds} interleaved rounds; load {load_before:.1f} before, {load_after:.1f} after"
    )
    print(f"{'timeline':<12} {'wall ratio':>11} {'range':>15} {'CPU ratio':>10} {'range':>15}")
    for case in cases:
        mine, base = results[(case, "this")], results[(case, "baseline")]
        cells = []
        for index in (0, 1):
            ratios = [m[index] / b[index] for m, b in zip(mine, base, strict=True)]
            cells.append(
                f"{statistics.median(ratios):>10.3f}x {min(ratios):>6.3f}-{max(ratios):.3f}x"
            )
        print(f"{case:<12} {cells[0]:>27} {cells[1]:>26}")


if __name__ == "__main__":
    main()
