"""Still stretches: as small as the one-pass encode, and every frame exactly where it was."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moviepy", reason="needs the render extra")

import imageio_ffmpeg
import numpy as np
from PIL import Image

from renderstate.rendering._frames import SceneFrames, frame_function, frame_runs
from renderstate.rendering._pieces import frame_number_period, plan_pieces
from renderstate.rendering.moviepy import MoviePyRenderer
from renderstate.rendering.timeline import frame_count, parse_timeline

from .media import assert_browser_ready, decoded_frames

pytestmark = pytest.mark.slow

WIDTH, HEIGHT, FPS = 320, 180, 25


def timeline(*durations: float, crossfade: float = 0.0, **extra: Any) -> dict[str, Any]:
    colours = ["#10243e", "#1f4e3d", "#5b1f3a"]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "fps": FPS,
        "scenes": [
            {
                "duration": duration,
                "background": colours[index % 3],
                "title": f"Chapter {index + 1}",
                "subtitle": "a still stretch",
                "crossfade": crossfade if index else 0,
            }
            for index, duration in enumerate(durations)
        ],
        **extra,
    }


def assert_every_frame_is_drawn(
    path: Path, data: dict[str, Any], preset: str = "medium", base_dir: Path | None = None
) -> None:
    """Decode every frame: each is the drawn picture (or crossfade) for its time, within
    H.264's loss, and every frame of every repetition of a block is, bit for bit, the
    frame shown just before that repetition (a repeated block copies, it never drifts)."""
    parsed = parse_timeline(data, base_dir=base_dir)
    assert parsed.fps is not None
    count = frame_count(parsed.duration, parsed.fps)
    frame = frame_function(parsed, SceneFrames(parsed, WIDTH, HEIGHT))
    frames = decoded_frames(path)
    assert len(frames) == count
    for index, got in enumerate(frames):
        want = frame(index / parsed.fps)
        error = np.abs(got.astype(int) - want.astype(int))
        assert error.mean() < 5, index
        # PSNR against the drawn picture: x264 at crf 23 keeps it above 30 dB.
        mse = float((error.astype(float) ** 2).mean())
        assert mse == 0 or 10 * np.log10(255**2 / mse) > 30, index
    plan = plan_pieces(
        frame_runs(parsed, parsed.fps, count),
        frame_number_period(preset),
        [True] * len(parsed.scenes),
    )
    position = copies = 0
    for index in plan.playlist:
        length = sum(run.end - run.start for run in plan.pieces[index])
        if index in plan.copies:
            shown = frames[position : position + length]
            assert (shown == frames[position - 1]).all(), position
            copies += 1
        position += length
    assert position == count
    if count >= 400:
        assert copies > 10


@pytest.mark.parametrize("crossfade", [0.0, 1.0])
def test_still_stretches_are_about_the_size_of_the_one_pass_encode(
    tmp_path: Path, crossfade: float
) -> None:
    """Two long titled stills (with or without a crossfade between them): the file is at
    most 1.10x the one-pass encode's at the same preset and crf, and shows the same
    frames, every one of them, at their times."""
    data = timeline(21.0, 22.0, crossfade=crossfade, soundtrack={"tone": 440})
    MoviePyRenderer(timeline=data, repeat_stills=False)(None, tmp_path / "whole.mp4")
    MoviePyRenderer(timeline=data)(None, tmp_path / "stills.mp4")
    whole = (tmp_path / "whole.mp4").stat().st_size
    stills = (tmp_path / "stills.mp4").stat().st_size
    assert stills <= 1.10 * whole, (stills, whole)
    frames = frame_count(parse_timeline(data).duration, FPS)
    assert_browser_ready(tmp_path / "stills.mp4", frames=frames, fps=FPS, audio=True)
    assert_every_frame_is_drawn(tmp_path / "stills.mp4", data)


def frame_numbers(path: Path) -> tuple[int, list[tuple[bool, int]]]:
    """``(log2_max_frame_num, [(IDR?, frame_num) per slice])`` from the H.264 headers."""
    trace = subprocess.run(
        [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)),
            *("-map", "0:v", "-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    bits = [int(v) + 4 for v in re.findall(r"log2_max_frame_num_minus4\s+\S+ = (\d+)", trace)]
    assert len(set(bits)) == 1, bits
    slices = []
    idr = False
    for line in trace.splitlines():
        if m := re.search(r"nal_unit_type\s+\S+ = (\d+)", line):
            idr = m.group(1) == "5"
        elif m := re.search(r"\sframe_num\s+\S+ = (\d+)", line):
            slices.append((idr, int(m.group(1))))
    return bits[0], slices


@pytest.mark.parametrize("preset", ["ultrafast", "medium", "veryslow"])
def test_frame_numbers_run_on_without_a_gap_at_every_preset(tmp_path: Path, preset: str) -> None:
    """The joined stream numbers its frames as an encoder would: every frame after an IDR
    frame has the next frame_num (x264 wraps it at 16, or at 32 when a preset keeps more
    than 14 references), so a decoder never sees a gap; and it decodes without an error."""
    data = timeline(14.0, 13.3, 12.1, crossfade=0.6)
    data["scenes"][2]["crossfade"] = 0
    target = tmp_path / f"{preset}.mp4"
    MoviePyRenderer(timeline=data, preset=preset)(None, target)
    bits, slices = frame_numbers(target)
    frames = frame_count(parse_timeline(data).duration, FPS)
    assert len(slices) == frames
    assert sum(idr for idr, _ in slices) >= 3  # at least one keyframe per scene
    previous = None
    for index, (idr, number) in enumerate(slices):
        if idr:
            assert number == 0, index
        else:
            assert previous is not None
            assert number == (previous + 1) % (1 << bits), index
        previous = number
    errors = subprocess.run(
        [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error"),
            *("-err_detect", "explode", "-xerror", "-i", str(target), "-f", "null", "-"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert errors.returncode == 0, errors.stderr
    assert errors.stderr == ""
    assert_every_frame_is_drawn(target, data, preset)


def test_keyframes_come_about_as_often_as_in_the_one_pass_encode(tmp_path: Path) -> None:
    """A 60 s still has a keyframe at least every 250 frames and a few more: a player seeks
    in it as in the one-pass encode, and the file pays no keyframe per repetition."""
    data = timeline(60.0)
    target = tmp_path / "long.mp4"
    MoviePyRenderer(timeline=data)(None, target)
    _, slices = frame_numbers(target)
    keys = [index for index, (idr, _) in enumerate(slices) if idr]
    assert keys[0] == 0
    assert max(b - a for a, b in zip(keys, [*keys[1:], len(slices)], strict=True)) <= 266
    assert len(keys) <= len(slices) // 200 + 1


def psnr(got: np.ndarray, want: np.ndarray) -> float:
    mse = float(((got.astype(float) - want.astype(float)) ** 2).mean())
    return 100.0 if mse == 0 else float(10 * np.log10(255**2 / mse))


def photograph(path: Path, seed: int) -> str:
    """A seeded photograph-like JPEG (smooth shapes, texture, grain) at ``path``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    channels = [
        np.sin(x / (9 + 5 * c) + rng.uniform(0, 6)) * 50
        + np.cos(y / (7 + 3 * seed) + rng.uniform(0, 6)) * 40
        + 120
        + rng.normal(0, 6, (HEIGHT, WIDTH))
        for c in range(3)
    ]
    picture = np.clip(np.dstack(channels), 0, 255).astype(np.uint8)
    Image.fromarray(picture).save(path, quality=90)
    return path.name


