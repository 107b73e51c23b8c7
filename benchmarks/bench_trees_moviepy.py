"""Two source trees, interleaved: MoviePyRenderer re-renders of the sample timeline through
RenderRunner (InlineExecutor, MemoryAdapter), each tree in child processes of its own.

Run from the project root::

    .venv/bin/python benchmarks/bench_trees_moviepy.py BASELINE_SRC CANDIDATE_SRC ROUNDS RENDERS

Each round runs one child per tree (which goes first alternates), each doing RENDERS timed
re-renders after a warm-up render; it prints the median over all re-renders per tree, their
ratio candidate/baseline, and the range and median of the per-round ratios.
"""

import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
from renderstate import RenderRunner, Status
from renderstate.rendering.moviepy import MoviePyRenderer
from renderstate.rendering.timeline import sample_timeline
from renderstate.testing import InlineExecutor, MemoryAdapter, MemoryProject
r = MoviePyRenderer(timeline=sample_timeline())
out = []
with tempfile.TemporaryDirectory() as d:
    with RenderRunner(MemoryAdapter(), r, media_root=d, executor=InlineExecutor()) as runner:
        p = MemoryProject()
        runner.submit(p).wait()  # warm-up, and final.mp4 exists
        for _ in range(int(sys.argv[1])):
            t = time.perf_counter()
            assert runner.submit(p).wait() is Status.COMPLETED
            out.append(time.perf_counter() - t)
print(json.dumps(out))
"""
trees = {"baseline": sys.argv[1], "candidate": sys.argv[2]}
times = {k: [] for k in trees}
ratios = []
for rnd in range(int(sys.argv[3])):
    order = list(trees) if rnd % 2 == 0 else list(reversed(trees))
    med = {}
    for k in order:
        env = dict(os.environ, PYTHONPATH=trees[k])
        run = subprocess.run(
            [sys.executable, "-c", CHILD, sys.argv[4]],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        got = json.loads(run.stdout)
        times[k] += got
        med[k] = statistics.median(got)
    ratios.append(med["candidate"] / med["baseline"])
b, c = statistics.median(times["baseline"]), statistics.median(times["candidate"])
print(
    f"baseline {b * 1000:.0f} ms, candidate {c * 1000:.0f} ms, ratio {c / b:.3f}x, "
    f"per round {min(ratios):.2f}x..{max(ratios):.2f}x, "
    f"median round ratio {statistics.median(ratios):.3f}x"
)
