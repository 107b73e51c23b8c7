"""MoviePyRenderer: real, small moviepy renders checked with the shipped ffmpeg binary."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

# Without the render extra these tests skip (a failure under CI=true, see tests/conftest.py).
pytest.importorskip("moviepy", reason="needs the render extra: pip install 'renderstate[render]'")

import numpy as np
from moviepy import AudioClip, ColorClip, CompositeVideoClip, VideoClip
from PIL import Image

from renderstate import RenderRunner, Status
from renderstate.files import scratch_path
from renderstate.rendering._frames import SceneFrames, frame_function
from renderstate.rendering.moviepy import MoviePyRenderer, no_progress
from renderstate.rendering.timeline import (
    Limits,
    TimelineError,
    parse_timeline,
    sample_timeline,
)
from renderstate.testing import InlineExecutor, MemoryAdapter, MemoryProject

from .cases import BAD_TIMELINES
from .media import (
    assert_browser_ready,
    close_to,
    corner,
    ffmpeg_children,
    frame_at,
    probe,
    write_tone,
)

pytestmark = pytest.mark.slow

RED, GREEN, BLUE = "#ff0000", "#00ff00", "#0000ff"


def small_timeline(**extra: Any) -> dict[str, Any]:
    """A 1.5 s, 160x90, 10 fps timeline: red, then a 0.5 s crossfade into blue, with a tone."""
    return {
        "width": 160,
        "height": 90,
        "fps": 10,
        "scenes": [
            {"duration": 1, "background": RED, "title": "One"},
            {"duration": 1, "background": BLUE, "crossfade": 0.5, "subtitle": "two"},
        ],
        "soundtrack": {"tone": 440},
        **extra,
    }


class Recorder:
    """A progress sink that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.calls.append((phase, done, total))


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point tempfile at an empty directory so leftovers can be seen."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


def assert_clean(private_tmp: Path, output_dir: Path, *, expect: set[str]) -> None:
    """No temporary audio, no stray file next to the output, no live ffmpeg child."""
    assert list(private_tmp.iterdir()) == []
    assert {p.name for p in output_dir.iterdir()} == expect
    assert ffmpeg_children() == []


def test_render_is_browser_playable_h264_with_aac_and_faststart(
    tmp_path: Path, private_tmp: Path
) -> None:
    """The output is H.264 yuv420p + AAC at the timeline's size and length, moov before mdat."""
    out = tmp_path / "out"
    out.mkdir()
    target = out / "final.tmp.mp4"
    MoviePyRenderer(timeline=small_timeline())(None, target, no_progress)
    assert_browser_ready(target, frames=15, fps=10, audio=True)
    info = probe(target)
    assert (info.width, info.height, info.fps) == (160, 90, 10.0)
    assert info.duration == pytest.approx(1.5, abs=0.1)
    assert_clean(private_tmp, out, expect={"final.tmp.mp4"})


def test_sample_timeline_renders_as_documented(tmp_path: Path) -> None:
    """The demo's sample timeline renders to 5 s of 640x360 at 24 fps with sound."""
    target = tmp_path / "sample.mp4"
    MoviePyRenderer(timeline=sample_timeline(), preset="veryfast")(None, target, no_progress)
    info = probe(target)
    assert (info.width, info.height, info.fps, info.audio_codec) == (640, 360, 24.0, "aac")
    assert info.duration == pytest.approx(5.0, abs=0.1)


def test_scenes_and_crossfade_show_the_right_pictures(tmp_path: Path) -> None:
    """Scene 1 is red, scene 2 blue, and mid-crossfade is a blend of both."""
    target = tmp_path / "video.mp4"
    MoviePyRenderer(timeline=small_timeline())(None, target, no_progress)
    assert close_to(corner(frame_at(target, 0.2)), (255, 0, 0))
    r, g, b = corner(frame_at(target, 0.75))
    assert 60 < r < 200
    assert 60 < b < 200
    assert g < 40
    assert close_to(corner(frame_at(target, 1.3)), (0, 0, 255))


