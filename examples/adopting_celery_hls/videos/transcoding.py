"""The app's transcoding function, unchanged by the swap: a source video into HLS, by ffmpeg.

It takes the video's id, writes a playlist and its segments into ``out_dir`` with
ffmpeg's ``hls`` muxer, reports the share done as a fraction, and returns the directory,
its duration and a summary of what it wrote (the swap's one change: it used to save the
last two on the video itself).
"""

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from imageio_ffmpeg import get_ffmpeg_exe

from .models import Video

PLAYLIST = "playlist.m3u8"


def source_seconds(source: Path) -> float:
    """The source's duration, as ffmpeg reads it."""
    probe = subprocess.run(  # noqa: S603 - our own ffmpeg, our own arguments
        [get_ffmpeg_exe(), "-hide_banner", "-i", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", probe.stderr)
    if found is None:
        msg = f"{source.name} is not a video ffmpeg can read"
        raise ValueError(msg)
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def transcode_to_hls(
    video_id: int, on_progress: Callable[[float], None], out_dir: str | Path
) -> dict[str, object]:
    """Transcode the video's source into ``out_dir/playlist.m3u8`` and its segments."""
    video = Video.objects.get(pk=video_id)
    source = Path(settings.MEDIA_ROOT) / video.source
    total = source_seconds(source)
    out = Path(out_dir)
    command = [
        get_ffmpeg_exe(),
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(source),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-threads",
        "1",  # one core per transcode: the worker runs one per core
        "-g",
        "10",
        "-an",
        "-f",
        "hls",
        "-hls_time",
        "1",
        "-hls_playlist_type",
        "vod",
        "-hls_segment_filename",
        str(out / "segment%03d.ts"),
        "-progress",
        "pipe:1",
        str(out / PLAYLIST),
    ]
    with subprocess.Popen(  # noqa: S603 - our own ffmpeg, our own arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as ffmpeg:
        assert ffmpeg.stdout is not None
        try:
            for line in ffmpeg.stdout:
                if line.startswith("out_time_us=") and line.strip()[12:].isdigit():
                    seconds = int(line.strip()[12:]) / 1_000_000
                    on_progress(min(seconds / total, 1.0))
        except BaseException:
            ffmpeg.kill()  # a cancelled transcode stops its ffmpeg too
            raise
        errors = ffmpeg.stderr.read() if ffmpeg.stderr else ""
    if ffmpeg.returncode != 0:
        msg = f"ffmpeg failed ({ffmpeg.returncode}): {errors.strip()[-300:]}"
        raise RuntimeError(msg)
    playlist = (out / PLAYLIST).read_text()
    duration = sum(float(s) for s in re.findall(r"#EXTINF:([\d.]+)", playlist))
    segments = sorted(p.name for p in out.glob("segment*.ts"))
    metadata = {"playlist": PLAYLIST, "segments": len(segments)}
    return {"hls_dir": str(out), "duration": round(duration, 3), "metadata": metadata}
