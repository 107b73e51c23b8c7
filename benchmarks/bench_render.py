"""Rendering benchmarks: MoviePyRenderer against naive moviepy and against ffmpeg alone.

Parts (each a function taking the parsed arguments; add yours to PARTS):
  rendering  (1) the reference timeline (10 s, 1280x720, 30 fps, three titled scenes, a tone)
             rendered by MoviePyRenderer, by the naive moviepy composition of the same
             timeline (per scene a CompositeVideoClip of ColorClip + TextClip, audio from a
             frame function), and by ffmpeg alone fed the three scene pictures as looped
             PNGs (the "PNG-loop floor"), plus ffmpeg encoding a lavfi colour source; all
             with the same preset and crf, interleaved rounds, medians of --repeats.
             Targets: MoviePyRenderer <= 0.5x the PNG-loop floor and <= 0.06x naive.
  runner     (2) the reference timeline through RenderRunner (submit + wait) vs the renderer
             called directly, interleaved; also the runner's own time per job.
             Target: <= 1.03x.
  rss        (3) peak RSS growth over --renders renders of the sample timeline in one process,
             and that no ffmpeg process or temporary file is left. Target: <= 30 MB.
  memory     (4) peak memory of renders of 1080p timelines of --minutes lengths (10 s scenes,
             1 s crossfades, a tone), each in a fresh process: the Python process's peak
             RSS and tracemalloc peak, and ffmpeg's peak RSS. Target: flat in the duration.
  stills     (5) in one interleaved run: the reference timeline's time vs the PNG-loop
             floor (target <= 0.20x), its size vs the one-pass encode (repeat_stills=False,
             same preset and crf; target <= 1.10x), a minute of stills with a crossfade
             likewise, and the reference timeline with a photograph behind each title
             vs its own PNG-loop floor (target <= 0.25x); per-round ranges, load average.

Run: .venv/bin/python benchmarks/bench_render.py [--parts stills,rendering,rss,memory] [--repeats 3]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
from moviepy import AudioClip, ColorClip, CompositeVideoClip, TextClip, concatenate_videoclips
from PIL import Image

from renderstate.rendering._frames import draw_scene
from renderstate.rendering.moviepy import MoviePyRenderer, no_progress
from renderstate.rendering.timeline import Timeline, parse_timeline, sample_timeline

WIDTH, HEIGHT, FPS, TONE = 1280, 720, 30, 440.0
PRESET, CRF = "medium", 23
SCENES = [
    {"duration": 3.4, "background": "#10243e", "title": "Chapter one"},
    {"duration": 3.3, "background": "#1f4e3d", "title": "Chapter two"},
    {"duration": 3.3, "background": "#5b1f3a", "title": "The end"},
]
REFERENCE: dict[str, Any] = {
    "width": WIDTH,
    "height": HEIGHT,
    "fps": FPS,
    "scenes": SCENES,
    "soundtrack": {"tone": TONE},
}


def reference_timeline() -> Timeline:
    """The reference timeline of part (1)."""
    return parse_timeline(REFERENCE)


# ---------------------------------------------------------------- contenders


def render_renderstate(target: Path) -> None:
    """MoviePyRenderer on the reference timeline."""
    MoviePyRenderer(timeline=reference_timeline(), preset=PRESET, crf=CRF)(
        None, target, no_progress
    )


def render_naive(target: Path) -> None:
    """What one writes first with moviepy: a composite per scene, concatenated."""
    timeline = reference_timeline()
    scenes = []
    for scene in timeline.scenes:
        background = ColorClip((WIDTH, HEIGHT), color=scene.background, duration=scene.duration)
        title = (
            TextClip(text=scene.title, font_size=HEIGHT // 10, color="white")
            .with_duration(scene.duration)
            .with_position("center")
        )
        scenes.append(CompositeVideoClip([background, title]))
    video = concatenate_videoclips(scenes)

    def sound(t: Any) -> Any:
        wave = 0.25 * np.sin(2 * np.pi * TONE * np.asarray(t))
        return np.array([wave, wave]).T

    audio = AudioClip(sound, duration=timeline.duration, fps=44100)
    clip = video.with_audio(audio)
    with tempfile.TemporaryDirectory() as scratch:
        clip.write_videofile(
            str(target),
            fps=FPS,
            codec="libx264",
            audio_codec="aac",
            preset=PRESET,
            ffmpeg_params=["-crf", str(CRF), "-movflags", "+faststart"],
            temp_audiofile_path=scratch,
            logger=None,
        )
    for owned in (clip, video, audio, *scenes):
        owned.close()


def render_encoder_floor(target: Path) -> None:
    """ffmpeg alone: a synthetic colour source and a sine, same codec settings."""
    duration = reference_timeline().duration
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"color=c=0x10243e:s={WIDTH}x{HEIGHT}:r={FPS}:d={duration}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={TONE:g}:duration={duration}",
            "-c:v",
            "libx264",
            "-preset",
            PRESET,
            "-crf",
            str(CRF),
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
            str(target),
        ],
        check=True,
    )


_PNG_DIR = Path(tempfile.mkdtemp(prefix="bench-render-png-"))
atexit.register(shutil.rmtree, _PNG_DIR, ignore_errors=True)


def scene_pngs(timeline: Timeline | None = None, name: str = "scene") -> list[Path]:
    """The scenes' composed pictures as PNG files, drawn once (outside any timing)."""
    paths = []
    for index, scene in enumerate((timeline or reference_timeline()).scenes):
        path = _PNG_DIR / f"{name}{index}.png"
        if not path.exists():
            Image.fromarray(draw_scene(scene, WIDTH, HEIGHT, index=index)).save(path)
        paths.append(path)
    return paths


