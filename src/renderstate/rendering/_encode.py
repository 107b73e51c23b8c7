"""Encode a timeline with ffmpeg: each distinct picture piped once, each still encoded once.

A still stretch of a scene is one picture shown for many frames. moviepy would pipe that
picture to ffmpeg once per frame, ffmpeg would convert each copy from RGB to YUV and x264
would encode each copy again. Here:

- each picture is piped once, stamped with the frame it starts at; ffmpeg converts it to
  ``yuv420p`` once and its ``fps`` filter repeats the converted picture (crossfade frames
  are computed and piped one by one);
- a long still stretch is encoded once as a short *piece* (:data:`CHUNK_FRAMES` frames,
  starting with a keyframe, same preset and crf), and the stretch is that piece repeated
  by stream copy, plus a piece for the frames left over. One ffmpeg encodes every piece
  (and the soundtrack to AAC, in parallel), a second joins them with the concat demuxer,
  each entry given its exact duration, and writes the MP4 with ``+faststart``. x264 sees
  a few dozen frames per scene however long the scene lasts;
- a timeline with nothing to repeat (short scenes) is encoded in one pass, straight into
  the target.

Every frame of the output shows the picture the frame function gives for its time, at the
same quality: only the position of keyframes changes (one per repeated piece), which makes
the file somewhat larger. Memory does not grow with the duration: one picture is in flight
at a time and the scene cache keeps two.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from itertools import accumulate
from pathlib import Path
from typing import IO, NamedTuple

from renderstate.files import scratch_path
from renderstate.rendering._frames import Run, SceneFrames, frame_function, frame_runs
from renderstate.rendering.timeline import Timeline, frame_count
from renderstate.typing import ProgressSink

__all__ = ["CHUNK_FRAMES", "Encoded", "encode_timeline", "plan_pieces"]

_log = logging.getLogger("renderstate.rendering.moviepy")

_PROGRESS_SECONDS = "0.1"
"""How often ffmpeg reports the frames it has encoded."""

CHUNK_FRAMES = 16
"""About how many frames a repeated still piece has (8 to 24, see :func:`_piece_length`).

Each repetition starts with a keyframe (about 5 KB for a titled 720p picture at crf 23),
so shorter pieces make larger files, and give x264 less room to spend bits on the
keyframe that the frames after it copy; longer pieces cost x264 more frames per scene
(about 10 ms of CPU each at 720p, preset medium). A still stretch shorter than twice this
is encoded whole."""


class Encoded(NamedTuple):
    """What :func:`encode_timeline` did."""

    frames: int
    """Frames in the video."""
    encoded: int
    """Frames x264 encoded (the rest are repeated pieces)."""
    piped: int
    """Pictures piped to ffmpeg."""
    pieces: int
    """Pieces joined into the video (1: encoded in one pass)."""


class Plan(NamedTuple):
    """The pieces to encode, each a list of runs of output frames, and their order of use."""

    pieces: list[list[Run]]
    """Each piece's frames, as they first appear in the video."""
    playlist: list[int]
    """The piece shown at each position of the video, in order."""