def test_many_scenes_each_show_their_colour_and_only_two_pictures_are_kept(
    tmp_path: Path,
) -> None:
    """Scenes drawn lazily still appear in order; at most two drawn pictures are held."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    timeline = {
        "width": 64,
        "height": 36,
        "fps": 10,
        "scenes": [
            {"duration": 1, "background": list(rgb), "crossfade": 0.4 if i else 0}
            for i, rgb in enumerate(colours)
        ],
    }
    parsed = parse_timeline(timeline)
    frames = SceneFrames(parsed, 64, 36)
    function = frame_function(parsed, frames)
    for t in np.arange(0, parsed.duration, 0.1):
        function(float(t))
        assert len(frames._drawn) <= 2
    target = tmp_path / "v.mp4"
    MoviePyRenderer(timeline=timeline)(None, target, no_progress)
    for start, rgb in zip(parsed.starts, colours, strict=True):
        # 0.5 s into each scene is past its 0.4 s crossfade.
        assert close_to(corner(frame_at(target, start + 0.5)), rgb)


def test_image_background_covers_the_frame(tmp_path: Path) -> None:
    """An image scene shows the picture, scaled to cover the frame."""
    Image.new("RGB", (32, 18), (0, 255, 0)).save(tmp_path / "green.png")
    timeline = {
        "width": 160,
        "height": 90,
        "fps": 10,
        "scenes": [{"duration": 0.5, "image": "green.png", "title": "Green"}],
    }
    target = tmp_path / "video.mp4"
    MoviePyRenderer(timeline=timeline, base_dir=tmp_path)(None, target, no_progress)
    assert close_to(corner(frame_at(target, 0.1)), (0, 255, 0))
    assert probe(target).audio_codec is None


def test_progress_is_monotonic_per_phase_and_reaches_total(tmp_path: Path) -> None:
    """Audio chunks are reported first, then frames; counts only rise and end at the total."""
    recorder = Recorder()
    MoviePyRenderer(timeline=small_timeline())(None, tmp_path / "v.mp4", recorder)
    phases = [phase for phase, _, _ in recorder.calls]
    assert phases == sorted(phases, key=["writing audio", "rendering"].index)
    for phase in ("writing audio", "rendering"):
        calls = [(done, total) for p, done, total in recorder.calls if p == phase]
        dones = [done for done, _ in calls]
        assert dones == sorted(dones)
        assert len({total for _, total in calls}) == 1
        assert calls[-1][0] == calls[-1][1]
        assert all(0 <= done <= total for done, total in calls)
    frames = [total for p, _, total in recorder.calls if p == "rendering"]
    assert frames[-1] == 15


def test_project_timeline_attribute_and_resolution_fields(tmp_path: Path) -> None:
    """By default the project's timeline, resolution_width/height and framerate are used."""
    project = MemoryProject(
        resolution_width=96,
        resolution_height=64,
        framerate=8,
        timeline={"scenes": [{"duration": 1, "background": GREEN}]},
    )
    target = tmp_path / "v.mp4"
    MoviePyRenderer()(project, target, no_progress)
    info = probe(target)
    assert (info.width, info.height, info.fps) == (96, 64, 8.0)
    assert info.duration == pytest.approx(1.0, abs=0.15)


def test_custom_attribute_json_text_and_overrides(tmp_path: Path) -> None:
    """A configured attribute may hold JSON text; size and fps options beat everything."""
    project = MemoryProject()
    project.storyboard = json.dumps(small_timeline())  # type: ignore[attr-defined]
    renderer = MoviePyRenderer(timeline_attribute="storyboard", size=(64, 36), fps=5)
    target = tmp_path / "v.mp4"
    renderer(project, target, no_progress)
    info = probe(target)
    assert (info.width, info.height, info.fps) == (64, 36, 5.0)


@pytest.mark.parametrize(
    ("project", "field"),
    [
        pytest.param(MemoryProject(timeline={}), "scenes", id="empty-model-default"),
        pytest.param(
            MemoryProject(timeline={"scenes": [{"duration": -1}]}), "duration", id="negative"
        ),
        pytest.param(
            MemoryProject(resolution_width=161, timeline={"scenes": [{"duration": 1}]}),
            "width",
            id="odd-project-width",
        ),
        pytest.param(
            MemoryProject(framerate=0, timeline={"scenes": [{"duration": 1}]}),
            None,
            id="zero-framerate-falls-back",
        ),
        pytest.param(
            MemoryProject(timeline={"scenes": [{"duration": 1, "image": "missing.png"}]}),
            "image",
            id="missing-image",
        ),
    ],
)
def test_bad_timeline_is_refused_before_rendering(
    tmp_path: Path, private_tmp: Path, project: MemoryProject, field: str | None
) -> None:
    """An invalid timeline raises TimelineError; no file is created and no progress reported."""
    project.resolution_height = 90
    if project.resolution_width == 1920:
        project.resolution_width = 160
    recorder = Recorder()
    target = tmp_path / "v.mp4"
    renderer = MoviePyRenderer(base_dir=tmp_path)
    if field is None:
        # A framerate of 0 is "unset" on the model: the default rate is used instead.
        renderer(project, target, recorder)
        assert probe(target).fps == 30.0
        return
    with pytest.raises(TimelineError) as caught:
        renderer(project, target, recorder)
    assert caught.value.field == field
    assert not target.exists()
    assert recorder.calls == []
    assert_clean(private_tmp, tmp_path, expect={"tmp"})


