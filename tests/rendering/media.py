"""Inspect rendered MP4 files with the ffmpeg binary shipped in imageio-ffmpeg (no ffprobe)."""

from __future__ import annotations

import os
import re
import struct
import subprocess
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
