"""Validate reference timelines with parse_timeline and load_timeline; optionally compare two trees.

Time, the fastest of interleaved rounds (the machine may be busy):
  sample      the demo's sample timeline (3 scenes, a tone), parsed from its mapping
  docs        docs/timeline.md's example (an image, an audio file), parsed from its mapping
  large       100 scenes (colours, titles, crossfades, every 10th with an image), a tone
  load        the large timeline read from a JSON file with load_timeline()
  import      a fresh interpreter importing renderstate.rendering.timeline (once per round)
  cold        a fresh interpreter importing it and parsing the sample once (pydantic included)

Run: .venv/bin/python benchmarks/bench_timeline.py [--loops N] [--repeats R]
Compare with another source tree (e.g. the commit before the pydantic schema), which runs this
same script under both trees and prints after/before ratios:
  git archive <commit> src | tar -x -C /tmp/before
  .venv/bin/python benchmarks/bench_timeline.py --before /tmp/before/src
Target: no case slower than 1.25x the hand-written validation it replaced, but "cold" (the
first validation imports pydantic once per process). Figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

from renderstate.rendering.timeline import load_timeline, parse_timeline

SAMPLE = Path(__file__).parents[1] / "src" / "renderstate" / "rendering" / "sample_timeline.json"

DOCS: dict[str, Any] = {
    "width": 1280,
    "height": 720,
    "fps": 30,
    "background": "#10243e",
    "scenes": [
        {"duration": 3, "title": "Our trip", "subtitle": "summer 2026"},
        {"duration": 4, "image": "pictures/beach.jpg", "title": "The beach", "crossfade": 1},
        {"duration": 3, "background": "#5b1f3a", "title": "The end", "crossfade": 0.5},
    ],
    "soundtrack": {"file": "music/theme.mp3", "volume": 0.8},
}


def large() -> dict[str, Any]:
    scenes: list[dict[str, Any]] = []
    for i in range(100):
        scene: dict[str, Any] = {
            "duration": 2.5,
            "title": f"Scene {i}",
            "subtitle": "a subtitle under the title",
            "background": f"#{i:02x}30{255 - i:02x}",
            "text_color": [255, 255, i],
        }
        if i:
            scene["crossfade"] = 0.5
        if i % 10 == 0:
            scene["image"] = "pictures/beach.jpg"
        scenes.append(scene)
    return {"width": 1280, "height": 720, "fps": 30, "scenes": scenes, "soundtrack": {"tone": 440}}


def measure(loops: int, repeats: int) -> dict[str, float]:
    """The fastest seconds per call of each case (the least disturbed by other work)."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for relative in ("pictures/beach.jpg", "music/theme.mp3"):
            (base / relative).parent.mkdir(exist_ok=True)
            (base / relative).write_bytes(b"")
        sample = json.loads(SAMPLE.read_text(encoding="utf-8"))
        big = large()
        (base / "large.json").write_text(json.dumps(big), encoding="utf-8")
        cases = {
            "sample": lambda: parse_timeline(sample, base_dir=base),
            "docs": lambda: parse_timeline(DOCS, base_dir=base),
            "large": lambda: parse_timeline(big, base_dir=base),
            "load": lambda: load_timeline(base / "large.json"),
        }
        for case in cases.values():  # the first call imports pydantic and builds the schema
            case()
        times: dict[str, list[float]] = {name: [] for name in cases}
        fresh = {
            "import": "import renderstate.rendering.timeline",
            "cold": (
                "import json, renderstate.rendering.timeline as t\n"
                f"t.parse_timeline(json.loads(open({str(SAMPLE)!r}).read()))"
            ),
        }
        times.update({name: [] for name in fresh})
        for _ in range(repeats):
            for name, case in cases.items():
                scale = 1 if name in ("sample", "docs") else 20
                n = max(1, loops // scale)
                times[name].append(timeit.timeit(case, number=n) / n)
            for name, code in fresh.items():
                started = timeit.default_timer()
                subprocess.run([sys.executable, "-c", code], check=True)
                times[name].append(timeit.default_timer() - started)
        return {name: min(values) for name, values in times.items()}


def run_under(src: str, loops: int, repeats: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, __file__, "--loops", str(loops), "--repeats", str(repeats), "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the medians as JSON")
    parser.add_argument("--before", help="another tree's src/ directory to compare against")
    args = parser.parse_args()
    if args.before:
        after_src = str(Path(__file__).parents[1] / "src")
        # Rounds alternate between the trees, so a busy machine slows both alike.
        rounds: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for _ in range(args.repeats):
            rounds["before"].append(run_under(args.before, args.loops, 1))
            rounds["after"].append(run_under(after_src, args.loops, 1))
        before, after = (
            {name: statistics.median(r[name] for r in rounds[tree]) for name in rounds[tree][0]}
            for tree in ("before", "after")
        )
        print(f"{'case':8} {'before':>12} {'after':>12} {'after/before':>13}")
        for name in before:
            ratio = after[name] / before[name]
            print(
                f"{name:8} {before[name] * 1e6:10.1f}us {after[name] * 1e6:10.1f}us {ratio:12.2f}x"
            )
        return
    result = measure(args.loops, args.repeats)
    if args.json:
        print(json.dumps(result))
        return
    for name, seconds in result.items():
        print(f"{name:8} {seconds * 1e6:10.1f} us")


if __name__ == "__main__":
    main()