@pytest.mark.parametrize(
    ("data", "scene", "field"),
    [pytest.param(data, scene, field, id=name) for name, data, scene, field in BAD_TIMELINES],
)
def test_every_bad_field_is_refused_by_the_renderer_without_output(
    tmp_path: Path, data: Any, scene: int | None, field: str
) -> None:
    """Through the renderer, each bad field raises TimelineError and no target is created."""
    recorder = Recorder()
    target = tmp_path / "v.mp4"
    with pytest.raises(TimelineError) as caught:
        MoviePyRenderer(base_dir=tmp_path)(MemoryProject(timeline=data), target, recorder)
    assert (caught.value.scene, caught.value.field) == (scene, field)
    assert not target.exists()
    assert recorder.calls == []


def test_unreadable_image_is_refused_before_rendering(tmp_path: Path) -> None:
    """An image file that is not a picture is a TimelineError naming the scene; no output."""
    (tmp_path / "bad.png").write_bytes(b"not a png")
    timeline = {
        "width": 160,
        "height": 90,
        "scenes": [{"duration": 1}, {"duration": 1, "image": "bad.png"}],
    }
    target = tmp_path / "v.mp4"
    with pytest.raises(TimelineError) as caught:
        MoviePyRenderer(timeline=timeline, base_dir=tmp_path)(None, target, no_progress)
    assert (caught.value.scene, caught.value.field) == (1, "image")
    assert not target.exists()


def test_timeline_files_render(tmp_path: Path) -> None:
    """TOML and JSON timeline files render to the same kind of video."""
    toml = tmp_path / "timeline.toml"
    toml.write_text(
        'width = 160\nheight = 90\nfps = 10\n[[scenes]]\nduration = 1\ntitle = "T"\n'
        "[soundtrack]\ntone = 330\n",
        encoding="utf-8",
    )
    json_file = tmp_path / "timeline.json"
    json_file.write_text(json.dumps(small_timeline()), encoding="utf-8")
    for source, duration in ((toml, 1.0), (json_file, 1.5)):
        target = tmp_path / f"{source.suffix[1:]}.mp4"
        MoviePyRenderer(timeline_file=source)(None, target, no_progress)
        info = probe(target)
        assert info.duration == pytest.approx(duration, abs=0.1)
        assert info.audio_codec == "aac"


def test_soundtrack_file_is_cut_to_the_video(tmp_path: Path) -> None:
    """A soundtrack file longer than the video is cut at the video's end."""
    write_tone(tmp_path / "music.wav", seconds=3, rate=8000)
    timeline = small_timeline(soundtrack={"file": "music.wav", "volume": 0.8})
    target = tmp_path / "v.mp4"
    MoviePyRenderer(timeline=timeline, base_dir=tmp_path)(None, target, no_progress)
    info = probe(target)
    assert info.audio_codec == "aac"
    assert info.duration == pytest.approx(1.5, abs=0.1)


def test_clip_factory_renders_a_user_clip(tmp_path: Path) -> None:
    """A clip_factory's clip (mask and audio included) is written as yuv420p H.264 + AAC."""

    def make_clip(project: object) -> Any:
        square = ColorClip((40, 40), color=(0, 255, 0)).with_duration(1).with_position("center")
        # bg_color=None gives the composite a mask, which the renderer must drop.
        clip = CompositeVideoClip([square], size=(80, 60), bg_color=None)
        tone = AudioClip(lambda t: np.sin(2 * np.pi * 440 * np.asarray(t)), duration=1, fps=8000)
        return clip.with_audio(tone).with_fps(10)

    target = tmp_path / "v.mp4"
    MoviePyRenderer(clip_factory=make_clip)(None, target, no_progress)
    assert_browser_ready(target, frames=10, fps=10, audio=True)
    info = probe(target)
    assert (info.width, info.height, info.fps) == (80, 60, 10.0)
    assert close_to(corner(frame_at(target, 0.5)), (0, 0, 0))