def photographs() -> list[Path]:
    """Three 1280x720 JPEG "photographs" (seeded: smooth shapes, texture, grain)."""
    paths = []
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    for index in range(3):
        path = _PNG_DIR / f"photo{index}.jpg"
        if not path.exists():
            rng = np.random.default_rng(index)
            channels = []
            for channel in range(3):
                phase = rng.uniform(0, 6.28, 4)
                wave = (
                    np.sin(x / (40 + 17 * channel) + phase[0]) * 50
                    + np.cos(y / (31 + 11 * index) + phase[1]) * 40
                    + np.sin((x + y) / 97 + phase[2]) * 30
                )
                channels.append(wave + 120 + rng.normal(0, 6, (HEIGHT, WIDTH)))
            picture = np.clip(np.dstack(channels), 0, 255).astype(np.uint8)
            Image.fromarray(picture).save(path, quality=90)
        paths.append(path)
    return paths


def picture_timeline() -> Timeline:
    """The reference timeline with a photograph behind each title instead of a colour."""
    scenes = [
        {**scene, "image": path.name} for scene, path in zip(SCENES, photographs(), strict=True)
    ]
    return parse_timeline({**REFERENCE, "scenes": scenes}, base_dir=_PNG_DIR)


def render_pictures(target: Path) -> None:
    """MoviePyRenderer on the picture timeline."""
    MoviePyRenderer(timeline=picture_timeline(), preset=PRESET, crf=CRF)(None, target, no_progress)


def render_pictures_one_pass(target: Path) -> None:
    """MoviePyRenderer on the picture timeline, every frame encoded (repeat_stills=False)."""
    MoviePyRenderer(timeline=picture_timeline(), preset=PRESET, crf=CRF, repeat_stills=False)(
        None, target, no_progress
    )


def render_pictures_floor(target: Path) -> None:
    """ffmpeg alone looping the picture timeline's composed frames (its PNG-loop floor)."""
    png_loop(picture_timeline(), scene_pngs(picture_timeline(), "picture"), target)


def render_one_pass(target: Path) -> None:
    """MoviePyRenderer on the reference timeline, every frame encoded (repeat_stills=False)."""
    MoviePyRenderer(timeline=reference_timeline(), preset=PRESET, crf=CRF, repeat_stills=False)(
        None, target, no_progress
    )


def render_minute(target: Path) -> None:
    """MoviePyRenderer on a minute of 720p stills with one crossfade."""
    MoviePyRenderer(timeline=minute_timeline(), preset=PRESET, crf=CRF)(None, target, no_progress)


def render_minute_one_pass(target: Path) -> None:
    """The same minute, every frame encoded (repeat_stills=False)."""
    MoviePyRenderer(timeline=minute_timeline(), preset=PRESET, crf=CRF, repeat_stills=False)(
        None, target, no_progress
    )


def minute_timeline() -> Timeline:
    """A minute of 720p titled stills, two scenes joined by a 1 s crossfade, and a tone."""
    scenes = [{**SCENES[0], "duration": 30.0}, {**SCENES[1], "duration": 31.0, "crossfade": 1.0}]
    return parse_timeline({**REFERENCE, "scenes": scenes})


