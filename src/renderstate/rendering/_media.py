"""What ffmpeg finds in a media file, asked with the ffmpeg binary moviepy uses (no ffprobe).

Used to refuse a soundtrack before moviepy opens it, and to check a rendered video before
the renderer returns it for publishing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import imageio_ffmpeg

from renderstate._children import run
from renderstate.exceptions import RenderOutputError
from renderstate.rendering.timeline import TimelineError

__all__ = ["AUDIO_FORMATS", "check_audio_file", "check_video"]

AUDIO_FORMATS = ("wav", "w64", "aiff", "mp3", "flac", "ogg", "aac", "mov", "matroska")
"""The ffmpeg demuxers a soundtrack may use: WAV, AIFF, MP3, FLAC, Ogg (Vorbis, Opus), AAC,
MP4/M4A (``mov``, whose external data references ffmpeg leaves off) and Matroska/WebM.

None of them reads another file. Playlists and lists that do (HLS ``.m3u8``, ``concat``
lists, ...) would let a file inside ``base_dir`` make ffmpeg read any file outside it."""

_TIMEOUT = 60
_FRAMES = re.compile(r"frame=\s*(\d+)")


def _ffmpeg(*args: str) -> subprocess.CompletedProcess[str]:
    # The binary is moviepy's own (imageio-ffmpeg); the file is passed as one argument.
    return run(  # dies with this thread: see renderstate._children
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=_TIMEOUT,
        check=False,
    )


def _url(path: Path) -> str:
    # "file:" keeps a name like "-x.mp4" or "a:b.mp4" from reading as an option or protocol.
    return f"file:{path}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def check_audio_file(path: Path, *, field: str = "soundtrack.file") -> None:
    """Check that ``path`` is an audio file in one of :data:`AUDIO_FORMATS`, with a sound stream.

    ffmpeg may open only local files (``-protocol_whitelist file``) and only those demuxers
    (``-format_whitelist``), so what the file names cannot widen what is read.

    Raises:
        TimelineError: on ``field``, naming the file and what is wrong with it.
    """
    result = _ffmpeg(
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ",".join(AUDIO_FORMATS),
        "-i",
        _url(path),
    )
    info = result.stderr
    if "Input #0" not in info:
        why = (
            "its format is not one the renderer reads"
            if "not on whitelist" in info
            else f"ffmpeg cannot read it ({_last_line(info)})"
        )
        problem = (
            f"{path.name!r} is not a readable audio file: {why}; use WAV, MP3, FLAC, Ogg, "
            f"AAC, M4A or WebM audio (playlists and file lists are refused)"
        )
    elif not re.search(r"Stream #0:\d+.*: Audio:", info):
        problem = f"{path.name!r} has no audio stream; use an audio file (WAV, MP3, ...)"
    else:
        return
    raise TimelineError(field=field, problem=problem)


def check_video(path: Path, *, duration: float, fps: float) -> None:
    """Check that ``path`` holds a video stream about ``duration`` seconds long at ``fps``.

    The frames are counted from the container without decoding (``-c copy``).

    Raises:
        RenderOutputError: no video stream, or a frame count more than one frame away.
    """
    result = _ffmpeg("-i", _url(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-")
    counts = _FRAMES.findall(result.stderr)
    if result.returncode != 0 or not counts:
        reason = f"the file has no playable video stream ({_last_line(result.stderr)})"
        raise RenderOutputError(reason=reason)
    frames = int(counts[-1])
    expected = duration * fps
    if abs(frames - expected) > 1:
        reason = (
            f"the video has {frames} frames where {duration:g} s at {fps:g} fps needs {expected:g}"
        )
        raise RenderOutputError(reason=reason)
