"""Timeline encoding: each distinct picture is piped to ffmpeg once, the video is unchanged."""

from __future__ import annotations

import itertools
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moviepy", reason="needs the render extra: pip install 'renderstate[render]'")

import imageio_ffmpeg
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import renderstate.rendering.moviepy as moviepy_module
from renderstate.files import remove_temporary_files
from renderstate.rendering._encode import HEAD_FRAMES, encode_timeline, plan_pieces
from renderstate.rendering._frames import SceneFrames, _locator, frame_function, frame_runs
from renderstate.rendering.moviepy import MoviePyRenderer, no_progress
from renderstate.rendering.timeline import frame_count, parse_timeline

from .media import (
    assert_browser_ready,
    close_to,
    corner,
    decoded_frames,
    ffmpeg_children,
    packets,
    probe,
    write_tone,
)

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 64, 36

COUNTING_FFMPEG = f"""#!{sys.executable}
# Stands in for ffmpeg: runs the real one, and records what it was given to encode. For an
# encoder fed pictures on stdin: the bytes piped (in <script>.bytes). For a join of pieces
# (the concat demuxer): the frames in the distinct pieces listed, counted from the files by
# the real ffmpeg (in <script>.encoded), before they are joined.
import re, subprocess, sys
real = {imageio_ffmpeg.get_ffmpeg_exe()!r}
args = sys.argv[1:]
if "pipe:0" not in args:
    if "concat" in args:
        listing = args[args.index("concat") + 4].removeprefix("file:")
        pieces = sorted(set(re.findall(r"^file 'file:(.*)'$", open(listing).read(), re.M)))
        frames = 0
        for piece in pieces:
            info = subprocess.run([real, "-i", piece, "-map", "0:v", "-c", "copy", "-f", "null",
                                   "-"], capture_output=True, text=True).stderr
            frames += int(re.findall(r"frame=\\s*(\\d+)", info)[-1])
        with open(sys.argv[0] + ".encoded", "a") as out:
            out.write(f"{{len(pieces)}} {{frames}}\\n")
    sys.exit(subprocess.run([real, *args]).returncode)
child = subprocess.Popen([real, *args], stdin=subprocess.PIPE)
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


def stand_in_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> Path:
    """Install ``source`` as the executable ffmpeg the renderer runs; return its path."""
    script = tmp_path / "bin" / "ffmpeg"
    script.parent.mkdir()
    script.write_text(source)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(moviepy_module, "FFMPEG_BINARY", str(script))
    return script


@pytest.fixture
def counting_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Render through a stand-in ffmpeg that counts the bytes piped into it."""
    return stand_in_ffmpeg(tmp_path, monkeypatch, COUNTING_FFMPEG)


TIMING_FFMPEG = f"""#!{sys.executable}
# Stands in for ffmpeg: runs the real one, and appends to <script>.runs what it ran (the
# pictures piped in, the soundtrack alone, or the join of pieces) and when it started and
# ended. With <script>.wait present, the soundtrack waits (up to 60 s) for the pictures'
# encoder to start before it runs, and says in .runs whether it did: it can only see that
# start if the two run at the same time.
import os, subprocess, sys, time
args = sys.argv[1:]
kind = "pictures" if "pipe:0" in args else "join" if "concat" in args else "soundtrack"
if kind == "pictures":
    open(sys.argv[0] + ".pictures", "w").close()
met = "-"
if kind == "soundtrack" and os.path.exists(sys.argv[0] + ".wait"):
    deadline = time.monotonic() + 60
    while not os.path.exists(sys.argv[0] + ".pictures") and time.monotonic() < deadline:
        time.sleep(0.01)
    met = "met" if os.path.exists(sys.argv[0] + ".pictures") else "alone"
began = time.monotonic()
status = subprocess.run([{imageio_ffmpeg.get_ffmpeg_exe()!r}, *args]).returncode
with open(sys.argv[0] + ".runs", "a") as out:
    out.write(f"{{kind}} {{began}} {{time.monotonic()}} {{met}}\\n")
sys.exit(status)
"""


