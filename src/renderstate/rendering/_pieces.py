"""Planning the pieces: which frames x264 encodes, in which order, and how they are joined.

A long still stretch of a scene is encoded once as a short head and block, and the block
repeated by stream copy (see :mod:`renderstate.rendering._encode`). This module decides the
pieces from the video's runs of frames, the pictures to pipe for them and when each is
shown, how encoded
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
    "HEAD_FRAMES",
    "KEYFRAME_INTERVAL",
    "Layout",
    "Plan",
    "concat_entry",
    "frame_number_period",
    "frames_done",
    "pieces_list",
    "plan_pieces",
    "schedule_pictures",
    "still_layout",
    "timestamps",
]

HEAD_FRAMES = 4
"""Frames of a repeated still run encoded the ordinary way, from its keyframe on.

x264 spends the first frames after a keyframe refining the picture (a titled 720p picture
at crf 23: about 7 KB for the keyframe, then 341 and 53 bytes, then about 40 bytes of
skipped macroblocks per frame); the *block* repeated after them only copies the picture
the head ends with. Each head frame costs x264 about 5 ms at 720p, preset medium."""

KEYFRAME_INTERVAL = 250
"""About how many frames a repeated still run has between keyframes (x264's own ``keyint``).

Each unit of a long still run (its head, then its block repeated) starts with the head's
keyframe, so a player seeks in a still run as it would in the one-pass encode."""


def frame_number_period(preset: str) -> int:
    """How many reference frames x264's ``frame_num`` counts before it wraps, at ``preset``.

    A repeated block must be a whole number of these long, so that the frame numbers of the
    joined video still run on without a gap. x264 (with B-frames off) writes
    ``log2_max_frame_num`` = 4 unless the preset keeps more than 14 reference frames
    (``veryslow``: 16), where it writes 5.
    """
    return 32 if preset in ("veryslow", "placebo") else 16


class Plan(NamedTuple):
    """The pieces to encode, each a list of runs of output frames, and their order of use."""

    pieces: list[list[Run]]
    """Each piece's frames, as they first appear in the video."""
    playlist: list[int]
    """The piece shown at each position of the video, in order."""
    keyframes: frozenset[int] = frozenset()
    """The pieces whose first frame must be a keyframe (an IDR frame)."""
    copies: frozenset[int] = frozenset()
    """The block pieces: their frames must be exact copies of the frame before them."""


class Layout(NamedTuple):
    """How a long still run is played (see :func:`still_layout`)."""

    units: list[int]
    """For each unit (the head, then the block repeated), how many times the block is played."""
    rest: int
    """The frames after the last whole block: a tail encoded once, or the block's first few."""


def still_layout(
    length: int, period: int, *, head: int = HEAD_FRAMES, unit: int = KEYFRAME_INTERVAL
) -> Layout | None:
    """How a still run of ``length`` frames is played, or ``None`` if it is too short to repeat.

    The run is units of about ``unit`` frames, each its ``head`` then a block of ``period``
    frames repeated; ``rest`` (fewer than ``period``) frames end the last unit. ``None``:
    fewer than two blocks in all, or fewer blocks than units.
    """
    units = -(-length // unit)
    rest = (length - units * head) % period
    blocks = (length - units * head - rest) // period
    if blocks < max(2, units):
        return None
    base, extra = divmod(blocks, units)
    return Layout([base + 1] * extra + [base] * (units - extra), rest)


def plan_pieces(
    runs: list[Run],
    period: int,
    repeatable: Sequence[bool],
    *,
    head: int = HEAD_FRAMES,
    unit: int = KEYFRAME_INTERVAL,
) -> Plan:
    """Split the video's ``runs`` into pieces: repeated still pieces and pieces used once.

    A long still run of a scene whose ``repeatable`` flag is set becomes a *head* of
    ``head`` frames starting with a keyframe and a *block* of ``period`` frames that only
    copies the head's last picture; the run plays as units (the head, then the block
    repeated, see :func:`still_layout`). Its last few frames are the block's first few when
    a keyframe follows the run (the next scene starts without a crossfade, or the video
    ends): the block is then two pieces, played in turn. Before a crossfade they are a
    *tail* encoded after the block, in the next piece used once. Either way every frame
    follows, in the video, the frames it was encoded after (or identical copies of them).
    Runs used once (crossfades, short stills, tails, other scenes) share a piece until the
    next repeated one. ``period == 0`` repeats nothing: one piece.
    """
    pieces: list[list[Run]] = []
    playlist: list[int] = []
    keyframes: set[int] = set()
    copies: set[int] = set()
    growing = False  # whether the last piece is used once and may take more runs
    after_cut = False  # whether the next run must start with a keyframe

    def once(run: Run) -> None:
        nonlocal growing
        if growing:
            pieces[-1].append(run)
        else:
            pieces.append([run])
            playlist.append(len(pieces) - 1)
            growing = True

    def piece(run: Run) -> int:
        pieces.append([run])
        return len(pieces) - 1

    for index, run in enumerate(runs):
        layout = None
        if period and not run.moving and repeatable[run.scene]:
            layout = still_layout(run.end - run.start, period, head=head, unit=unit)
        if layout is None:
            if after_cut:
                keyframes.add(len(pieces))
                after_cut = False
            once(run)
            continue
        cut = index + 1 == len(runs) or not runs[index + 1].moving
        first = run.start + head
        keyframes.add(piece(Run(run.start, first, run.scene, moving=False)))
        split = layout.rest if cut else 0
        if split:
            block = [
                piece(Run(first, first + split, run.scene, moving=False)),
                piece(Run(first + split, first + period, run.scene, moving=False)),
            ]
        else:
            block = [piece(Run(first, first + period, run.scene, moving=False))]
        copies.update(block)
        for blocks in layout.units:
            playlist += [block[0] - 1] + block * blocks
        growing = False
        after_cut = cut
        if split:
            playlist.append(block[0])
        elif layout.rest:
            once(Run(run.end - layout.rest, run.end, run.scene, moving=False))
    return Plan(pieces, playlist, frozenset(keyframes), frozenset(copies))


def schedule_pictures(pieces: list[list[Run]]) -> list[tuple[int, int, int]]:
    """Return ``(encoded frame, scene, first moving frame or -1)`` per picture to pipe.

    The pieces are encoded one after the other. A still run is one entry (its scene's
    picture, at the run's first frame), and still runs of one scene that follow each other
    (a head, its block, its tail) share it; a crossfade run is one entry per frame,
    computed at its output frame. The list grows with the scenes and the crossfade frames,
    never with the length of still stretches.
    """
    schedule: list[tuple[int, int, int]] = []
    position = 0
    for run in (run for piece in pieces for run in piece):
        length = run.end - run.start
        if run.moving:
            schedule += [(position + i, run.scene, run.start + i) for i in range(length)]
        elif not schedule or schedule[-1][1:] != (run.scene, -1):
            schedule.append((position, run.scene, -1))
        position += length
    if schedule and schedule[-1][2] < 0 and schedule[-1][0] < position - 1:
        # The fps filter repeats a picture until the next one arrives: a closing copy
        # makes the last still run last to the final frame.
        schedule.append((position - 1, schedule[-1][1], -1))
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
