"""Timeline encoding: each distinct picture is piped to ffmpeg once, the video is unchanged."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moviepy", reason="needs the render extra: pip install 'renderstate[render]'")

import imageio_ffmpeg
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import renderstate.rendering.moviepy as moviepy_module
from renderstate.rendering._encode import encode_timeline
from renderstate.rendering._frames import SceneFrames, _locator, frame_function, frame_runs
from renderstate.rendering.moviepy import MoviePyRenderer, no_progress
from renderstate.rendering.timeline import parse_timeline

from .media import ffmpeg_children, probe

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 64, 36

COUNTING_FFMPEG = f"""#!{sys.executable}
# Stands in for ffmpeg: forwards stdin to the real one and records how many bytes it got.
import subprocess, sys
child = subprocess.Popen([{imageio_ffmpeg.get_ffmpeg_exe()!r}, *sys.argv[1:]],
                         stdin=subprocess.PIPE)
received = 0
while chunk := sys.stdin.buffer.read(1 << 16):
    received += len(chunk)
    try:
        child.stdin.write(chunk)
    except BrokenPipeError:
        break
try:
    child.stdin.close()
except BrokenPipeError:
    pass
status = child.wait()
with open(sys.argv[0] + ".bytes", "a") as out:
    out.write(f"{{received}}\\n")
sys.exit(status)
"""


@pytest.fixture
def counting_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Render through a stand-in ffmpeg that counts the bytes piped into it."""
    script = tmp_path / "bin" / "ffmpeg"
    script.parent.mkdir()
    script.write_text(COUNTING_FFMPEG)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(moviepy_module, "FFMPEG_BINARY", str(script))
    return script


def pictures_piped(script: Path) -> list[float]:
    lines = Path(f"{script}.bytes").read_text().split()
    return [int(line) / (WIDTH * HEIGHT * 3) for line in lines]


def decoded_frames(path: Path) -> np.ndarray:
    raw = subprocess.run(
        [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(path)),
            *("-map", "0:v", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, HEIGHT, WIDTH, 3)


def stills(*durations: float, **extra: Any) -> dict[str, Any]:
    colours = ["#ff0000", "#00ff00", "#0000ff", "#ffff00"]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "fps": 10,
        "scenes": [
            {"duration": d, "background": colours[i % 4], "title": str(i)}
            for i, d in enumerate(durations)
        ],
        **extra,
    }


def test_still_scenes_are_piped_once_not_per_frame(tmp_path: Path, counting_ffmpeg: Path) -> None:
    """Three still scenes, 30 frames: 4 pictures cross the pipe, the video has all 30 frames."""
    target = tmp_path / "v.mp4"
    MoviePyRenderer(timeline=stills(1, 1, 1, soundtrack={"tone": 440}))(None, target)
    # One picture per scene, plus a closing copy of the last that pins the final frame.
    assert pictures_piped(counting_ffmpeg) == [4]
    frames = decoded_frames(target)
    assert len(frames) == 30
    corners = [
        tuple(int(c) for c in frame[2:6, 2:6].reshape(-1, 3).mean(axis=0)) for frame in frames
    ]
    expected = [(255, 0, 0)] * 10 + [(0, 255, 0)] * 10 + [(0, 0, 255)] * 10
    assert all(
        all(abs(a - b) <= 16 for a, b in zip(got, want, strict=True))
        for got, want in zip(corners, expected, strict=True)
    )
    info = probe(target)
    assert (info.video_codec, info.pixel_format, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert info.duration == pytest.approx(3.0, abs=0.05)


def test_pipe_traffic_does_not_grow_with_a_still_scene_length(
    tmp_path: Path, counting_ffmpeg: Path
) -> None:
    """A 1 s and a 30 s still scene cost the pipe the same two pictures."""
    MoviePyRenderer(timeline=stills(1))(None, tmp_path / "short.mp4")
    MoviePyRenderer(timeline=stills(30))(None, tmp_path / "long.mp4")
    assert pictures_piped(counting_ffmpeg) == [2, 2]
    assert len(decoded_frames(tmp_path / "long.mp4")) == 300


def test_crossfade_frames_are_piped_each_and_stay_exact(
    tmp_path: Path, counting_ffmpeg: Path
) -> None:
    """Each crossfade frame is piped; every decoded frame matches the frame function's."""
    timeline = stills(1, 1)
    timeline["scenes"][1]["crossfade"] = 0.5
    target = tmp_path / "v.mp4"
    MoviePyRenderer(timeline=timeline)(None, target)
    # Scene 0 still (1), 5 blended frames, scene 1 still (1) and its closing copy (1).
    assert pictures_piped(counting_ffmpeg) == [8]
    parsed = parse_timeline(timeline)
    expected_at = frame_function(parsed, SceneFrames(parsed, WIDTH, HEIGHT))
    frames = decoded_frames(target)
    assert len(frames) == 15
    for index, frame in enumerate(frames):
        expected = expected_at(index / 10).astype(int)
        # H.264 at crf 23 is lossy: a frame off by one in the fade would differ by ~50.
        assert np.abs(frame.astype(int) - expected).mean() < 6, index


def test_ffmpeg_failure_is_an_error_with_its_message_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    """ffmpeg refusing its settings raises RuntimeError quoting ffmpeg, no child left."""
    with pytest.raises(RuntimeError, match="ffmpeg failed with exit status"):
        encode_timeline(
            ffmpeg=imageio_ffmpeg.get_ffmpeg_exe(),
            timeline=parse_timeline(stills(1)),
            size=(WIDTH, HEIGHT),
            fps=10,
            target=tmp_path / "v.mp4",
            audio=None,
            preset="no-such-preset",
            crf=23,
            threads=None,
            progress=no_progress,
        )
    assert ffmpeg_children() == []


@settings(max_examples=40, deadline=None)
@given(
    durations=st.lists(st.integers(3, 40), min_size=1, max_size=6),
    fades=st.lists(st.integers(0, 10), min_size=6, max_size=6),
    fps=st.sampled_from([7.0, 10.0, 24.0, 29.97, 30.0]),
)
def test_frame_runs_classify_every_frame_as_the_frame_function_does(
    durations: list[int], fades: list[int], fps: float
) -> None:
    """Runs found by search agree, frame by frame, with the per-frame scene choice."""
    scenes = [
        {"duration": d / 10, "crossfade": (min(f, d // 2) / 10 if i else 0)}
        for i, (d, f) in enumerate(zip(durations, fades, strict=False))
    ]
    for i in range(1, len(scenes)):
        room = scenes[i - 1]["duration"] - scenes[i - 1]["crossfade"]
        scenes[i]["crossfade"] = min(scenes[i]["crossfade"], room / 2)
    timeline = parse_timeline({"width": 2, "height": 2, "fps": fps, "scenes": scenes})
    count = int(timeline.duration * fps)
    locate = _locator(timeline)
    expanded = [
        (run.scene, run.moving)
        for run in frame_runs(timeline, fps, count)
        for _ in range(run.start, run.end)
    ]
    assert expanded == [locate(i / fps) for i in range(count)]


def test_target_names_that_look_like_options_or_protocols_are_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative target "-v.mp4" or "a:b.mp4" is written as that file, with its soundtrack."""
    monkeypatch.chdir(tmp_path)
    for name in ("-v.mp4", "a:b.mp4"):
        MoviePyRenderer(timeline=stills(1, soundtrack={"tone": 440}))(None, Path(name))
        info = probe(tmp_path / name)
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["-v.mp4", "a:b.mp4"]