@pytest.fixture
def timing_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Render through a stand-in ffmpeg that records when each of its runs began and ended."""
    return stand_in_ffmpeg(tmp_path, monkeypatch, TIMING_FFMPEG)


def ffmpeg_runs(script: Path) -> dict[str, tuple[float, float, str]]:
    runs = [line.split() for line in Path(f"{script}.runs").read_text().splitlines()]
    assert sorted(run[0] for run in runs) == ["join", "pictures", "soundtrack"]
    return {kind: (float(began), float(ended), met) for kind, began, ended, met in runs}


def pictures_piped(script: Path) -> list[float]:
    lines = Path(f"{script}.bytes").read_text().split()
    return [int(line) / (WIDTH * HEIGHT * 3) for line in lines]


def pieces_joined(script: Path) -> list[tuple[int, int]]:
    """Per join of pieces: how many distinct pieces, and the frames x264 encoded in them."""
    path = Path(f"{script}.encoded")
    lines = path.read_text().splitlines() if path.exists() else []
    return [(int(line.split()[0]), int(line.split()[1])) for line in lines]


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
    assert frames.shape == (30, HEIGHT, WIDTH, 3)
    expected = [(255, 0, 0)] * 10 + [(0, 255, 0)] * 10 + [(0, 0, 255)] * 10
    assert all(close_to(corner(f), want) for f, want in zip(frames, expected, strict=True))
    assert_browser_ready(target, frames=30, fps=10, audio=True)
    assert probe(target).duration == pytest.approx(3.0, abs=0.05)


def test_pipe_traffic_does_not_grow_with_a_still_scene_length(
    tmp_path: Path, counting_ffmpeg: Path
) -> None:
    """A 1 s and a 30 s still scene cost the pipe the same two pictures."""
    MoviePyRenderer(timeline=stills(1))(None, tmp_path / "short.mp4")
    MoviePyRenderer(timeline=stills(30))(None, tmp_path / "long.mp4")
    assert pictures_piped(counting_ffmpeg) == [2, 2]
    assert decoded_frames(tmp_path / "long.mp4").shape == (300, HEIGHT, WIDTH, 3)


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
    assert frames.shape == (15, HEIGHT, WIDTH, 3)
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
        assert_browser_ready(tmp_path / name, frames=10, fps=10, audio=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["-v.mp4", "a:b.mp4"]


# ---------------------------------------------------------------- still pieces


def expected_frames(timeline: dict[str, Any]) -> list[np.ndarray]:
    parsed = parse_timeline(timeline)
    frame = frame_function(parsed, SceneFrames(parsed, WIDTH, HEIGHT))
    fps = parsed.fps
    assert fps is not None
    return [frame(i / fps) for i in range(frame_count(parsed.duration, fps))]


def assert_frames_match(path: Path, timeline: dict[str, Any]) -> None:
    """Every decoded frame is the frame function's frame for its time (H.264 is lossy:
    a frame of the wrong scene, or one step off in a fade, differs far more)."""
    frames = decoded_frames(path)
    expected = expected_frames(timeline)
    assert len(frames) == len(expected)
    for index, (got, want) in enumerate(zip(frames, expected, strict=True)):
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 6, index


def test_a_long_still_is_encoded_once_as_a_short_piece_and_repeated(
    tmp_path: Path, counting_ffmpeg: Path
) -> None:
    """300 frames of one still: x264 encodes its head and one block (HEAD_FRAMES + 16), the
    video has all 300 frames, each the scene's picture, and is browser-ready."""
    target = tmp_path / "long.mp4"
    timeline = stills(30, soundtrack={"tone": 440})
    MoviePyRenderer(timeline=timeline)(None, target)
    [(pieces, encoded)] = pieces_joined(counting_ffmpeg)
    assert pieces <= 3  # the head, the block (in two parts where the run ends mid-block)
    assert encoded <= HEAD_FRAMES + 16
    assert pictures_piped(counting_ffmpeg) == [2]
    assert_browser_ready(target, frames=300, fps=10, audio=True)
    assert_frames_match(target, timeline)


def test_encoded_frames_do_not_grow_with_still_length(
    tmp_path: Path, counting_ffmpeg: Path
) -> None:
    """A 10 s and a 100 s still scene cost x264 the same few frames."""
    MoviePyRenderer(timeline=stills(10))(None, tmp_path / "a.mp4")
    MoviePyRenderer(timeline=stills(100))(None, tmp_path / "b.mp4")
    joins = pieces_joined(counting_ffmpeg)
    assert len(joins) == 2
    assert all(encoded <= HEAD_FRAMES + 16 for _, encoded in joins)
    assert len(packets(tmp_path / "b.mp4")) == 1000