def render_png_loop_floor(target: Path) -> None:
    """ffmpeg alone: each scene's PNG looped for its duration, concatenated, and the tone."""
    png_loop(reference_timeline(), scene_pngs(), target)


def png_loop(timeline: Timeline, pngs: list[Path], target: Path) -> None:
    """ffmpeg alone looping ``pngs`` (the scenes' composed frames) for their durations."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error"]
    for path, scene in zip(pngs, timeline.scenes, strict=True):
        command += ["-loop", "1", "-framerate", str(FPS), "-t", str(scene.duration)]
        command += ["-i", str(path)]
    inputs = "".join(f"[{i}:v]" for i in range(len(timeline.scenes)))
    count = len(timeline.scenes)
    command += [
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={TONE:g}:duration={timeline.duration}",
        "-filter_complex",
        f"{inputs}concat=n={count}:v=1:a=0,format=yuv420p[v]",
        "-map",
        "[v]",
        "-map",
        f"{count}:a",
        "-c:v",
        "libx264",
        "-preset",
        PRESET,
        "-crf",
        str(CRF),
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
        str(target),
    ]
    subprocess.run(command, check=True)


# ---------------------------------------------------------------- parts


def timed(fn: Callable[[Path], None], directory: Path) -> float:
    """Seconds ``fn`` takes to write a fresh file in ``directory``."""
    target = directory / f"{fn.__name__}.mp4"
    target.unlink(missing_ok=True)
    start = time.perf_counter()
    fn(target)
    elapsed = time.perf_counter() - start
    assert target.stat().st_size > 0
    return elapsed


def part_rendering(args: argparse.Namespace) -> None:
    """(1) MoviePyRenderer vs naive moviepy vs ffmpeg alone, interleaved rounds."""
    scene_pngs()
    contenders = [render_renderstate, render_naive, render_png_loop_floor, render_encoder_floor]
    times: dict[str, list[float]] = {fn.__name__: [] for fn in contenders}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeats):
            for fn in contenders:
                times[fn.__name__].append(timed(fn, Path(scratch)))
        sizes = {name: (Path(scratch) / f"{name}.mp4").stat().st_size for name in times}
    medians = {name: statistics.median(values) for name, values in times.items()}
    naive = medians["render_naive"]
    floor = medians["render_png_loop_floor"]
    print(
        f"(1) reference timeline: {reference_timeline().duration:g} s, {WIDTH}x{HEIGHT}, "
        f"{FPS} fps, 3 titled scenes + tone; preset {PRESET}, crf {CRF}; "
        f"median of {args.repeats} interleaved rounds"
    )
    print("| contender | median s | vs PNG-loop floor | vs naive |")
    print("|---|---:|---:|---:|")
    labels = {
        "render_renderstate": "MoviePyRenderer",
        "render_naive": "naive moviepy (CompositeVideoClip per scene)",
        "render_png_loop_floor": "ffmpeg alone, looped scene PNGs (the floor)",
        "render_encoder_floor": "ffmpeg alone, lavfi colour + sine",
    }
    for name, label in labels.items():
        median = medians[name]
        print(f"| {label} | {median:.2f} | {median / floor:.3f}x | {median / naive:.3f}x |")
    ours = medians["render_renderstate"]
    mine = times["render_renderstate"]
    floor_rounds = [r / b for r, b in zip(mine, times["render_png_loop_floor"], strict=True)]
    naive_rounds = [r / b for r, b in zip(mine, times["render_naive"], strict=True)]
    print(
        f"\nMoviePyRenderer / PNG-loop floor = {ours / floor:.3f}x "
        f"({'meets' if ours / floor <= 0.5 else 'MISSES'} the <= 0.5x target; per round "
        f"{min(floor_rounds):.3f}-{max(floor_rounds):.3f}x); MoviePyRenderer / naive = "
        f"{ours / naive:.3f}x ({'meets' if ours / naive <= 0.06 else 'MISSES'} the <= 0.06x "
        f"target; per round {min(naive_rounds):.3f}-{max(naive_rounds):.3f}x)"
    )
    print(
        "file sizes (KB): "
        + ", ".join(f"{labels[name]} {size / 1000:.0f}" for name, size in sizes.items())
    )


def _range(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}x"


def part_stills(args: argparse.Namespace) -> None:
    """(5) Speed vs the floor, size vs the one-pass encode, pictures vs their floor.

    One interleaved run: each round renders, in turn, the reference timeline (and its
    PNG-loop floor, and its one-pass encode), the picture timeline (and its floor and
    one-pass encode), and a
    minute of stills with a crossfade (and its one-pass encode); the order rotates every
    round so no contender always follows the same one. Ratios are per round, so a load
    change between rounds moves both sides of a ratio alike.
    """
    scene_pngs()
    scene_pngs(picture_timeline(), "picture")
    contenders = [
        render_renderstate,
        render_png_loop_floor,
        render_one_pass,
        render_pictures,
        render_pictures_floor,
        render_pictures_one_pass,
        render_minute,
        render_minute_one_pass,
    ]
    times: dict[str, list[float]] = {fn.__name__: [] for fn in contenders}
    sizes: dict[str, list[int]] = {fn.__name__: [] for fn in contenders}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.repeats):
            shift = round_ % len(contenders)
            for fn in contenders[shift:] + contenders[:shift]:
                times[fn.__name__].append(timed(fn, Path(scratch)))
                sizes[fn.__name__].append((Path(scratch) / f"{fn.__name__}.mp4").stat().st_size)
            loads.append(os.getloadavg()[0])

    def ratios(mine: str, base: str, table: dict[str, list[Any]]) -> list[float]:
        return [a / b for a, b in zip(table[mine], table[base], strict=True)]

    speed = ratios("render_renderstate", "render_png_loop_floor", times)
    pictures = ratios("render_pictures", "render_pictures_floor", times)
    pictures_size = ratios("render_pictures", "render_pictures_one_pass", sizes)
    size = ratios("render_renderstate", "render_one_pass", sizes)
    minute = ratios("render_minute", "render_minute_one_pass", sizes)
    minute_speed = ratios("render_minute", "render_minute_one_pass", times)
    print(
        f"(5) still stretches, {args.repeats} interleaved rounds (rotating order), preset "
        f"{PRESET}, crf {CRF}; load average (1 min) {min(loads):.1f}-{max(loads):.1f} "
        f"(start {loads[0]:.1f}, end {loads[-1]:.1f})"
    )
    print("| measure | median | per round | target |")
    print("|---|---:|---:|---:|")
    rows = [
        ("reference timeline, time / PNG-loop floor", speed, "<= 0.20x"),
        ("reference timeline, size / one-pass encode", size, "<= 1.10x"),
        ("minute of stills + crossfade, size / one-pass", minute, "<= 1.10x"),
        ("minute of stills + crossfade, time / one-pass", minute_speed, ""),
        ("picture timeline, time / its PNG-loop floor", pictures, "<= 0.25x"),
        ("picture timeline, size / its one-pass encode", pictures_size, "<= 1.10x"),
    ]
    for label, values, target in rows:
        print(f"| {label} | {statistics.median(values):.3f}x | {_range(values)} | {target} |")
    print("\n| contender | median s | median KB |")
    print("|---|---:|---:|")
    for fn in contenders:
        name = fn.__name__
        print(
            f"| {(fn.__doc__ or name).splitlines()[0]} | {statistics.median(times[name]):.2f} "
            f"| {statistics.median(sizes[name]) / 1000:.0f} |"
        )


def part_runner_overhead(args: argparse.Namespace) -> None:
    """(2) The reference timeline through RenderRunner vs the renderer called directly.

    Uses bench_runner.measure(): interleaved, alternating which goes first, with the
    runner's own time (outside the renderer call) measured per job as well.
    """
    from bench_runner import measure, report  # noqa: PLC0415 - a sibling script

    renderer = MoviePyRenderer(timeline=reference_timeline(), preset=PRESET, crf=CRF)
    direct, runner, own = measure(renderer, args.repeats)
    report(
        f"(2) reference timeline through RenderRunner vs direct, median of {args.repeats}, "
        f"interleaved (target: <= 1.03x)",
        direct,
        runner,
        own,
        "s",
    )


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ffmpeg_children() -> list[int]:
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me and b"ffmpeg" in cmdline:
                found.append(int(entry.name))
    return found


def part_rss(args: argparse.Namespace) -> None:
    """(3) Peak RSS growth over N renders of the sample timeline in one process.

    The peak is process-wide: run this part on its own (``--parts rss``), or part (1)'s
    naive contender sets a peak that hides any growth here.
    """
    renderer = MoviePyRenderer(timeline=sample_timeline())
    with tempfile.TemporaryDirectory() as scratch:
        private = Path(scratch) / "tmp"
        private.mkdir()
        tempfile.tempdir = str(private)  # every temporary file of a render lands here
        try:
            target = Path(scratch) / "final.mp4"
            renderer(None, target, no_progress)  # warm-up: imports, fonts, first allocations
            peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rss_before = _rss_mb()
            for _ in range(args.renders):
                renderer(None, target, no_progress)
            peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rss_after = _rss_mb()
            leftovers = sorted(p.name for p in private.iterdir())
            stray = sorted(
                p.name for p in Path(scratch).iterdir() if p.name not in {"tmp", target.name}
            )
        finally:
            tempfile.tempdir = None
    print(
        f"(3) {args.renders} renders of the sample timeline (640x360, 24 fps, 5 s) in one process"
    )
    growth = peak_after - peak_before
    print(f"peak RSS {peak_before:.1f} -> {peak_after:.1f} MB (growth {growth:.1f} MB)")
    print(f"current RSS {rss_before:.1f} -> {rss_after:.1f} MB")
    print(f"ffmpeg children left: {_ffmpeg_children()}; temporary files left: {leftovers + stray}")


def long_timeline(minutes: float) -> dict[str, Any]:
    """A 1080p timeline of ``minutes``: 10 s titled scenes with 1 s crossfades, and a tone."""
    count = max(1, round(minutes * 60 / 9))  # each scene after the first adds 9 s
    colours = ["#10243e", "#1f4e3d", "#5b1f3a", "#3a3a10"]
    return {
        "width": 1920,
        "height": 1080,
        "fps": 30,
        "scenes": [
            {
                "duration": 10,
                "background": colours[index % len(colours)],
                "title": f"Scene {index + 1}",
                "crossfade": 1 if index else 0,
            }
            for index in range(count)
        ],
        "soundtrack": {"tone": TONE},
    }


def memory_child(minutes: float, preset: str) -> None:
    """Render a long timeline in this (fresh) process and print its peak figures as JSON."""
    import tracemalloc  # noqa: PLC0415 - only the child measures

    timeline = parse_timeline(long_timeline(minutes))
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "long.mp4"
        tracemalloc.start()
        start = time.perf_counter()
        MoviePyRenderer(timeline=timeline, preset=preset)(None, target, no_progress)
        seconds = time.perf_counter() - start
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = target.stat().st_size
    print(
        json.dumps(
            {
                "duration": timeline.duration,
                "seconds": seconds,
                "python_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "traced_peak_mb": traced_peak / 2**20,
                "ffmpeg_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                "file_mb": size / 2**20,
            }
        )
    )


def part_memory(args: argparse.Namespace) -> None:
    """(4) Peak memory of 1080p renders of growing length, each in a fresh process."""
    print(
        f"(4) 1080p 30 fps timelines (10 s titled scenes, 1 s crossfades, tone), preset "
        f"{args.memory_preset}, each rendered in a fresh process"
    )
    print(
        "| timeline | render s | Python peak RSS MB | tracemalloc peak MB "
        "| ffmpeg peak RSS MB | file MB |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for minutes in args.minutes:
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--memory-child",
                str(minutes),
                "--memory-preset",
                args.memory_preset,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        row = json.loads(output.strip().splitlines()[-1])
        print(
            f"| {row['duration'] / 60:.1f} min | {row['seconds']:.1f} "
            f"| {row['python_peak_rss_mb']:.1f} | {row['traced_peak_mb']:.1f} "
            f"| {row['ffmpeg_peak_rss_mb']:.1f} | {row['file_mb']:.1f} |"
        )


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "rendering": part_rendering,
    "runner": part_runner_overhead,
    "rss": part_rss,
    "memory": part_memory,
    "stills": part_stills,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts",
        default="rendering,runner,rss,memory,stills",
        help=f"any of {', '.join(PARTS)}",
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds in (1), (2) and (5)")
    parser.add_argument("--renders", type=int, default=20, help="renders in (3)")
    parser.add_argument(
        "--minutes", type=float, nargs="+", default=[1.0, 10.0], help="timelines in (4)"
    )
    parser.add_argument("--memory-preset", default="ultrafast", help="x264 preset in (4)")
    parser.add_argument("--memory-child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child, args.memory_preset)
        return
    for name in args.parts.split(","):
        PARTS[name](args)
        print()


if __name__ == "__main__":
    main()
