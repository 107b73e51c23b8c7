"""Inspect rendered MP4 files with the ffmpeg binary shipped in imageio-ffmpeg (no ffprobe)."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np


@dataclass(frozen=True)
class Probe:
    duration: float
    video_codec: str
    pixel_format: str
    width: int
    height: int
    fps: float
    audio_codec: str | None
    profile: str | None
    """The video's H.264 profile as ffmpeg names it ("High", ...)."""


def probe(path: Path) -> Probe:
    """Parse ``ffmpeg -i path``'s stream summary."""
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",  # ffmpeg quotes the file name, which need not be UTF-8
        check=False,
    )
    info = result.stderr
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", info)
    video = re.search(
        r"Video: (\w+)[^,]*, (\w+)(?:\([^)]*\))?, (\d+)x(\d+)[^\n]*?, ([\d.]+) fps", info
    )
    audio = re.search(r"Audio: (\w+)", info)
    profile = re.search(r"Video: \w+ \(([^)]+)\)", info)
    assert duration, info
    assert video, info
    hours, minutes, seconds = duration.groups()
    return Probe(
        duration=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        video_codec=video.group(1),
        pixel_format=video.group(2),
        width=int(video.group(3)),
        height=int(video.group(4)),
        fps=float(video.group(5)),
        audio_codec=audio.group(1) if audio else None,
        profile=profile.group(1) if profile else None,
    )


def top_level_boxes(path: Path) -> list[str]:
    """The MP4 file's top-level box types, in file order."""
    boxes: list[str] = []
    size_total = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset < size_total:
            f.seek(offset)
            header = f.read(8)
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                (size,) = struct.unpack(">Q", f.read(8))
            elif size == 0:
                size = size_total - offset
            boxes.append(kind.decode("latin-1"))
            offset += size
    return boxes


def packets(path: Path, stream: str = "v") -> list[tuple[int, int]]:
    """``(dts, pts)`` of the stream's packets in file order, in its time base (no decoding)."""
    result = subprocess.run(
        [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(path)),
            *("-map", f"0:{stream}:0", "-c", "copy", "-f", "framecrc", "-"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line.split(",") for line in result.stdout.splitlines() if not line.startswith("#")]
    return [(int(row[1]), int(row[2])) for row in rows]


def audio_samples(path: Path) -> int:
    """Samples per channel of the decoded soundtrack (edit lists applied, as players do)."""
    result = subprocess.run(
        [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(path)),
            *("-map", "0:a:0", "-f", "s16le", "-ac", "1", "-"),
        ],
        capture_output=True,
        check=True,
    )
    return len(result.stdout) // 2


def assert_browser_ready(path: Path, *, frames: int, fps: float, audio: bool) -> None:
    """H.264 High yuv420p (+ AAC no longer than the video), moov first, and exactly
    ``frames`` frames, one every ``1/fps``, in decode order and presentation order."""
    info = probe(path)
    assert (info.video_codec, info.profile, info.pixel_format) == ("h264", "High", "yuv420p")
    assert info.audio_codec == ("aac" if audio else None)
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")
    video = packets(path)
    assert len(video) == frames
    dts = [d for d, _ in video]
    assert dts == sorted(set(dts))
    pts = sorted(p for _, p in video)
    step = (pts[-1] - pts[0]) / (frames - 1)
    # Evenly spaced to within a tick of the stream's time base (29.97 fps rounds).
    assert all(abs(p - pts[0] - i * step) <= 1 for i, p in enumerate(pts))
    assert pts[0] == 0
    if audio:
        assert audio_samples(path) <= round(frames / fps * 44100)
        assert audio_samples(path) >= round(frames / fps * 44100) - 1024


def decoded_frames(path: Path) -> np.ndarray:
    """Every frame of the video, decoded to RGB, in order: ``(frames, height, width, 3)``."""
    info = probe(path)
    raw = subprocess.run(
        [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(path)),
            *("-map", "0:v", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, info.height, info.width, 3)


def frame_at(path: Path, t: float) -> np.ndarray:
    """Decode the RGB frame shown at ``t`` seconds."""
    info = probe(path)
    result = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-ss",
            f"{t:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    )
    return np.frombuffer(result.stdout, dtype=np.uint8).reshape(info.height, info.width, 3)


def corner(frame: np.ndarray) -> tuple[int, int, int]:
    """The colour of the top-left corner, away from any text."""
    r, g, b = frame[2:8, 2:8].reshape(-1, 3).mean(axis=0)
    return round(r), round(g), round(b)


def close_to(colour: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    """Each channel within 16 of ``expected``: H.264 is lossy, another scene differs more."""
    return all(abs(a - b) <= 16 for a, b in zip(colour, expected, strict=True))


def write_tone(path: Path, *, seconds: float, rate: int) -> None:
    """Write a 220 Hz sine as a mono 16-bit WAV file: a soundtrack file to render with."""
    samples = np.arange(round(seconds * rate)) / rate
    tone = (8000 * np.sin(2 * np.pi * 220 * samples)).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone.tobytes())


def ffmpeg_children() -> list[int]:
    """PIDs of live (not yet reaped) ffmpeg processes started by this test process."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # The command name may contain spaces or parentheses: parse after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and b"ffmpeg" in cmdline:
            found.append(int(entry.name))
    return found