def test_repeat_stills_false_encodes_every_frame_in_one_pass(
    tmp_path: Path, counting_ffmpeg: Path
) -> None:
    """MoviePyRenderer(repeat_stills=False): no pieces, the same frames, the same size
    give or take 10 %."""
    timeline = stills(30, soundtrack={"tone": 440})
    MoviePyRenderer(timeline=timeline, repeat_stills=False)(None, tmp_path / "whole.mp4")
    assert pieces_joined(counting_ffmpeg) == []
    MoviePyRenderer(timeline=timeline)(None, tmp_path / "pieces.mp4")
    assert len(pieces_joined(counting_ffmpeg)) == 1
    for name in ("whole.mp4", "pieces.mp4"):
        assert_browser_ready(tmp_path / name, frames=300, fps=10, audio=True)
        assert_frames_match(tmp_path / name, timeline)
    whole = (tmp_path / "whole.mp4").stat().st_size
    assert (tmp_path / "pieces.mp4").stat().st_size <= 1.10 * whole


def test_mixed_timeline_with_crossfades_is_exact_frame_by_frame(
    tmp_path: Path, counting_ffmpeg: Path
) -> None:
    """Long stills, crossfades and a short scene: every frame is the frame function's,
    the crossfades are encoded frame by frame, and far fewer frames are encoded."""
    timeline = stills(6, 0.8, 5.3, 4.1, soundtrack={"tone": 330})
    timeline["scenes"][1]["crossfade"] = 0.3
    timeline["scenes"][2]["crossfade"] = 0.5
    timeline["scenes"][3]["crossfade"] = 1.2
    target = tmp_path / "mixed.mp4"
    MoviePyRenderer(timeline=timeline)(None, target)
    [(pieces, encoded)] = pieces_joined(counting_ffmpeg)
    assert pieces > 1
    assert encoded < 90  # of 142 frames; the 20 crossfade frames among them
    assert_browser_ready(target, frames=142, fps=10, audio=True)
    assert_frames_match(target, timeline)


@pytest.mark.parametrize("fps", [29.97, 24.0, 7.0])
def test_pieces_keep_exact_frame_counts_at_any_rate(tmp_path: Path, fps: float) -> None:
    """Fractional and low rates: the joined video has int(duration * fps) frames, evenly
    spaced, and lasts the timeline's duration."""
    timeline = stills(7.3, 6.1, soundtrack={"tone": 440})
    timeline["fps"] = fps
    target = tmp_path / "v.mp4"
    encoded = encode_timeline(
        ffmpeg=imageio_ffmpeg.get_ffmpeg_exe(),
        timeline=parse_timeline(timeline),
        size=(WIDTH, HEIGHT),
        fps=fps,
        target=target,
        audio=None,
        preset="medium",
        crf=23,
        threads=None,
        progress=no_progress,
    )
    frames = int(13.4 * fps)
    assert encoded.frames == frames
    assert encoded.pieces > 2
    assert encoded.encoded <= 2 * (HEAD_FRAMES + 16)  # a head and a block per scene
    assert_browser_ready(target, frames=frames, fps=fps, audio=False)
    assert probe(target).duration == pytest.approx(frames / fps, abs=0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


@pytest.mark.parametrize("soundtrack", ["tone", "file"])
def test_the_soundtrack_ends_with_the_last_whole_frame(tmp_path: Path, soundtrack: str) -> None:
    """13.4 s at 7 fps is 93 frames (13.29 s): the sound stops there too, not at 13.4 s."""
    write_tone(tmp_path / "music.wav", seconds=15, rate=44100)
    sound = {"tone": 440} if soundtrack == "tone" else {"file": "music.wav"}
    timeline = stills(7.3, 6.1, soundtrack=sound)
    timeline["fps"] = 7
    target = tmp_path / "v.mp4"
    MoviePyRenderer(timeline=timeline, base_dir=tmp_path)(None, target)
    assert_browser_ready(target, frames=93, fps=7, audio=True)


def test_the_soundtrack_is_encoded_beside_the_pictures_by_default(
    tmp_path: Path, timing_ffmpeg: Path
) -> None:
    """Two ffmpeg processes at once: the AAC encoder sees the pictures' encoder start."""
    Path(f"{timing_ffmpeg}.wait").touch()
    timeline = stills(30, 10, soundtrack={"tone": 440})
    MoviePyRenderer(timeline=timeline)(None, tmp_path / "v.mp4")
    runs = ffmpeg_runs(timing_ffmpeg)
    assert runs["soundtrack"][2] == "met"
    assert max(runs["soundtrack"][1], runs["pictures"][1]) <= runs["join"][0]
    assert_browser_ready(tmp_path / "v.mp4", frames=400, fps=10, audio=True)


def test_one_thread_runs_one_ffmpeg_at_a_time(tmp_path: Path, timing_ffmpeg: Path) -> None:
    """threads=1 (one render per core): the soundtrack is encoded before the pictures are."""
    timeline = stills(30, 10, soundtrack={"tone": 440})
    MoviePyRenderer(timeline=timeline, threads=1)(None, tmp_path / "v.mp4")
    runs = ffmpeg_runs(timing_ffmpeg)
    assert runs["soundtrack"][1] <= runs["pictures"][0]
    assert runs["pictures"][1] <= runs["join"][0]
    assert_browser_ready(tmp_path / "v.mp4", frames=400, fps=10, audio=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "v.mp4"]


def test_scenes_with_a_picture_are_repeated_stills_too(
    tmp_path: Path, counting_ffmpeg: Path
) -> None:
    """A photograph (here the worst case, noise) is a still like a colour: x264 encodes a
    head and a block of it, and every frame is still the picture."""
    from PIL import Image  # noqa: PLC0415

    noise = np.random.default_rng(7).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "photo.png")
    timeline = stills(10)
    timeline["scenes"][0]["image"] = "photo.png"
    MoviePyRenderer(timeline=timeline, base_dir=tmp_path)(None, tmp_path / "v.mp4")
    [(_, encoded)] = pieces_joined(counting_ffmpeg)
    assert encoded <= HEAD_FRAMES + 16
    assert len(packets(tmp_path / "v.mp4")) == 100
    assert_browser_ready(tmp_path / "v.mp4", frames=100, fps=10, audio=False)


