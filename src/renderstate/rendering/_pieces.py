"""Planning the pieces: which frames x264 encodes, in which order, and how they are joined.

A long still stretch of a scene is encoded once as a short *piece* and repeated by stream
copy (see :mod:`renderstate.rendering._encode`). This module decides the pieces from the
video's runs of frames, the pictures to pipe for them and when each is shown, how encoded
frames translate into video frames for progress, and the concat list that joins the pieces
with exact durations. Plain Python: no process is started here.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

from renderstate.rendering._frames import Run

__all__ = [
    "CHUNK_FRAMES",
    "Plan",
    "concat_entry",
    "frames_done",
    "piece_length",
    "pieces_list",
    "plan_pieces",
    "schedule_pictures",
    "timestamps",
]

CHUNK_FRAMES = 16
"""About how many frames a repeated still piece has (8 to 24, see :func:`_piece_length`).

Each repetition starts with a keyframe (about 5 KB for a titled 720p picture at crf 23),
so shorter pieces make larger files, and give x264 less room to spend bits on the
keyframe that the frames after it copy; longer pieces cost x264 more frames per scene
(about 10 ms of CPU each at 720p, preset medium). A still stretch shorter than twice this
is encoded whole."""


class Plan(NamedTuple):
    """The pieces to encode, each a list of runs of output frames, and their order of use."""

    pieces: list[list[Run]]
    """Each piece's frames, as they first appear in the video."""
    playlist: list[int]
    """The piece shown at each position of the video, in order."""


def piece_length(length: int, chunk: int) -> int:
    """The length of the piece repeated over a still run of ``length`` frames.

    Between half and one and a half ``chunk``, the one that leaves the fewest frames to
    encode: the piece plus what is left over after its last whole repetition.
    """
    sizes = range(max(1, chunk // 2), chunk + chunk // 2 + 1)
    return min(sizes, key=lambda size: (size + length % size, length // size))


def plan_pieces(runs: list[Run], chunk: int, repeatable: Sequence[bool]) -> Plan:
    """Split the video's ``runs`` into pieces: repeated still pieces and pieces used once.

    A still run of at least ``2 * chunk`` frames of a scene whose ``repeatable`` flag is
    set becomes a piece of about ``chunk`` frames (see :func:`piece_length`) used as many
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
        size = piece_length(length, chunk)
        repeats, rest = divmod(length, size)
        pieces.append([Run(run.start, run.start + size, run.scene, moving=False)])
        playlist += [len(pieces) - 1] * repeats
        growing = False
        if rest:
            once(Run(run.end - rest, run.end, run.scene, moving=False))
    return Plan(pieces, playlist)


def schedule_pictures(pieces: list[list[Run]]) -> list[tuple[int, int, int]]:
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


def timestamps(schedule: list[tuple[int, int, int]]) -> str:
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


def frames_done(plan: Plan) -> Callable[[int], int]:
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


def concat_entry(path: Path) -> str:
    """``path``'s file name as a concat-list ``file`` line (single-quoted, ``'`` escaped).

    The join runs in the pieces' directory, so the list names them without a directory:
    a newline, or bytes that are not UTF-8, anywhere in the directory's path would
    not fit in the list's lines.
    """
    quoted = f"file:{path.name}".replace("'", "'\\''")
    return f"file '{quoted}'"


def pieces_list(plan: Plan, files: list[Path], lengths: list[int], rate: Fraction) -> Iterator[str]:
    """The concat list: each use of a piece with its exact duration.

    Durations are written in microseconds; each is the difference of the rounded start
    times, so rounding never accumulates along a long video.
    """
    frame = 0
    for index in plan.playlist:
        start = round(Fraction(frame) / rate * 1_000_000)
        frame += lengths[index]
        end = round(Fraction(frame) / rate * 1_000_000)
        yield concat_entry(files[index])
        yield f"duration {end - start}us"
