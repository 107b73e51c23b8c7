"""Encode a timeline with ffmpeg: each distinct picture piped once, each still encoded once.

A still stretch of a scene is one picture shown for many frames. moviepy would pipe that
picture to ffmpeg once per frame, ffmpeg would convert each copy from RGB to YUV and x264
would encode each copy again. Here:

- each picture is piped once, stamped with the frame it starts at; ffmpeg converts it to
  ``yuv420p`` once and its ``fps`` filter repeats the converted picture (crossfade frames
  are computed and piped one by one);
- a long still stretch is encoded once as a short *head* (:data:`HEAD_FRAMES` frames from
  a keyframe, encoded the ordinary way) and a *block* of 16 frames (32 at ``veryslow``)
  that x264 is told to encode at the coarsest quantiser, so every block frame is an exact
  copy of the head's last picture (a P-frame of skipped macroblocks, about 40 bytes at
  720p). The stretch plays as units of about :data:`KEYFRAME_INTERVAL` frames, each the
  head (its keyframe) followed by the block repeated by stream copy, and ends with the
  few frames that followed the block in the encode. B-frames are off, so pictures are
  numbered in decoding order (``pic_order_cnt_type`` 2) and the block is a whole cycle
  of ``frame_num``: the joined stream numbers its frames without a gap, as if x264 had
  encoded every frame. One ffmpeg encodes every piece (and the soundtrack to AAC, in
  parallel), a second joins them with the concat demuxer, each entry given its exact
  duration, and writes the MP4 with ``+faststart``. x264 sees a few dozen frames per
  scene however long the scene lasts;
- a timeline with nothing to repeat (short scenes) is encoded in one pass, straight into
  the target.

Every frame of the output shows the picture the frame function gives for its time, at the
same quality, and the file is about the size of the one-pass encode's: keyframes come
about as often (once per unit instead of x264's ``keyint`` of 250), and a repeated frame
costs what x264 spends on a still frame anyway. Memory does not grow with the duration:
one picture is in flight at a time and the scene cache keeps two.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

from renderstate.rendering._ffmpeg import Background, FrameProgress, pipe
from renderstate.rendering._frames import frame_runs
from renderstate.rendering._pieces import (
    HEAD_FRAMES,
    KEYFRAME_INTERVAL,
    Plan,
    frame_number_period,
    frames_done,
    pieces_list,
    plan_pieces,
    schedule_pictures,
    timestamps,
)
from renderstate.rendering._scratch import Scratch
from renderstate.rendering.timeline import Timeline, frame_count
from renderstate.typing import ProgressSink

__all__ = [
    "HEAD_FRAMES",
    "HEAD_RATE",
    "KEYFRAME_INTERVAL",
    "Encoded",
    "encode_timeline",
    "plan_pieces",
]

_log = logging.getLogger("renderstate.rendering.moviepy")

_PROGRESS_SECONDS = "0.1"
"""How often ffmpeg reports the frames it has encoded."""


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


HEAD_RATE = 1.8
"""How much more rate (x264 zone ``b=``) a head gets than crf alone would give it.

Encoding every frame, x264's macroblock tree sees the dozens of frames that copy a still's
keyframe and lowers its quantiser; here the block after the head is coarse by design and
the next scene comes soon after, so the keyframe would get less. Measured at preset
medium, crf 23, 720p (PSNR of every seventh frame against the drawn pictures): the
reference timeline with photographs behind its titles is 40.0 dB without this, 41.6 dB
with it, and 41.5 dB encoding every frame (at 0.79x, 1.03x and 1x the size); with colours
behind the titles, 43.5, 43.8 and 43.8 dB (0.99x, 1.02x, 1x)."""

_COPY_ANALYSIS = "subme=0,me=dia,trellis=0,analyse=none,8x8dct=0,psy=0"
"""x264's settings for a block's frames: a still copy needs no search for better modes.

