"""What the renderer lets ffmpeg and Pillow open, and what it checks before it returns a video."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moviepy", reason="needs the render extra: pip install 'renderstate[render]'")

import imageio_ffmpeg
import numpy as np
from PIL import Image

from renderstate.exceptions import RenderOutputError
from renderstate.rendering._fonts import DEFAULT_FONT, load_font, missing_characters
from renderstate.rendering._frames import draw_scene
from renderstate.rendering._inputs import Inputs
from renderstate.rendering._media import check_audio_file, check_video
from renderstate.rendering._scratch import Scratch
from renderstate.rendering.moviepy import MoviePyRenderer, no_progress
from renderstate.rendering.timeline import Scene, TimelineError, load_timeline, parse_timeline
from renderstate.testing import MemoryProject

from .media import probe

pytestmark = pytest.mark.slow


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
    )


def tiny(**extra: object) -> dict[str, object]:
    return {"width": 64, "height": 36, "fps": 10, "scenes": [{"duration": 0.5}], **extra}


@pytest.fixture
def outside(tmp_path: Path) -> tuple[Path, Path]:
    """``base`` (the users' media) and a secret AAC file beside it, outside ``base``."""
    base = tmp_path / "base"
    base.mkdir()
    secret = tmp_path / "secret.aac"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=1", "-c:a", "aac", str(secret))
    return base, secret


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "list.m3u8",
            # Without the check, ffmpeg 9 follows this playlist and the secret is the sound.
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n../secret.aac\n#EXT-X-ENDLIST\n",
        ),
        ("list.ffconcat", "ffconcat version 1.0\nfile '../secret.aac'\n"),
        ("list.txt", "ffconcat version 1.0\nfile '../secret.aac'\n"),
    ],
)
def test_a_soundtrack_cannot_make_ffmpeg_read_outside_base_dir(
    outside: tuple[Path, Path], name: str, text: str
) -> None:
    """A playlist or file list inside base_dir naming a file outside it is refused up front."""
    base, _ = outside
    (base / name).write_text(text)
    timeline = tiny(soundtrack={"file": name})
    parse_timeline(timeline, base_dir=base)  # the path itself is inside base_dir
    target = base / "v.mp4"
    with pytest.raises(TimelineError, match="format is not one the renderer reads") as caught:
        MoviePyRenderer(base_dir=base)(MemoryProject(timeline=timeline), target, no_progress)
    assert caught.value.field == "soundtrack.file"
    assert name in str(caught.value)
    assert not target.exists()


def test_not_audio_and_corrupt_audio_name_the_field_and_the_file(tmp_path: Path) -> None:
    """A JPEG or a damaged MP3 as the soundtrack is a TimelineError naming the file."""
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "cover.jpg")
    (tmp_path / "broken.mp3").write_bytes(b"ID3" + bytes(range(256)) * 8)
    (tmp_path / "silence.mp4").write_bytes(b"")
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=16x16:d=0.5", str(tmp_path / "picture.mp4"))
    for name, why in [
        ("cover.jpg", "format is not one the renderer reads"),
        ("broken.mp3", "cannot read it"),
        ("silence.mp4", "cannot read it"),
        ("picture.mp4", "has no audio stream"),
    ]:
        target = tmp_path / "v.mp4"
        timeline = tiny(soundtrack={"file": name})
        with pytest.raises(TimelineError, match=why) as caught:
            MoviePyRenderer(base_dir=tmp_path)(
                MemoryProject(timeline=timeline), target, no_progress
            )
        assert caught.value.field == "soundtrack.file"
        assert repr(name) in str(caught.value)
        assert "Traceback" not in str(caught.value)
        assert not target.exists()


@pytest.mark.parametrize("extension", ["wav", "mp3", "flac", "ogg", "m4a", "webm"])
def test_common_audio_formats_are_accepted(tmp_path: Path, extension: str) -> None:
    """Every documented audio format passes the check and renders under the video."""
    music = tmp_path / f"music.{extension}"
    ffmpeg("-f", "lavfi", "-i", "sine=f=330:d=1", str(music))
    check_audio_file(music)
    target = tmp_path / "v.mp4"
    timeline = tiny(soundtrack={"file": music.name})
    MoviePyRenderer(base_dir=tmp_path)(MemoryProject(timeline=timeline), target, no_progress)
    assert probe(target).audio_codec == "aac"


def test_check_video_refuses_no_picture_and_the_wrong_length(tmp_path: Path) -> None:
    """What the runner would publish must have a video stream of the timeline's length."""
    audio_only = tmp_path / "audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=1", "-c:a", "aac", str(audio_only))
    with pytest.raises(RenderOutputError, match="no playable video stream"):
        check_video(audio_only, duration=1, fps=10)
    video = tmp_path / "v.mp4"
    MoviePyRenderer(timeline=tiny())(None, video, no_progress)
    check_video(video, duration=0.5, fps=10)
    with pytest.raises(RenderOutputError, match="has 5 frames where 2 s at 10 fps needs 20"):
        check_video(video, duration=2, fps=10)