def test_progress_with_pieces_counts_video_frames_up_to_the_total(tmp_path: Path) -> None:
    """Pieces count once per use: the rendering phase rises one frame at a time to 400."""
    calls: list[tuple[str, int, int]] = []
    MoviePyRenderer(timeline=stills(25, 15, soundtrack={"tone": 440}))(
        None, tmp_path / "v.mp4", lambda *call: calls.append(call)
    )
    frames = [(done, total) for phase, done, total in calls if phase == "rendering"]
    assert [done for done, _ in frames] == list(range(1, 401))
    assert {total for _, total in frames} == {400}


def test_a_failure_while_pieces_are_encoded_leaves_nothing(tmp_path: Path) -> None:
    """A sink raising mid-render: no piece, list or soundtrack file, no ffmpeg left."""

    def cancel(phase: str, done: int, total: int) -> None:
        if phase == "rendering":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        MoviePyRenderer(timeline=stills(30, 30, soundtrack={"tone": 440}))(
            None, tmp_path / "v.mp4", cancel
        )
    assert list(tmp_path.iterdir()) == []
    assert ffmpeg_children() == []


def test_pieces_of_targets_with_pattern_and_quote_characters(tmp_path: Path) -> None:
    """A target named with "%" (the segment muxer's pattern character) or "'" (the concat
    list's quote) is written under that name, through pieces."""
    for name in ("100%d.mp4", "it's.mp4", "a:%%b.mp4"):
        encoded = encode_timeline(
            ffmpeg=imageio_ffmpeg.get_ffmpeg_exe(),
            timeline=parse_timeline(stills(8)),
            size=(WIDTH, HEIGHT),
            fps=10,
            target=tmp_path / name,
            audio=None,
            preset="medium",
            crf=23,
            threads=None,
            progress=no_progress,
        )
        assert encoded.pieces > 1
        assert len(packets(tmp_path / name)) == 80
    assert sorted(p.name for p in tmp_path.iterdir()) == ["100%d.mp4", "a:%%b.mp4", "it's.mp4"]