They make a block's frames about a third cheaper to encode; the frames are the same
(every macroblock skipped), so the output is too."""


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
        *("-filter:v", f"setpts='{timestamps(schedule)}',format=yuv420p,fps={rate}"),
        *("-map", "0:v", "-c:v", "libx264", "-preset", preset, "-crf", str(crf)),
        *("-pix_fmt", "yuv420p"),
    ]
    if threads is not None:
        arguments += ["-threads", str(threads)]
    return arguments


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
    repeat: bool = True,
    scratch: Scratch | None = None,
) -> Encoded:
    """Write ``timeline`` as H.264 ``yuv420p`` (+ AAC from ``audio``) with ``+faststart``.

    ``repeat=False`` encodes every frame in one pass.

    Scratch files (the pieces, their list, the AAC soundtrack) are made in ``scratch``,
    which removes them when it is closed; by default in a
    :class:`~renderstate.rendering._scratch.Scratch` of ``target`` of its own (a private
    directory beside it, unless it is in one already), closed before this returns.

    Raises:
        RuntimeError: ffmpeg failed (its error output is in the message).
    """
    count = frame_count(timeline.duration, fps)
    rate = Fraction(fps).limit_denominator(1_000_000)
    # Every scene is a still picture (a colour or a photograph, and text) between its
    # crossfades: a repetition adds a keyframe only once per unit, whatever the picture.
    repeatable = [True] * len(timeline.scenes)
    period = frame_number_period(preset) if repeat else 0
    plan = plan_pieces(frame_runs(timeline, fps, count), period, repeatable)
    lengths = [sum(run.end - run.start for run in piece) for piece in plan.pieces]
    schedule = schedule_pictures(plan.pieces)
    tracker = FrameProgress(progress, count, frames_done(plan))
    command = _input(ffmpeg, size, rate)
    # "file:" keeps a name like "-x.mp4" or "a:b.mp4" from reading as an option or protocol.
    if plan.playlist == [0]:
        # Nothing to repeat: one pass, straight into the target, the soundtrack with it.
        if audio is not None:
            command += ["-i", f"file:{audio}", "-map", "1:a", "-c:a", "aac"]
        command += _video(schedule, rate, preset, crf, threads)
        command += ["-movflags", "+faststart", "-f", "mp4", f"file:{target}"]
        piped = pipe(
            command, timeline=timeline, size=size, fps=fps, schedule=schedule, tracker=tracker
        )
    else:
        own = scratch is None
        scratch = Scratch(target) if scratch is None else scratch
        try:
            piped = _encode_pieces(
                ffmpeg,
                command + _video(schedule, rate, preset, crf, threads),
                plan=plan,
                lengths=lengths,
                rate=rate,
                target=target,
                audio=audio,
                audio_beside=threads != 1,
                scratch=scratch,
                feed=lambda command: pipe(
                    command,
                    timeline=timeline,
                    size=size,
                    fps=fps,
                    schedule=schedule,
                    tracker=tracker,
                ),
            )
        finally:
            if own:
                scratch.close()
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
    scratch: Scratch,
    feed: Callable[[list[str]], int],
) -> int:
    """Encode the pieces with ``command`` fed by ``feed``, then join them into ``target``.

    The soundtrack is encoded to AAC by a second ffmpeg, at the same time as the pieces if
    ``audio_beside`` (a render then keeps more than one core busy), else before them. In the
    pieces' own process, ffmpeg would keep it in step with their (much shorter) video and
    encode most of it after the video. Returns the pictures piped.
    """
    # Short names of plain characters: the list of pieces can name them on its lines, and
    # they fit beside a target whose own name is as long as the file system allows. Each
    # is created here, exclusively, in the private scratch directory: ffmpeg only
    # overwrites the render's own files.
    files = [scratch.path(f"piece{i:06d}.mp4") for i in range(len(lengths))]
    sound = scratch.path("audio.m4a") if audio is not None else None
    starts = [0, *accumulate(lengths)]  # where each piece begins, and where the last ends
    # Each head starts with a keyframe (an IDR frame: x264's GOPs are closed); each block
    # is coarsely quantised, so x264 skips every macroblock and its frames copy the
    # frame before them, which is the same picture however often the block is played.
    # Each head is given the rate x264 gives a keyframe that a long still copies (see
    # HEAD_RATE). x264 counts its zones' frames from 0 and includes their last frame; in a
    # block's zone it also analyses the frames the cheapest way, there is nothing to find.
    keys = ",".join(
        f"{float((starts[index] - Fraction(1, 2)) / rate):.6f}" for index in sorted(plan.keyframes)
    )
    zones = "/".join(
        f"{starts[index]},{starts[index + 1] - 1},{setting}"
        for index, setting in sorted(
            [(index, f"q=51,{_COPY_ANALYSIS}") for index in plan.copies]
            + [(index, f"b={HEAD_RATE}") for index in plan.keyframes if index + 1 in plan.copies]
        )
    )
    command = [*command, "-bf", "0"]
    if keys:
        command += ["-force_key_frames", keys]
    if zones:
        command += ["-x264-params", f"zones={zones}"]
    if len(lengths) > 1:
        # The segment muxer cuts at each piece's first frame, a keyframe or not (a block
        # decodes after its head, never on its own). Its file name is a %d pattern: a "%"
        # of the directory's is doubled.
        command += [
            *("-f", "segment", "-segment_format", "mp4", "-break_non_keyframes", "1"),
            *("-segment_frames", ",".join(map(str, starts[1:-1])), "-reset_timestamps", "1"),
            f"file:{str(scratch.directory / scratch.name('piece')).replace('%', '%%')}%06d.mp4",
        ]
    else:
        command += ["-f", "mp4", f"file:{files[0]}"]
    # The join runs in the scratch directory (see concat_entry): it names files only.
    listing = scratch.name("pieces.txt")
    join = [
        *(ffmpeg, "-y", "-loglevel", "error", "-nostdin"),
        *("-f", "concat", "-safe", "0", "-i", f"file:{listing}"),
    ]
    if sound is not None:
        join += ["-i", f"file:{sound.name}", "-map", "0:v", "-map", "1:a"]
    join += ["-c", "copy", "-movflags", "+faststart", "-f", "mp4", f"file:{target.absolute()}"]
    running: list[Background] = []
    try:
        if audio is not None and sound is not None:
            running.append(
                Background(
                    [
                        *(ffmpeg, "-y", "-loglevel", "error", "-nostdin", "-i", f"file:{audio}"),
                        *("-map", "0:a", "-c:a", "aac", "-f", "mp4", f"file:{sound}"),
                    ]
                )
            )
            if not audio_beside:
                running[0].finish()
        piped = feed(command)
        if running:
            running[0].finish()
        with scratch.open("pieces.txt") as out:
            lines = pieces_list(plan, files, lengths, rate)
            out.write("".join(f"{line}\n" for line in lines).encode("ascii"))
        running.append(Background(join, cwd=scratch.directory))
        running[-1].finish()
    finally:
        for process in running:
            process.stop()
    return piped
