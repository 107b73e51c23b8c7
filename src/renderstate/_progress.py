"""The progress of one render attempt: a plain value, shared by the runner and its readers.

It lives in the domain so that :class:`~renderstate.typing.ProgressSource` can name it and
any source (the runner in this process, a ledger in the database) hands out the same type;
:mod:`renderstate.runner.progress` re-exports it with the tracker that builds it.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

__all__ = ["QUEUED", "Phase", "Progress"]


class Phase(str, enum.Enum):
    """Where a render attempt is; the value is what a progress API shows."""

    QUEUED = "queued"
    """Accepted (the project is PROCESSING) and waiting for a free worker."""
    WRITING_AUDIO = "writing audio"
    """The renderer is writing the soundtrack (moviepy does this before the frames)."""
    RENDERING = "rendering"
    """The renderer is producing video frames."""
    FINALIZING = "finalizing"
    """The renderer returned; the file is being flushed and moved into place."""
    DONE = "done"
    """The video replaced the final file and the project is COMPLETED."""
    FAILED = "failed"
    """The attempt ended without a new video; the project is FAILED."""

    def __str__(self) -> str:
        return self.value


_FINAL: Final = frozenset({Phase.DONE, Phase.FAILED})


@dataclasses.dataclass(frozen=True)
class Progress:
    """A snapshot of one render attempt, safe to hand to any thread or serialise."""

    phase: Phase
    """Where the attempt is."""
    fraction: float
    """Share of the video frames rendered, from 0.0 to 1.0; never decreases within an attempt,
    and is exactly 1.0 in phase ``done``."""
    frames_done: int
    """Video frames rendered so far in this attempt."""
    frames_total: int
    """Video frames this attempt will render; 0 until the renderer has said."""
    elapsed: float
    """Seconds since the attempt was accepted (including time spent queued)."""
    eta: float | None
    """Estimated seconds until the frames are rendered; ``None`` until one frame is."""
    step: str = ""
    """The phase name the renderer reported last (``"rendering"``, ``"writing audio"``, or
    its own: ``"fetch assets"``, ``"tts"``, ``"compose"``, ``"encode"``), or the runner's
    phase (``"queued"``, ``"finalizing"``, ``"done"``, ``"failed"``)."""
    step_done: int = 0
    """Units of :attr:`step` done, in the renderer's own units (frames, files, sentences)."""
    step_total: int = 0
    """Units of :attr:`step` in all; 0 while unknown."""
    live: bool = True
    """Whether these figures are being kept up to date: the attempt runs in this process, or
    (read from the ledger) its worker's lease is current. ``False`` for an ended attempt
    and for one whose worker stopped renewing its lease (it died or hangs): its last
    figures, shown until recovery or a takeover ends the attempt, are stale. A worker of
    this machine whose process is gone (killed) reads as stale at once, as recovery sees
    it, without waiting for its lease to run out."""
    age: float = 0.0
    """Seconds since the worker last wrote these figures, for a live or stale attempt read
    from the ledger (as of the reader's clock and lease); 0.0 for the runner's own job,
    whose figures are its latest, and for an ended attempt."""
    label: str | None = None
    """The description the renderer gave with its report of :attr:`step` (an app's
    ``on_progress(current, total, "Rendering frames")`` through
    :func:`~renderstate.runner.own_path`), ``None`` if it gave none, and always ``None``
    once the attempt has ended. The heartbeat writes it with the other figures, so a
    progress read from the ledger (another process's render) has it too. At most 255
    characters: a longer one is cut to 255, its last one ``…``; a NUL or a lone surrogate
    in it, which no database stores in text, reads as U+FFFD or ``?``."""
    output_path: str | None = None
    """The URL-relative path this attempt publishes its video (or output directory) at:
    its job's, or the one the ledger recorded for it; ``None`` while it is not known. For
    a model with no column for the path (``output_field=None``), a client that polls the
    progress learns from it where the video is once the phase is ``done``."""

    @property
    def finished(self) -> bool:
        """Whether the attempt has ended (phase ``done`` or ``failed``)."""
        return self.phase in _FINAL


QUEUED: Final = Progress(Phase.QUEUED, 0.0, 0, 0, 0.0, None, "queued")
"""How every attempt starts."""