@settings(max_examples=60, deadline=None)
@given(
    durations=st.lists(st.integers(1, 400), min_size=1, max_size=6),
    fades=st.lists(st.integers(0, 30), min_size=6, max_size=6),
    pictures=st.lists(st.booleans(), min_size=6, max_size=6),
    period=st.sampled_from([0, 1, 2, 5, 16]),
    head=st.integers(1, 8),
    unit=st.sampled_from([20, 50, 250]),
)
def test_the_pieces_played_in_order_are_the_video_frame_by_frame(
    durations: list[int],
    fades: list[int],
    pictures: list[bool],
    *,
    period: int,
    head: int,
    unit: int,
) -> None:
    """Playing the plan (each piece's frames, in playlist order) gives every frame's
    (scene, moving) exactly; only still pieces of repeatable scenes are used twice; and
    each frame decodes as encoded: it starts a keyframe piece, or follows the frame it was
    encoded after or a frame showing the same still, with the frame number that follows."""
    scenes = [
        {"duration": d / 10, "crossfade": (min(f, d // 2) / 10 if i else 0)}
        for i, (d, f) in enumerate(zip(durations, fades, strict=False))
    ]
    for i in range(1, len(scenes)):
        room = scenes[i - 1]["duration"] - scenes[i - 1]["crossfade"]
        scenes[i]["crossfade"] = min(scenes[i]["crossfade"], room / 2)
    timeline = parse_timeline({"width": 2, "height": 2, "fps": 10, "scenes": scenes})
    count = int(timeline.duration * 10)
    runs = frame_runs(timeline, 10, count)
    repeatable = pictures[: len(scenes)]
    plan = plan_pieces(runs, period, repeatable, head=head, unit=unit)
    played = [
        (run.scene, run.moving)
        for index in plan.playlist
        for run in plan.pieces[index]
        for _ in range(run.start, run.end)
    ]
    locate = _locator(timeline)
    assert played == [locate(i / 10) for i in range(count)]
    for index, piece in enumerate(plan.pieces):
        if plan.playlist.count(index) > 1:
            assert len(piece) == 1
            assert not piece[0].moving
            assert repeatable[piece[0].scene]
    assert sorted(set(plan.playlist)) == list(range(len(plan.pieces)))
    assert_decodable(plan, period)


def assert_decodable(plan: Any, period: int) -> None:
    """The plan's played frames keep H.264's frame numbers and references (see above)."""
    shows: list[tuple[int, int]] = []  # per encoded frame: (scene, output frame or -1)
    number: list[int] = []  # per encoded frame: its frame_num, modulo period
    first: dict[int, int] = {}  # piece -> its first encoded frame
    for index, piece in enumerate(plan.pieces):
        first[index] = len(shows)
        for run in piece:
            for frame in range(run.start, run.end):
                shows.append((run.scene, frame if run.moving else -1))
                key = len(shows) == first[index] + 1 and index in plan.keyframes
                number.append(0 if key or len(number) == 0 else number[-1] + 1)
    played = [
        first[index] + offset
        for index in plan.playlist
        for offset in range(sum(run.end - run.start for run in plan.pieces[index]))
    ]
    for before, frame in itertools.pairwise(played):
        if frame == before + 1:
            continue
        assert any(frame == first[k] for k in plan.keyframes) or (
            shows[before] == shows[frame - 1]
            and shows[before][1] == -1
            and number[before] % max(period, 1) == number[frame - 1] % max(period, 1)
        ), (before, frame)


@pytest.mark.parametrize("repeat_stills", [True, False])
@pytest.mark.parametrize(
    ("durations", "fps", "frames"),
    [((4.6,), 25.0, 115), ((8.2,), 30.0, 246), ((3.0, 0.7, 0.4), 30.0, 123)],
)
def test_a_whole_number_of_frames_written_in_decimal_is_every_frame(
    tmp_path: Path, repeat_stills: bool, durations: tuple[float, ...], fps: float, frames: int
) -> None:
    """4.6 s at 25 fps is 115 frames, though 4.6 * 25 is 114.99999999999999 in floats: the
    video used to lose its last frame (and its soundtrack 40 ms), with pieces or without."""
    timeline = stills(*durations, soundtrack={"tone": 440})
    timeline["fps"] = fps
    target = tmp_path / "v.mp4"
    MoviePyRenderer(timeline=timeline, repeat_stills=repeat_stills)(None, target)
    assert_browser_ready(target, frames=frames, fps=fps, audio=True)
    assert_frames_match(target, timeline)


# ---------------------------------------------------------------- any file name

# NAME_MAX is 255 bytes: these fill it, so "<name>.piece000000.mp4" beside them cannot exist.
LONG_ASCII = "a" * 251 + ".mp4"
LONG_UTF8 = "\u00e9" * 125 + ".mp4"  # 254 bytes, 129 characters


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("new\nline.mp4", id="newline"),
        pytest.param("carriage\rreturn.mp4", id="carriage-return"),
        pytest.param("back\\slash\\'.mp4", id="backslash-quote"),
        pytest.param("#hash.mp4", id="hash"),
        pytest.param("  leading spaces.mp4", id="leading-spaces"),
        pytest.param("tab\tand trailing .mp4", id="tab"),
        pytest.param(os.fsdecode(b"caf\xe9-latin1.mp4"), id="not-utf8"),
        pytest.param(LONG_ASCII, id="name-max-ascii"),
        pytest.param(LONG_UTF8, id="name-max-utf8"),
    ],
)
def test_pieces_of_a_target_with_any_file_name(
    tmp_path: Path, counting_ffmpeg: Path, name: str
) -> None:
    """Whatever its POSIX name (a newline, a quote, bytes that are not UTF-8, 255 bytes
    long), the target is written through pieces, every frame exact, with its soundtrack,
    and nothing else is left beside it."""
    out = tmp_path / "out"
    out.mkdir()
    target = out / name
    timeline = stills(6, 2, soundtrack={"tone": 440})
    MoviePyRenderer(timeline=timeline)(None, target)
    [(pieces, _)] = pieces_joined(counting_ffmpeg)
    assert pieces > 1
    assert_browser_ready(target, frames=80, fps=10, audio=True)
    assert_frames_match(target, timeline)
    assert [p.name for p in out.iterdir()] == [name]


def test_pieces_in_a_directory_whose_name_has_a_newline(
    tmp_path: Path, counting_ffmpeg: Path
) -> None:
    """The directory's path is no more part of the concat list than the target's name."""
    out = tmp_path / "line\none's #dir"
    out.mkdir()
    timeline = stills(6, 2, soundtrack={"tone": 440})
    MoviePyRenderer(timeline=timeline)(None, out / "v.mp4")
    assert len(pieces_joined(counting_ffmpeg)) == 1
    assert_browser_ready(out / "v.mp4", frames=80, fps=10, audio=True)
    assert_frames_match(out / "v.mp4", timeline)
    assert [p.name for p in out.iterdir()] == ["v.mp4"]


KILLED_CHILD = """
import sys, threading
from pathlib import Path
from renderstate.files import publishing
from renderstate.rendering.moviepy import MoviePyRenderer

timeline = {
    "width": 64, "height": 36, "fps": 10,
    "scenes": [{"duration": 20, "title": "killed"}], "soundtrack": {"tone": 440},
}
never = threading.Event()

def sink(phase, done, total):
    if phase == "rendering" and done == 3:
        print("rendering", flush=True)
        never.wait()  # mid-encode, ffmpeg running, until the parent kills us

with publishing(Path(sys.argv[1])) as target:
    MoviePyRenderer(timeline=timeline, preset="ultrafast")(None, target, sink)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_pieces_of_a_render_killed_beside_a_long_final_name_are_removed_by_recovery(
    tmp_path: Path,
) -> None:
    """A 225-byte final name has 251-byte temporary files: the pieces of a render SIGKILLed
    with its ffmpeg fit beside them (in the render's private directory, named like them),
    and remove_temporary_files (recovery's clean-up) removes every one, leaving the previous
    video byte for byte."""
    final = tmp_path / ("f" * 221 + ".mp4")
    final.write_bytes(b"the previous, good video")
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, str(final)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: ffmpeg dies with it, as in a crash
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "rendering\n"
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".piece000000.mp4") for p in tmp_path.glob("*/*")):
            assert time.monotonic() < deadline, sorted(p.name for p in tmp_path.glob("*/*"))
            time.sleep(0.05)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    left = {p.name for p in tmp_path.iterdir()} - {final.name}
    (private,) = left
    inside = {p.name for p in (tmp_path / private).iterdir()}
    assert {n.rsplit(".", 2)[-2] for n in inside} >= {"partial", "soundtrack", "piece000000"}
    assert sorted(p.name for p in remove_temporary_files(final)) == sorted(left)
    assert [p.name for p in tmp_path.iterdir()] == [final.name]
    assert final.read_bytes() == b"the previous, good video"