@pytest.mark.parametrize("preset", ["veryfast", "medium"])
def test_pictures_are_stills_as_small_as_the_one_pass_encode(tmp_path: Path, preset: str) -> None:
    """Two photographs with titles, a crossfade between them: the picture scenes take the
    still path (their blocks are exact copies), every decoded frame is the drawn picture,
    the frame count and timestamps are exact, and the file is at most 1.10x the one-pass
    encode's."""
    data = timeline(16.0, 15.0, crossfade=0.8, soundtrack={"tone": 440})
    for index, scene in enumerate(data["scenes"]):
        scene["image"] = photograph(tmp_path / f"photo{index}.jpg", index)
    stills = tmp_path / "stills.mp4"
    renderer = MoviePyRenderer(timeline=data, base_dir=tmp_path, preset=preset)
    renderer(None, stills)
    MoviePyRenderer(timeline=data, base_dir=tmp_path, preset=preset, repeat_stills=False)(
        None, tmp_path / "whole.mp4"
    )
    assert stills.stat().st_size <= 1.10 * (tmp_path / "whole.mp4").stat().st_size
    frames = frame_count(parse_timeline(data, base_dir=tmp_path).duration, FPS)
    assert_browser_ready(stills, frames=frames, fps=FPS, audio=True)
    _, slices = frame_numbers(stills)
    assert len([idr for idr, _ in slices if idr]) <= 4  # not a keyframe per repetition
    assert_every_frame_is_drawn(stills, data, preset, base_dir=tmp_path)
    # The same quality as encoding every frame: the heads get the rate x264's macroblock
    # tree gives a long still's keyframe.
    drawn = parse_timeline(data, base_dir=tmp_path)
    frame = frame_function(drawn, SceneFrames(drawn, WIDTH, HEIGHT))
    quality = {
        name: np.mean([psnr(got, frame(i / FPS)) for i, got in enumerate(decoded_frames(path))])
        for name, path in (("stills", stills), ("whole", tmp_path / "whole.mp4"))
    }
    assert quality["stills"] >= quality["whole"] - 0.3, quality
