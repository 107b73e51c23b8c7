"""Running ffmpeg: its pipes drained, its progress followed, its failure told with its message.

:func:`pipe` feeds one ffmpeg the pictures of a schedule (see
:func:`renderstate.rendering._pieces.schedule_pictures`) and reports the frames it encodes;
:class:`Background` runs one while the caller works (the soundtrack's AAC, the join). No
ffmpeg process outlives a call that fails.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from renderstate._children import popen
from renderstate.rendering._frames import SceneFrames, frame_function
from renderstate.rendering.timeline import Timeline
from renderstate.typing import ProgressSink

__all__ = ["Background", "FrameProgress", "Reader", "failed", "pipe"]


class Reader(threading.Thread):
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


class FrameProgress:
    """The video frames done, from the encoded-frame count ffmpeg reports (``-progress``)."""

    def __init__(self, sink: ProgressSink, total: int, done: Callable[[int], int]) -> None:
        self._sink = sink
        self._total = total
        self._done = done
        self._encoded = 0
        self._reported = 0
        self._changed = threading.Condition()
        self.ended = False

    def on_line(self, line: bytes) -> None:
        if line.startswith(b"frame="):
            with contextlib.suppress(ValueError), self._changed:
                self._encoded = int(line[6:])
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
        done = self._total if final else min(self._done(self._encoded), self._total)
        # One call per frame count, so a sink waiting for frame N sees N; the counts come
        # from ffmpeg, so they follow the encoder rather than how fast pictures are piped.
        for count in range(self._reported + 1, done + 1):
            self._sink("rendering", count, self._total)
        self._reported = max(self._reported, done)


class Background:
    """An ffmpeg process that runs while the caller works; :meth:`finish` waits for it."""

    def __init__(self, command: list[str], *, cwd: Path | None = None) -> None:
        self._errors: deque[bytes] = deque(maxlen=50)
        self._process = popen(  # dies with this thread: see renderstate._children
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        assert self._process.stderr is not None
        self._reader = Reader(self._process.stderr, self._errors.append)
        self._reader.start()

    def finish(self) -> None:
        """Wait for the process to end.

        Raises:
            RuntimeError: ffmpeg failed (its error output is in the message).
        """
        self._process.wait()
        self._reader.join()
        if self._process.returncode != 0:
            failed(self._process.returncode, b"".join(self._errors))

    def stop(self) -> None:
        """Kill the process if it still runs, and reap it (the way out of a failure)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._reader.join(timeout=5)
        if self._process.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                self._process.stderr.close()


def failed(status: int, errors: bytes) -> None:
    message = errors.decode(errors="replace").strip()[-4000:] or "no message"
    msg = f"ffmpeg failed with exit status {status}: {message}"
    raise RuntimeError(msg)


def pipe(
    command: list[str],
    *,
    timeline: Timeline,
    size: tuple[int, int],
    fps: float,
    schedule: list[tuple[int, int, int]],
    tracker: FrameProgress,
) -> int:
    """Run ffmpeg ``command``, piping it the pictures of ``schedule``; return how many.

    Raises:
        RuntimeError: ffmpeg failed (its error output is in the message).
    """
    width, height = size
    frames = SceneFrames(timeline, width, height)
    frame_at = frame_function(timeline, frames)
    errors: deque[bytes] = deque(maxlen=50)
    process = popen(  # dies with this thread: see renderstate._children
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    readers = [Reader(process.stdout, tracker.on_line), Reader(process.stderr, errors.append)]
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
            failed(process.returncode, b"".join(errors))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        for reader in readers:
            reader.join(timeout=5)
    return piped