def test_clip_factory_with_odd_size_is_refused(tmp_path: Path) -> None:
    """A user clip with an odd side is refused before encoding."""
    target = tmp_path / "v.mp4"
    renderer = MoviePyRenderer(
        clip_factory=lambda _: ColorClip((81, 60), color=(0, 0, 0)).with_duration(1)
    )
    with pytest.raises(TimelineError, match="even"):
        renderer(None, target, no_progress)
    assert not target.exists()


def test_failure_mid_render_leaves_nothing_behind(tmp_path: Path, private_tmp: Path) -> None:
    """A clip whose frames raise after 0.5 s: the error surfaces, nothing is left behind."""
    black = np.zeros((60, 80, 3), dtype=np.uint8)

    def frame(t: float) -> np.ndarray:
        if t > 0.5:
            raise RuntimeError("frame generation failed")
        return black

    def make_clip(project: object) -> Any:
        tone = AudioClip(lambda t: np.sin(2 * np.pi * 440 * np.asarray(t)), duration=1, fps=8000)
        return VideoClip(frame, duration=1).with_fps(10).with_audio(tone)

    recorder = Recorder()
    target = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError, match="frame generation failed"):
        MoviePyRenderer(clip_factory=make_clip)(None, target, recorder)
    assert ("rendering", 5, 10) in recorder.calls
    assert_clean(private_tmp, tmp_path, expect={"tmp"})


def test_a_raising_progress_sink_aborts_and_cleans_up(tmp_path: Path, private_tmp: Path) -> None:
    """A sink that raises (how a caller cancels) stops the render in either phase, cleanly:
    in a private folder, and in a shared one (the render's own scratch directory goes)."""

    class CancelledError(Exception):
        pass

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o775)
    pieces = small_timeline(scenes=[{"duration": 20}])
    for phase, timeline, folder, expect in [
        ("writing audio", small_timeline(), tmp_path, {"tmp", "shared"}),
        ("rendering", small_timeline(), tmp_path, {"tmp", "shared"}),
        ("writing audio", pieces, shared, set()),
        ("rendering", pieces, shared, set()),
    ]:

        def sink(current: str, done: int, total: int, phase: str = phase) -> None:
            if current == phase and done == 2:
                raise CancelledError

        target = folder / "v.mp4"
        with pytest.raises(CancelledError):
            MoviePyRenderer(timeline=timeline)(None, target, sink)
        assert_clean(private_tmp, folder, expect=expect)