def _piece_length(length: int, chunk: int) -> int:
    """The length of the piece repeated over a still run of ``length`` frames.

    Between half and one and a half ``chunk``, the one that leaves the fewest frames to
    encode: the piece plus what is left over after its last whole repetition.
    """
    sizes = range(max(1, chunk // 2), chunk + chunk // 2 + 1)
    return min(sizes, key=lambda size: (size + length % size, length // size))


def plan_pieces(runs: list[Run], chunk: int, repeatable: Sequence[bool]) -> Plan:
    """Split the video's ``runs`` into pieces: repeated still pieces and pieces used once.

    A still run of at least ``2 * chunk`` frames of a scene whose ``repeatable`` flag is
    set becomes a piece of about ``chunk`` frames (see :func:`_piece_length`) used as many
    times as it fits, the frames left over going to the next piece used once. Runs used
    once (crossfades, short stills, left-overs, other scenes) share a piece until the next
    repeated one. ``chunk == 0`` repeats nothing: one piece.
    """
    pieces: list[list[Run]] = []
    playlist: list[int] = []
    growing = False  # whether the last piece is used once and may take more runs

    def once(run: Run) -> None:
        nonlocal growing
        if growing:
            pieces[-1].append(run)
        else:
            pieces.append([run])
            playlist.append(len(pieces) - 1)
            growing = True

    for run in runs:
        length = run.end - run.start
        if run.moving or not chunk or length < 2 * chunk or not repeatable[run.scene]:
            once(run)
            continue
        size = _piece_length(length, chunk)
        repeats, rest = divmod(length, size)
        pieces.append([Run(run.start, run.start + size, run.scene, moving=False)])
        playlist += [len(pieces) - 1] * repeats
        growing = False
        if rest:
            once(Run(run.end - rest, run.end, run.scene, moving=False))
    return Plan(pieces, playlist)


def _schedule(pieces: list[list[Run]]) -> list[tuple[int, int, int]]:
    """Return ``(encoded frame, scene, first moving frame or -1)`` per picture to pipe.

    The pieces are encoded one after the other. A still run is one entry (its scene's
    picture, at the run's first frame); a crossfade run is one entry per frame, computed
    at its output frame. The list grows with the scenes and the crossfade frames, never
    with the length of still stretches.
    """
    schedule: list[tuple[int, int, int]] = []
    position = 0
    last: Run | None = None
    for run in (run for piece in pieces for run in piece):
        length = run.end - run.start
        if run.moving:
            schedule += [(position + i, run.scene, run.start + i) for i in range(length)]
        else:
            schedule.append((position, run.scene, -1))
        position += length
        last = run
    if last is not None and not last.moving and last.end - 1 > last.start:
        # The fps filter repeats a picture until the next one arrives: a closing copy
        # makes the last still run last to the final frame.
        schedule.append((position - 1, last.scene, -1))
    return schedule


def _timestamps(schedule: list[tuple[int, int, int]]) -> str:
    """Return a ``setpts`` expression mapping the N-th piped picture to its encoded frame.

    The frame is N plus an offset that changes only where the schedule skips frames
    (after each still picture), so the expression has a term per still run.
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


def _frames_done(plan: Plan) -> Callable[[int], int]:
    """Return ``encoded frames -> video frames they make``: a piece counts once per use."""
    starts: list[int] = []
    before: list[int] = []  # video frames made by the pieces before each piece
    uses = [plan.playlist.count(index) for index in range(len(plan.pieces))]
    position = made = 0
    for piece, use in zip(plan.pieces, uses, strict=True):
        starts.append(position)
        before.append(made)
        length = sum(run.end - run.start for run in piece)
        position += length
        made += length * use

    def done(encoded: int) -> int:
        encoded = min(encoded, position)
        index = max(bisect.bisect_right(starts, encoded) - 1, 0)
        return before[index] + (encoded - starts[index]) * uses[index]

    return done


def _concat_entry(path: Path) -> str:
    """``path``'s file name as a concat-list ``file`` line (single-quoted, ``'`` escaped).

    The join runs in the pieces' directory, so the list names them without a directory:
    a newline, or bytes that are not UTF-8, anywhere in the directory's path would
    not fit in the list's lines.
    """
    quoted = f"file:{path.name}".replace("'", "'\\''")
    return f"file '{quoted}'"


def _pieces_list(
    plan: Plan, files: list[Path], lengths: list[int], rate: Fraction
) -> Iterator[str]:
    """The concat list: each use of a piece with its exact duration.

    Durations are written in microseconds; each is the difference of the rounded start
    times, so rounding never accumulates along a long video.
    """
    frame = 0
    for index in plan.playlist:
        start = round(Fraction(frame) / rate * 1_000_000)
        frame += lengths[index]
        end = round(Fraction(frame) / rate * 1_000_000)
        yield _concat_entry(files[index])
        yield f"duration {end - start}us"


def _input(ffmpeg: str, size: tuple[int, int], rate: Fraction) -> list[str]:
    """The start of a command: ffmpeg reading RGB pictures on stdin, reporting on stdout."""
    width, height = size
    return [
        ffmpeg,
        *("-y", "-loglevel", "error", "-nostats", "-progress", "pipe:1"),
        *("-stats_period", _PROGRESS_SECONDS),
        *("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"),
        *("-framerate", str(rate), "-i", "pipe:0"),
    ]


def _video(
    schedule: list[tuple[int, int, int]], rate: Fraction, preset: str, crf: int, threads: int | None
) -> list[str]:
    """The video output's options: the frames of ``schedule``, encoded with x264."""
    # The schedule is known before any picture is drawn, so the filter graph can say when
    # each piped picture is shown: converted to yuv420p once, then repeated by fps.
    arguments = [
        *("-filter:v", f"setpts='{_timestamps(schedule)}',format=yuv420p,fps={rate}"),
        *("-map", "0:v", "-c:v", "libx264", "-preset", preset, "-crf", str(crf)),
        *("-pix_fmt", "yuv420p"),
    ]
    if threads is not None:
        arguments += ["-threads", str(threads)]
    return arguments


class _Background:
    """An ffmpeg process that runs while the caller works; :meth:`finish` waits for it."""

    def __init__(self, command: list[str], *, cwd: Path | None = None) -> None:
        self._errors: deque[bytes] = deque(maxlen=50)
        self._process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        assert self._process.stderr is not None
        self._reader = _Reader(self._process.stderr, self._errors.append)
        self._reader.start()

    def finish(self) -> None:
        """Wait for the process to end.

        Raises:
            RuntimeError: ffmpeg failed (its error output is in the message).
        """
        self._process.wait()
        self._reader.join()
        if self._process.returncode != 0:
            _failed(self._process.returncode, b"".join(self._errors))

    def stop(self) -> None:
        """Kill the process if it still runs, and reap it (the way out of a failure)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._reader.join(timeout=5)
        if self._process.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                self._process.stderr.close()


def _failed(status: int, errors: bytes) -> None:
    message = errors.decode(errors="replace").strip()[-4000:] or "no message"
    msg = f"ffmpeg failed with exit status {status}: {message}"
    raise RuntimeError(msg)


def _pipe(
    command: list[str],
    *,
    timeline: Timeline,
    size: tuple[int, int],
    fps: float,
    schedule: list[tuple[int, int, int]],
    tracker: _Progress,
) -> int:
    """Run ffmpeg ``command``, piping it the pictures of ``schedule``; return how many.

    Raises:
        RuntimeError: ffmpeg failed (its error output is in the message).
    """
    width, height = size
    frames = SceneFrames(timeline, width, height)
    frame_at = frame_function(timeline, frames)
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
            _failed(process.returncode, b"".join(errors))
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
    chunk: int = CHUNK_FRAMES,
) -> Encoded:
    """Write ``timeline`` as H.264 ``yuv420p`` (+ AAC from ``audio``) with ``+faststart``.

    Scratch files (the pieces, their list, the AAC soundtrack) sit beside ``target``,
    named by :func:`renderstate.files.scratch_path` after it (short, whatever ``target``'s
    name), and are removed before this returns.

    Raises:
        RuntimeError: ffmpeg failed (its error output is in the message).
    """
    count = frame_count(timeline.duration, fps)
    rate = Fraction(fps).limit_denominator(1_000_000)
    # A scene's keyframe costs a few KB when it is a colour and text, but can cost 100 KB
    # and more with a photograph: only the first are repeated, each repetition adding one.
    repeatable = [scene.image is None for scene in timeline.scenes]
    plan = plan_pieces(frame_runs(timeline, fps, count), chunk, repeatable)
    lengths = [sum(run.end - run.start for run in piece) for piece in plan.pieces]
    schedule = _schedule(plan.pieces)
    tracker = _Progress(progress, count, _frames_done(plan))
    command = _input(ffmpeg, size, rate)
    # "file:" keeps a name like "-x.mp4" or "a:b.mp4" from reading as an option or protocol.
    if plan.playlist == [0]:
        # Nothing to repeat: one pass, straight into the target, the soundtrack with it.
        if audio is not None:
            command += ["-i", f"file:{audio}", "-map", "1:a", "-c:a", "aac"]
        command += _video(schedule, rate, preset, crf, threads)
        command += ["-movflags", "+faststart", "-f", "mp4", f"file:{target}"]
        piped = _pipe(
            command, timeline=timeline, size=size, fps=fps, schedule=schedule, tracker=tracker
        )
    else:
        piped = _encode_pieces(
            ffmpeg,
            command + _video(schedule, rate, preset, crf, threads),
            plan=plan,
            lengths=lengths,
            rate=rate,
            target=target,
            audio=audio,
            audio_beside=threads != 1,
            pipe=lambda command: _pipe(
                command, timeline=timeline, size=size, fps=fps, schedule=schedule, tracker=tracker
            ),
        )
    tracker.report(final=True)
    _log.debug(
        "piped %d pictures, encoded %d frames in %d pieces for %d frames of %s",
        piped,
        sum(lengths),
        len(lengths),
        count,
        target.name,
    )
    return Encoded(frames=count, encoded=sum(lengths), piped=piped, pieces=len(plan.playlist))


def _encode_pieces(
    ffmpeg: str,
    command: list[str],
    *,
    plan: Plan,
    lengths: list[int],
    rate: Fraction,
    target: Path,
    audio: str | None,
    audio_beside: bool,
    pipe: Callable[[list[str]], int],
) -> int:
    """Encode the pieces with ``command`` fed by ``pipe``, then join them into ``target``.

    The soundtrack is encoded to AAC by a second ffmpeg, at the same time as the pieces if
    ``audio_beside`` (a render then keeps more than one core busy), else before them. In the
    pieces' own process, ffmpeg would keep it in step with their (much shorter) video and
    encode most of it after the video. Returns the pictures piped.
    """
    # Short names of plain characters: the list of pieces can name them on its lines, and
    # they fit beside a target whose own name is as long as the file system allows.
    files = [scratch_path(target, f"piece{i:06d}.mp4") for i in range(len(lengths))]
    listing = scratch_path(target, "pieces.txt")
    sound = scratch_path(target, "audio.m4a")
    starts = list(accumulate(lengths))[:-1]  # where each piece after the first begins
    if starts:
        # Each piece starts with a keyframe (an IDR frame: x264's GOPs are closed) and the
        # segment muxer cuts there, so every piece decodes on its own. Its file name is a
        # %d pattern: a "%" of the directory's is doubled.
        keys = ",".join(f"{float((start - Fraction(1, 2)) / rate):.6f}" for start in starts)
        command = [
            *command,
            *("-force_key_frames", keys, "-f", "segment", "-segment_format", "mp4"),
            *("-segment_frames", ",".join(map(str, starts)), "-reset_timestamps", "1"),
            f"file:{str(scratch_path(target, 'piece')).replace('%', '%%')}%06d.mp4",
        ]
    else:
        command = [*command, "-f", "mp4", f"file:{files[0]}"]
    # The join runs in the target's directory (see _concat_entry): it names files only.
    join = [
        *(ffmpeg, "-y", "-loglevel", "error", "-nostdin"),
        *("-f", "concat", "-safe", "0", "-i", f"file:{listing.name}"),
    ]
    if audio is not None:
        join += ["-i", f"file:{sound.name}", "-map", "0:v", "-map", "1:a"]
    join += ["-c", "copy", "-movflags", "+faststart", "-f", "mp4", f"file:{target.name}"]
    running: list[_Background] = []
    try:
        if audio is not None:
            running.append(
                _Background(
                    [
                        *(ffmpeg, "-y", "-loglevel", "error", "-nostdin", "-i", f"file:{audio}"),
                        *("-map", "0:a", "-c:a", "aac", "-f", "mp4", f"file:{sound}"),
                    ]
                )
            )
            if not audio_beside:
                running[0].finish()
        piped = pipe(command)
        if running:
            running[0].finish()
        listing.write_text(
            "".join(f"{line}\n" for line in _pieces_list(plan, files, lengths, rate)),
            encoding="ascii",
        )
        running.append(_Background(join, cwd=target.parent))
        running[-1].finish()
    finally:
        for process in running:
            process.stop()
        for path in (*files, listing, sound):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
    return piped