TEXT = "café Ωμέγα Привет"


def test_the_bundled_font_draws_latin_greek_and_cyrillic() -> None:
    """Accented Latin, Greek and Cyrillic letters are drawn, not replaced by empty boxes."""
    assert missing_characters(None, TEXT) == []
    assert DEFAULT_FONT.is_file()
    assert (DEFAULT_FONT.parent / "LICENSE-DejaVu.txt").is_file()

    def drawn(title: str) -> np.ndarray:
        return draw_scene(Scene(duration=1, title=title), 320, 180, index=0)

    box = drawn("\U0010ffff")  # a code point no font has: its "missing glyph" box
    for letter in "éΩДж":
        assert not np.array_equal(drawn(letter), box), letter


def test_text_the_font_cannot_draw_is_refused(tmp_path: Path) -> None:
    """A title with characters the font lacks is a TimelineError naming them; nothing written."""
    target = tmp_path / "v.mp4"
    timeline = tiny(scenes=[{"duration": 0.5}, {"duration": 0.5, "subtitle": "ok 中文"}])
    with pytest.raises(TimelineError, match=r"'中' \(U\+4E2D\), '文' \(U\+6587\)") as caught:
        MoviePyRenderer(timeline=timeline)(None, target, no_progress)
    assert (caught.value.scene, caught.value.field) == (1, "subtitle")
    assert not target.exists()


def test_a_timeline_or_the_renderer_names_the_font(tmp_path: Path) -> None:
    """The timeline's font key (per scene, or for all) and MoviePyRenderer(font=) are used."""
    font = tmp_path / "fonts" / "Sans.ttf"
    font.parent.mkdir()
    font.write_bytes(DEFAULT_FONT.read_bytes())
    (tmp_path / "fonts" / "bad.ttf").write_bytes(b"not a font")
    timeline = parse_timeline(
        tiny(font="fonts/Sans.ttf", scenes=[{"duration": 0.5, "title": TEXT}]), base_dir=tmp_path
    )
    assert timeline.scenes[0].font == font
    target = tmp_path / "v.mp4"
    MoviePyRenderer(timeline=timeline)(None, target, no_progress)
    assert probe(target).width == 64
    bad = tiny(scenes=[{"duration": 0.5, "font": "fonts/bad.ttf", "title": "x"}])
    with pytest.raises(TimelineError, match="not a font file") as caught:
        MoviePyRenderer(timeline=bad, base_dir=tmp_path)(None, target, no_progress)
    assert (caught.value.scene, caught.value.field) == (0, "font")
    renderer = MoviePyRenderer(timeline=tiny(scenes=[{"duration": 0.5, "title": "x"}]), font=font)
    renderer(None, target, no_progress)
    assert probe(target).width == 64
    with pytest.raises(TimelineError) as caught:
        MoviePyRenderer(
            timeline=tiny(scenes=[{"duration": 0.5, "title": "x"}]),
            font=tmp_path / "fonts" / "bad.ttf",
        )(None, target, no_progress)
    assert caught.value.field == "font"
    with pytest.raises(TimelineError, match="inside base_dir"):
        parse_timeline(tiny(font="/etc/passwd"), base_dir=tmp_path)