def test_parallel_renders_in_two_threads_are_both_correct(tmp_path: Path) -> None:
    """Two different timelines rendered at once in two threads give two correct videos."""
    red = {
        "width": 160,
        "height": 90,
        "fps": 10,
        "scenes": [{"duration": 2, "background": RED}],
        "soundtrack": {"tone": 440},
    }
    blue = {
        "width": 96,
        "height": 64,
        "fps": 12,
        "scenes": [{"duration": 1, "background": BLUE}],
        "soundtrack": {"tone": 220},
    }
    errors: list[BaseException] = []
    # Both renders meet at their fifth frame, so both ffmpeg encoders are provably running
    # at the same time rather than one render finishing before the other starts.
    midway = threading.Barrier(2)

    def sink(phase: str, done: int, total: int) -> None:
        if phase == "rendering" and done == 5:
            midway.wait(timeout=60)

    def render(timeline: dict[str, Any], name: str) -> None:
        try:
            # The same file name in two directories: moviepy's default temporary audio
            # name would collide here.
            (tmp_path / name).mkdir()
            MoviePyRenderer(timeline=timeline)(None, tmp_path / name / "final.mp4", sink)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=render, args=(red, "red")),
        threading.Thread(target=render, args=(blue, "blue")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors
    assert midway.n_waiting == 0
    assert not midway.broken
    red_info, blue_info = (
        probe(tmp_path / "red" / "final.mp4"),
        probe(tmp_path / "blue" / "final.mp4"),
    )
    assert (red_info.width, red_info.fps) == (160, 10.0)
    assert red_info.duration == pytest.approx(2.0, abs=0.1)
    assert (blue_info.width, blue_info.fps) == (96, 12.0)
    assert blue_info.duration == pytest.approx(1.0, abs=0.1)
    assert close_to(corner(frame_at(tmp_path / "red" / "final.mp4", 1.5)), (255, 0, 0))
    assert close_to(corner(frame_at(tmp_path / "blue" / "final.mp4", 0.5)), (0, 0, 255))
    assert ffmpeg_children() == []


def test_renderer_works_without_a_progress_sink(tmp_path: Path) -> None:
    """Called directly with only project and target, the renderer needs no sink."""
    project = MemoryProject(
        timeline={"width": 64, "height": 36, "fps": 5, "scenes": [{"duration": 1}]}
    )
    MoviePyRenderer()(project, tmp_path / "v.mp4")
    assert probe(tmp_path / "v.mp4").duration == pytest.approx(1.0, abs=0.25)


def test_size_and_rate_precedence_without_rendering() -> None:
    """Renderer options beat the timeline, which beats the project, which beats the defaults."""
    sized = {"width": 320, "height": 180, "fps": 12, "scenes": [{"duration": 1}]}
    unsized = {"scenes": [{"duration": 1}]}
    project = MemoryProject(resolution_width=640, resolution_height=360, framerate=25)

    def resolved(renderer: MoviePyRenderer, on: object) -> tuple[int, int, float]:
        return renderer.output_format(on, renderer.timeline_for(on))

    assert resolved(MoviePyRenderer(timeline=sized), project) == (320, 180, 12.0)
    assert resolved(MoviePyRenderer(timeline=unsized), project) == (640, 360, 25.0)
    assert resolved(MoviePyRenderer(timeline=unsized), object()) == (1280, 720, 30.0)
    assert resolved(MoviePyRenderer(timeline=sized, size=(96, 54), fps=8), project) == (96, 54, 8.0)


def test_renderer_options_are_checked_up_front() -> None:
    """Conflicting sources, odd sizes, out-of-range crf and threads are refused up front."""
    with pytest.raises(ValueError, match="at most one"):
        MoviePyRenderer(timeline=small_timeline(), timeline_file="t.json")
    with pytest.raises(TimelineError):
        MoviePyRenderer(size=(161, 90))
    with pytest.raises(ValueError, match="crf"):
        MoviePyRenderer(crf=60)
    with pytest.raises(ValueError, match="preset"):
        MoviePyRenderer(preset="quick")
    for threads in (0, -2, 1.5, "4", True):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            MoviePyRenderer(threads=threads)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\.mp4"):
        MoviePyRenderer(timeline=small_timeline())(None, Path("video.webm"), no_progress)


def test_missing_render_extra_says_how_to_install() -> None:
    """Without moviepy, importing the renderer raises ImportError quoting the install command."""
    code = (
        "import sys\n"
        "sys.modules['moviepy'] = None\n"
        "try:\n"
        "    import renderstate.rendering.moviepy\n"
        "except ImportError as exc:\n"
        "    assert \"pip install 'renderstate[render]'\" in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_scratch_files_go_into_a_private_directory_of_the_render_beside_the_target(
    tmp_path: Path, private_tmp: Path
) -> None:
    """In a folder others may write, the WAV and the pieces are made in a 0700 directory
    the render makes beside the target, named after it with random digits (which recovery
    removes with the target); then gone with it."""
    out = tmp_path / "out"
    out.mkdir(mode=0o775)
    target = out / ".final-x.partial.mp4"
    during: list[tuple[dict[str, int], list[Path]]] = []

    def sink(phase: str, done: int, total: int) -> None:
        if phase == "rendering" and done == 1:
            found = {p.name: p.lstat().st_mode for p in out.iterdir() if p.name != target.name}
            during.append((found, list(private_tmp.iterdir())))

    renderer = MoviePyRenderer(timeline=small_timeline(scenes=[{"duration": 20}]))
    for _ in range(2):
        renderer(None, target, sink)
    # The target itself may not exist yet: ffmpeg creates it when it first writes.
    ((first, in_tmp), (second, _)) = during
    stem = scratch_path(target, "work").name
    for found in (first, second):
        ((name, mode),) = found.items()
        assert name.startswith(f"{stem}-")
        assert len(name) == len(stem) + 17
        assert stat.S_ISDIR(mode)
        assert stat.S_IMODE(mode) == 0o700
    # Each render makes another: its name is not known before the render makes it.
    assert first.keys() != second.keys()
    assert in_tmp == []
    assert_clean(private_tmp, out, expect={target.name})


def test_a_target_in_a_private_directory_keeps_its_scratch_files_beside_it(
    tmp_path: Path, private_tmp: Path
) -> None:
    """In a directory only the render user can write (the runner's workspace), no second
    directory: the WAV is the target's scratch_path("soundtrack.wav") beside it."""
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    target = out / ".final-x.partial.mp4"
    during: list[set[str]] = []

    def sink(phase: str, done: int, total: int) -> None:
        if phase == "rendering" and done == 1:
            during.append({p.name for p in out.iterdir()})

    MoviePyRenderer(timeline=small_timeline())(None, target, sink)
    (names,) = during
    assert names - {target.name} == {scratch_path(target, "soundtrack.wav").name}
    assert_clean(private_tmp, out, expect={target.name})


def test_under_the_runner_scratch_files_go_into_its_private_workspace_alone(
    tmp_path: Path,
) -> None:
    """Through RenderRunner the target is in the runner's private workspace: the renderer makes
    no second directory there, its WAV is the target's scratch_path beside it."""
    seen: list[tuple[int, dict[str, bool]]] = []
    renderer = MoviePyRenderer(timeline=small_timeline(scenes=[{"duration": 20}]))

    def spying(project: Any, target: Path, progress: Any) -> None:
        def spy(phase: str, done: int, total: int) -> None:
            if phase == "rendering" and done == 1:
                mode = stat.S_IMODE(target.parent.stat().st_mode)
                found = {p.name: p.is_dir() for p in target.parent.iterdir()}
                seen.append((mode, found))
            progress(phase, done, total)

        renderer(project, target, spy)
        ((mode, found),) = seen
        assert mode == 0o700
        wav = scratch_path(target, "soundtrack.wav").name
        assert wav in found
        stem = wav.removesuffix("soundtrack.wav")
        others = {name: is_dir for name, is_dir in found.items() if name != target.name}
        assert all(name.startswith(stem) and not is_dir for name, is_dir in others.items())

    project = MemoryProject()
    runner = RenderRunner(
        MemoryAdapter(), spying, media_root=tmp_path / "media", executor=InlineExecutor()
    )
    with runner:
        job = runner.submit(project)
        assert job.wait(120) is Status.COMPLETED, job.error
    assert seen
    (folder,) = (tmp_path / "media" / "projects").iterdir()
    assert [p.name for p in folder.iterdir()] == ["final.mp4"]


def test_limits_are_applied_by_the_renderer_before_any_work(
    tmp_path: Path, private_tmp: Path
) -> None:
    """Sub-frame videos, long clips and oversized soundtracks are refused; nothing is written."""
    target = tmp_path / "v.mp4"
    recorder = Recorder()
    # The timeline has no fps of its own: the project's 24 fps makes 0.04 s shorter than a frame.
    short = MemoryProject(timeline={"scenes": [{"duration": 0.04}]}, framerate=24)
    with pytest.raises(TimelineError, match="shorter than one frame") as caught:
        MoviePyRenderer()(short, target, recorder)
    assert caught.value.field == "duration"
    # 1.5 s of 44.1 kHz stereo 16-bit PCM is 264,600 bytes.
    tight = MoviePyRenderer(timeline=small_timeline(), limits=Limits(max_audio_bytes=200_000))
    with pytest.raises(TimelineError, match="264,600 bytes") as caught:
        tight(None, target, recorder)
    assert caught.value.field == "soundtrack"
    brief = MoviePyRenderer(
        clip_factory=lambda _: ColorClip((16, 16), color=(0, 0, 0), duration=3),
        limits=Limits(max_duration=2),
    )
    with pytest.raises(TimelineError, match="longer than the 2 s limit"):
        brief(None, target, recorder)
    with pytest.raises(TimelineError, match="from 1 to 240"):
        MoviePyRenderer(fps=1e-9)
    assert not target.exists()
    assert recorder.calls == []
    assert_clean(private_tmp, tmp_path, expect={"tmp"})
