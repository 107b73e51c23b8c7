"""Encode a timeline with ffmpeg, piping each distinct picture once.

A still stretch of a scene is one picture shown for many frames. moviepy would pipe that
picture to ffmpeg once per frame, and ffmpeg would convert each copy from RGB to YUV: for
the reference timeline three quarters of the render was spent there. Here each still run
is piped once, stamped with the output frame it starts at; ffmpeg converts it to
``yuv420p`` once and its ``fps`` filter repeats the converted picture until the next one,
so the encoder sees exactly the frame sequence moviepy would have sent. Crossfade frames
are computed and piped one by one, as before. Memory does not grow with the duration:
one picture is in flight at a time and the scene cache keeps two.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import IO

from renderstate.rendering._frames import SceneFrames, frame_function, frame_runs
from renderstate.rendering.timeline import Timeline
from renderstate.typing import ProgressSink

__all__ = ["encode_timeline"]

_log = logging.getLogger("renderstate.rendering.moviepy")

_PROGRESS_SECONDS = "0.1"
"""How often ffmpeg reports the frames it has encoded."""


def _schedule(timeline: Timeline, fps: float, count: int) -> list[tuple[int, int, int]]:
    """Return ``(output frame, scene, first moving frame or -1)`` per picture to pipe.

    A still run is one entry (its scene's picture, at the run's first frame); a crossfade
    run is one entry per frame. The list grows with the scenes and the crossfade frames,
    never with the length of still stretches.
    """
    runs = frame_runs(timeline, fps, count)
    schedule: list[tuple[int, int, int]] = []
    for run in runs:
        if run.moving:
            schedule += [(index, run.scene, index) for index in range(run.start, run.end)]
        else:
            schedule.append((run.start, run.scene, -1))
    if runs and not runs[-1].moving and runs[-1].end - 1 > runs[-1].start:
        # The fps filter repeats a picture until the next one arrives: a closing copy
        # makes the last still run last to the video's final frame.
        schedule.append((runs[-1].end - 1, runs[-1].scene, -1))
    return schedule


def _timestamps(schedule: list[tuple[int, int, int]]) -> str:
    """Return a ``setpts`` expression mapping the N-th piped picture to its output frame.

    The output frame is N plus an offset that changes only where the schedule skips
    frames (after each still picture), so the expression has a term per still run.
    """
    terms = []
    offset = 0
    for piped, (frame, _, _) in enumerate(schedule):
        if frame - piped != offset:
            terms.append(f"+if(gte(N,{piped}),{frame - piped - offset},0)")
            offset = frame - piped
    return "N" + "".join(terms)


class _Reader(threading.Thread):
    """Drains one of ffmpeg's output pipes so ffmpeg never blocks writing to it."""

    def __init__(self, stream: IO[bytes], on_line: Callable[[bytes], None]) -> None:
        super().__init__(daemon=True, name="renderstate-ffmpeg-reader")
        self._stream = stream
        self._on_line = on_line

    def run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in self._stream:
                self._on_line(line)
        self._on_line(b"")  # end of stream


class _Progress:
    """The encoded-frame count ffmpeg reports (``-progress``), handed to the sink."""

    def __init__(self, sink: ProgressSink, total: int) -> None:
        self._sink = sink
        self._total = total
        self._encoded = 0
        self._reported = 0
        self._changed = threading.Condition()
        self.ended = False

    def on_line(self, line: bytes) -> None:
        if line.startswith(b"frame="):
            with contextlib.suppress(ValueError), self._changed:
                self._encoded = min(int(line[6:]), self._total)
                self._changed.notify_all()
        elif not line or line.startswith(b"progress=end"):
            with self._changed:
                self.ended = True
                self._changed.notify_all()

    def wait(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def report(self, *, final: bool = False) -> None:
        """Tell the sink every frame count reached since the last report (caller's thread)."""
        encoded = self._total if final else self._encoded
        # One call per frame count, so a sink waiting for frame N sees N; the counts come
        # from ffmpeg, so they follow the encoder rather than how fast pictures are piped.
        for done in range(self._reported + 1, encoded + 1):
            self._sink("rendering", done, self._total)
        self._reported = max(self._reported, encoded)


def _command(
    ffmpeg: str,
    *,
    size: tuple[int, int],
    rate: Fraction,
    video_filter: str,
    audio: str | None,
    preset: str,
    crf: int,
    threads: int | None,
    target: Path,
) -> list[str]:
    width, height = size
    command = [
        ffmpeg,
        "-y",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        "-stats_period",
        _PROGRESS_SECONDS,
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-framerate",
        str(rate),
        "-i",
        "pipe:0",
    ]
    if audio is not None:
        command += ["-i", f"file:{audio}"]
    command += ["-filter:v", video_filter, "-map", "0:v"]
    if audio is not None:
        command += ["-map", "1:a", "-c:a", "aac"]
    command += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]
    if threads is not None:
        command += ["-threads", str(threads)]
    # "file:" keeps a name like "-x.mp4" or "a:b.mp4" from reading as an option or protocol.
    command += ["-movflags", "+faststart", "-f", "mp4", f"file:{target}"]
    return command


def encode_timeline(
    *,
    ffmpeg: str,
    timeline: Timeline,
    size: tuple[int, int],
    fps: float,
    target: Path,
    audio: str | None,
    preset: str,
    crf: int,
    threads: int | None,
    progress: ProgressSink,
) -> int:
    """Write ``timeline`` as H.264 ``yuv420p`` (+ AAC from ``audio``) with ``+faststart``.

    Returns:
        How many pictures were piped to ffmpeg.

    Raises:
        RuntimeError: ffmpeg failed (its error output is in the message).
    """
    width, height = size
    count = int(timeline.duration * fps)
    rate = Fraction(fps).limit_denominator(1_000_000)
    frames = SceneFrames(timeline, width, height)
    frame_at = frame_function(timeline, frames)
    # The schedule is known before any picture is drawn, so the filter graph can say when
    # each piped picture is shown: converted to yuv420p once, then repeated by fps.
    schedule = _schedule(timeline, fps, count)
    video_filter = f"setpts='{_timestamps(schedule)}',format=yuv420p,fps={rate}"
    command = _command(
        ffmpeg,
        size=size,
        rate=rate,
        video_filter=video_filter,
        audio=audio,
        preset=preset,
        crf=crf,
        threads=threads,
        target=target,
    )
    tracker = _Progress(progress, count)
    errors: deque[bytes] = deque(maxlen=50)
    process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    readers = [_Reader(process.stdout, tracker.on_line), _Reader(process.stderr, errors.append)]
    for reader in readers:
        reader.start()
    piped = 0
    try:
        try:
            for _, scene, moving in schedule:
                picture = frames[scene] if moving < 0 else frame_at(moving / fps)
                process.stdin.write(memoryview(picture).cast("B"))
                piped += 1
                tracker.report()
            process.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit status and message say why
        # Report as ffmpeg encodes; once it says it is done (or its pipe closes), only
        # the faststart rewrite is left: wait for the exit rather than poll for it.
        while not tracker.ended and process.poll() is None:
            tracker.wait(0.1)
            tracker.report()
        process.wait()
        for reader in readers:
            reader.join()
        if process.returncode != 0:
            message = b"".join(errors).decode(errors="replace").strip() or "no message"
            msg = f"ffmpeg failed with exit status {process.returncode}: {message}"
            raise RuntimeError(msg)
        tracker.report(final=True)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        for reader in readers:
            reader.join(timeout=5)
    _log.debug("piped %d pictures to ffmpeg for %d frames of %s", piped, count, target.name)
    return piped