@pytest.mark.parametrize("name", ["-v.wav", "a:b.wav"])
def test_audio_names_that_look_like_options_or_protocols_are_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A relative soundtrack "-v.wav" or "a:b.wav" is probed as that file."""
    monkeypatch.chdir(tmp_path)
    ffmpeg("-f", "lavfi", "-i", "sine=f=330:d=1", f"file:{name}")
    check_audio_file(Path(name))


# ------------------------------------------------------------------ read as opened


def picture(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (64, 36), colour).save(path)
    return path


@pytest.fixture
def checked(tmp_path: Path) -> tuple[Path, Any]:
    """``base`` with a red ``pictures/one.png``, and a timeline showing it, checked."""
    base = tmp_path / "base"
    (base / "pictures").mkdir(parents=True)
    picture(base / "pictures" / "one.png", (255, 0, 0))
    data = tiny(scenes=[{"duration": 0.5, "image": "pictures/one.png"}])
    timeline = parse_timeline(data, base_dir=base)
    assert timeline.base_dir == base
    return base, timeline


def refused(timeline: Any, target: Path) -> TimelineError:
    with pytest.raises(TimelineError, match="changed after the timeline was checked") as caught:
        MoviePyRenderer(timeline=timeline)(None, target, no_progress)
    assert (caught.value.scene, caught.value.field) == (0, "image")
    assert not target.exists()
    return caught.value


@pytest.mark.parametrize("swapped", ["pictures/one.png", "pictures"])
def test_a_file_or_directory_linked_out_after_the_check_is_refused_unread(
    checked: tuple[Path, Any], tmp_path: Path, swapped: str
) -> None:
    """A project's timeline checked, then its picture (or its directory) replaced by a link
    out of base_dir: the render refuses it, reads nothing, writes nothing."""
    base, timeline = checked
    outside = tmp_path / "outside"
    (outside / "pictures").mkdir(parents=True)
    picture(outside / "pictures" / "one.png", (0, 255, 0))
    shutil.rmtree(base / swapped) if swapped == "pictures" else (base / swapped).unlink()
    (base / swapped).symlink_to(outside / swapped)
    error = refused(timeline, tmp_path / "v.mp4")
    assert "leads out of base_dir" in error.problem


@pytest.mark.parametrize("swapped", ["pictures/one.png", "pictures"])
def test_a_link_swapped_in_between_resolving_and_opening_is_refused(
    checked: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swapped: str
) -> None:
    """The picture (or its directory) replaced by a link inside base_dir right after its path
    was resolved (the attacker's narrowest window, hit by acting inside resolve()): the
    open, without following links, refuses it."""
    base, timeline = checked
    (base / "elsewhere" / "pictures").mkdir(parents=True)
    picture(base / "elsewhere" / "pictures" / "one.png", (0, 255, 0))
    resolve = Path.resolve

    def resolve_then_swap(path: Path, strict: bool = False) -> Path:
        real = resolve(path, strict=strict)
        if path.name == "one.png" and not (base / swapped).is_symlink():
            shutil.rmtree(base / swapped) if swapped == "pictures" else (base / swapped).unlink()
            (base / swapped).symlink_to(base / "elsewhere" / swapped)
        return real

    monkeypatch.setattr(Path, "resolve", resolve_then_swap)
    error = refused(timeline, tmp_path / "v.mp4")
    assert "it is a symbolic link" in error.problem


def test_links_that_stay_inside_base_dir_are_still_followed(tmp_path: Path) -> None:
    """A link inside base_dir to a file inside it (accepted when checked) renders that file."""
    base = tmp_path / "base"
    (base / "pictures").mkdir(parents=True)
    picture(base / "pictures" / "one.png", (255, 0, 0))
    (base / "alias.png").symlink_to(base / "pictures" / "one.png")
    target = tmp_path / "v.mp4"
    data = tiny(scenes=[{"duration": 0.5, "image": "alias.png"}])
    MoviePyRenderer(base_dir=base)(MemoryProject(timeline=data), target, no_progress)
    assert probe(target).width == 64


def test_a_trusted_timeline_file_may_name_a_link(tmp_path: Path) -> None:
    """A timeline file's files are trusted: a link out of its directory is followed, once."""
    outside = picture(tmp_path / "one.png", (255, 0, 0))
    folder = tmp_path / "timelines"
    folder.mkdir()
    (folder / "alias.png").symlink_to(outside)
    (folder / "t.json").write_text(
        json.dumps(tiny(scenes=[{"duration": 0.5, "image": "alias.png"}])), encoding="utf-8"
    )
    assert load_timeline(folder / "t.json").base_dir is None
    target = tmp_path / "v.mp4"
    MoviePyRenderer(timeline_file=folder / "t.json")(None, target, no_progress)
    assert probe(target).width == 64


@pytest.mark.parametrize("copy", [False, True], ids=["descriptor", "copy"])
def test_inputs_are_read_from_the_file_opened_not_from_its_name(tmp_path: Path, copy: bool) -> None:
    """What Inputs hands the readers is the file it opened (through its descriptor, or a copy
    made from it): a file renamed over the name afterwards is not what they read; nothing
    is left once the scratch directory is closed."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "a.wav").write_bytes(b"the checked bytes")
    checked = parse_timeline(tiny(soundtrack={"file": "a.wav"}), base_dir=base)
    out = tmp_path / "out"
    out.mkdir(mode=0o775)
    scratch = Scratch(out / "v.mp4")
    inputs = Inputs(scratch, copy=copy)
    try:
        opened = inputs.timeline(checked)
        assert opened.soundtrack is not None
        readable = opened.soundtrack.file
        assert readable is not None
        assert readable.name == "a.wav"
        (base / "other.wav").write_bytes(b"someone else's bytes")
        (base / "other.wav").rename(base / "a.wav")
        assert readable.read_bytes() == b"the checked bytes"
        assert readable.is_symlink() is not copy
    finally:
        inputs.close()
        scratch.close()
    assert list(out.iterdir()) == []


def test_the_font_cache_knows_a_font_by_its_file_not_its_path(tmp_path: Path) -> None:
    """Two different files at one path in turn (as descriptors' paths are reused) are two fonts."""
    path = tmp_path / "font.ttf"
    path.write_bytes(DEFAULT_FONT.read_bytes())
    first = load_font(path, 32)
    assert load_font(path, 32) is first
    other = tmp_path / "other.ttf"
    other.write_bytes(DEFAULT_FONT.read_bytes())
    other.rename(path)
    assert load_font(path, 32) is not first
