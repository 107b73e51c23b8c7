"""A timeline's inputs are checked and decoded as one open file (issue 24, finding 4).

The users' uploads folder is group-writable; the attacker (``tests/attacker.py``: another
uid, only group write) watches it with inotify and, the first time the render opens (or
closes) an input, renames over it a link to a file only the render user may read. Each
test races a real render and shows that what is published is the checked file's content,
never the linked file's.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any

import pytest

from attacker import (
    IN_CLOSE_NOWRITE,
    IN_OPEN,
    Attacker,
    SharedMedia,
    shared_media,
    swap_input,
    why_not,
)

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")

moviepy = pytest.importorskip(
    "renderstate.rendering.moviepy",
    reason="needs the render extra: pip install 'renderstate[render]'",
)

import imageio_ffmpeg  # noqa: E402 - only with the render extra
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from renderstate.testing import MemoryProject  # noqa: E402

SIZE = {"width": 64, "height": 36, "fps": 10}
MASKS = [pytest.param(IN_OPEN, id="at-its-open"), pytest.param(IN_CLOSE_NOWRITE, id="at-its-close")]


@pytest.fixture
def shared() -> Any:
    with shared_media() as layout:
        yield layout


def write_wav(path: Path, amplitude: int) -> None:
    """One second of a 440 Hz tone at ``amplitude`` (0: silence), mono 16-bit."""
    t = np.arange(44100) / 44100
    samples = (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(samples.tobytes())


def decoded(video: Path, *args: str) -> bytes:
    return subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(video), *args, "-"],
        capture_output=True,
        check=True,
    ).stdout


def loudest(video: Path) -> int:
    """The largest sample of the video's soundtrack, decoded."""
    samples = np.frombuffer(decoded(video, "-map", "0:a", "-f", "s16le", "-ac", "1"), np.int16)
    return int(np.abs(samples.astype(np.int32)).max())


def first_frame(video: Path) -> np.ndarray:
    """The first frame, RGB."""
    raw = decoded(video, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24")
    return np.frombuffer(raw, np.uint8).reshape(SIZE["height"], SIZE["width"], 3)


def render(uploads: Path, timeline: dict[str, Any], target: Path) -> None:
    """A real render of a project's stored timeline, its files confined to ``uploads``."""
    renderer = moviepy.MoviePyRenderer(base_dir=uploads, preset="ultrafast", threads=1)
    renderer(MemoryProject(timeline={**SIZE, **timeline}), target)


def race(
    shared: SharedMedia,
    tmp_path: Path,
    name: str,
    secret: Path,
    timeline: dict[str, Any],
    *,
    mask: int,
) -> Path:
    """Render ``timeline`` while the attacker swaps ``name`` for a link to ``secret``."""
    uploads = shared.media / "uploads"
    target = tmp_path / "attacked.mp4"
    with Attacker(shared, uploads, swap_input(name, secret), mask=mask) as attacker:
        render(uploads, timeline, target)
    assert attacker.actions == [f"renamed a link to {secret} over {name}"], attacker.actions
    assert (uploads / name).is_symlink()
    return target


@pytest.mark.parametrize("mask", MASKS)
def test_a_soundtrack_swapped_after_its_check_is_not_what_is_heard(
    shared: SharedMedia, tmp_path: Path, mask: int
) -> None:
    """The uploaded soundtrack is silence; a loud WAV only the render user may read is linked
    over its name when the render first opens (or closes) it: the video stays silent."""
    uploads = shared.shared_folder("uploads")
    write_wav(uploads / "quiet.wav", 0)
    secret = shared.vault() / "loud.wav"
    write_wav(secret, 20000)
    secret.chmod(0o600)
    timeline = {"scenes": [{"duration": 1}], "soundtrack": {"file": "quiet.wav"}}
    target = race(shared, tmp_path, "quiet.wav", secret, timeline, mask=mask)
    assert loudest(target) < 100, "the linked file's sound was published"


@pytest.mark.parametrize("mask", MASKS)
def test_a_picture_swapped_after_its_check_is_not_what_is_shown(
    shared: SharedMedia, tmp_path: Path, mask: int
) -> None:
    """The uploaded picture is red; a green one only the render user may read is linked over
    its name when the render first opens (or closes) it: the video shows red."""
    uploads = shared.shared_folder("uploads")
    Image.new("RGB", (64, 36), (255, 0, 0)).save(uploads / "picture.png")
    secret = shared.vault() / "picture.png"
    Image.new("RGB", (64, 36), (0, 255, 0)).save(secret)
    secret.chmod(0o600)
    timeline = {"scenes": [{"duration": 1, "image": "picture.png"}]}
    target = race(shared, tmp_path, "picture.png", secret, timeline, mask=mask)
    red, green, _ = first_frame(target).reshape(-1, 3).mean(axis=0)
    assert red > 200, "the linked picture was published"
    assert green < 50, "the linked picture was published"


def test_a_font_swapped_after_its_check_is_not_what_is_drawn(
    shared: SharedMedia, tmp_path: Path
) -> None:
    """The uploaded font is checked, then a file only the render user may read (no font: read
    as one, it fails the render) is linked over its name when the render first opens it:
    the titles are drawn with the checked font, as in a render nobody raced. (FreeType
    keeps a font open while it is cached: no close comes before the render ends.)"""
    uploads = shared.shared_folder("uploads")
    bundled = Path(moviepy.__file__).with_name("fonts") / "DejaVuSans.ttf"
    shutil.copyfile(bundled, uploads / "title.ttf")
    secret = shared.vault() / "title.ttf"
    secret.write_bytes(b"the render user's private notes, not a font\n" * 100)
    secret.chmod(0o600)
    timeline = {"font": "title.ttf", "scenes": [{"duration": 1, "title": "Hi"}]}
    target = race(shared, tmp_path, "title.ttf", secret, timeline, mask=IN_OPEN)
    # The same font under another name, rendered after the race: nothing swapped it.
    shutil.copyfile(bundled, uploads / "control.ttf")
    control = tmp_path / "control.mp4"
    render(uploads, {**timeline, "font": "control.ttf"}, control)
    assert np.array_equal(first_frame(target), first_frame(control))
