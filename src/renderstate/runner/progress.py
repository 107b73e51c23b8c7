"""How far one render attempt got: the :class:`Progress` value and the sink that builds it.

A renderer reports to a :class:`ProgressTracker` (a :class:`~renderstate.typing.ProgressSink`)
as often as it likes; the tracker publishes an immutable :class:`Progress` at most about ten
times a second, and always on a change of phase and at the end. Readers only ever see a
published value, and each attempt has its own tracker, so a reader never mixes the figures
of two attempts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from renderstate._attempts import Attempt, AttemptState
from renderstate._progress import _FINAL, QUEUED, Phase, Progress
from renderstate.ledger._owners import dead_owner

__all__ = ["DEFAULT_INTERVAL", "Phase", "Progress", "ProgressTracker", "progress_of"]

DEFAULT_INTERVAL: Final = 0.1
"""Seconds between two published updates within one phase (so about 10 per second)."""


_RESERVED: Final = frozenset({Phase.QUEUED.value, Phase.FINALIZING.value, "done", "failed"})
MAX_STEP_LENGTH: Final = 32
"""The longest phase name a renderer may report (the ledger's ``phase`` column)."""
MAX_LABEL_LENGTH: Final = 255
"""The most characters of a renderer's label kept (the ledger's ``label`` column)."""
_CUT: Final = "\u2026"


class ProgressTracker:
    """The progress sink of one render attempt; call it as ``tracker(phase, done, total)``.

    Args:
        interval: Minimum seconds between two published updates within one phase.
        clock: Monotonic clock, replaceable in tests.
        output_path: Where the attempt publishes its video, shown as
            :attr:`Progress.output_path`.
    """

    __slots__ = (
        "_clock",
        "_done",
        "_fraction",
        "_interval",
        "_label",
        "_last_publish",
        "_latest",
        "_lock",
        "_output_path",
        "_phase",
        "_render_started",
        "_started",
        "_step",
        "_step_done",
        "_step_total",
        "_total",
    )

    def __init__(
        self,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        output_path: str | None = None,
    ) -> None:
        self._clock = clock
        self._output_path = output_path
        self._interval = interval
        self._started = clock()
        self._last_publish = self._started
        self._render_started: float | None = None
        self._lock = threading.Lock()
        self._phase = Phase.QUEUED
        self._done = 0
        self._total = 0
        self._fraction = 0.0
        self._step = Phase.QUEUED.value
        self._step_done = 0
        self._step_total = 0
        self._label: str | None = None
        self._latest = QUEUED if output_path is None else replace(QUEUED, output_path=output_path)

    @property
    def latest(self) -> Progress:
        """The last published snapshot."""
        return self._latest

    def __call__(self, phase: str, done: int, total: int, label: str | None = None) -> None:
        """Record a renderer's report; see :class:`~renderstate.typing.ProgressSink`.

        Any phase name is accepted: ``"rendering"`` counts video frames (and drives
        :attr:`Progress.fraction` and the ETA); every other name (``"writing audio"``,
        ``"tts"``) is a step of the renderer's own, shown as :attr:`Progress.step` with its
        units in ``step_done``/``step_total``, under phase ``rendering`` (``"writing audio"``
        keeps its own :class:`Phase`). ``label``, a description of the step, is shown as
        :attr:`Progress.label` until another one is given or the step changes; one longer
        than 255 characters is cut to 255 (its last one ``…``), and what no database
        stores in text (a NUL, a lone surrogate) reads as U+FFFD and ``?``.

        Raises:
            ValueError: ``phase`` is empty, longer than 32 characters, or one of the
                runner's own phases (``queued``, ``finalizing``, ``done``, ``failed``).
            TypeError: ``label`` is neither text nor ``None``.
        """
        name: object = phase  # a renderer may pass anything
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_STEP_LENGTH:
            msg = (
                f"progress phase {phase!r} is not a usable name: report a non-empty text "
                f"of at most {MAX_STEP_LENGTH} characters, such as 'rendering' or 'tts'"
            )
            raise ValueError(msg)
        if phase in _RESERVED:
            msg = (
                f"progress phase {phase!r} is one of the runner's own phases; name the "
                f"renderer's step otherwise ('rendering' for video frames, 'tts', 'encode')"
            )
            raise ValueError(msg)
        label = _fitted(label)
        parsed = Phase.WRITING_AUDIO if phase == Phase.WRITING_AUDIO.value else Phase.RENDERING
        frames = phase == Phase.RENDERING.value
        now = self._clock()
        with self._lock:
            if self._phase in _FINAL:
                return  # a renderer thread that outlived its attempt changes nothing
            step_changed = phase != self._step
            self._step = phase
            if label is not None or step_changed:
                step_changed = step_changed or label != self._label
                self._label = label
            self._step_total = max(total, 0)
            self._step_done = min(max(done, 0), total) if total > 0 else max(done, 0)
            if frames and total > 0:
                if self._render_started is None:
                    self._render_started = now
                done = min(max(done, 0), total)
                if total != self._total:
                    self._total = total
                    self._done = done
                else:
                    self._done = max(self._done, done)
                self._fraction = max(self._fraction, self._done / total)
            changed = parsed is not self._phase or step_changed
            self._phase = parsed
            if changed or now - self._last_publish >= self._interval:
                self._publish(now)

    def snapshot(self) -> Progress:
        """Publish what the renderer last reported, even within the throttle, and return it.

        For a reader that polls rarely (the ledger's heartbeat): a render that reported a
        frame and then went quiet still shows that frame.
        """
        now = self._clock()
        with self._lock:
            if self._phase not in _FINAL and (
                self._latest.frames_done != self._done
                or self._latest.phase is not self._phase
                or self._latest.step != self._step
                or self._latest.step_done != self._step_done
                or self._latest.label != self._label
            ):
                self._publish(now)
            return self._latest

    def enter(self, phase: Phase) -> Progress:
        """Move to ``phase`` (the runner's own phases) and publish at once.

        ``done`` sets the fraction to 1.0; ``failed`` keeps the figures reached.
        """
        now = self._clock()
        with self._lock:
            if self._phase in _FINAL:
                return self._latest
            self._phase = phase
            if phase is Phase.DONE:
                self._fraction = 1.0
                self._done = self._total
            self._step = phase.value
            self._label = None
            self._step_done, self._step_total = self._done, self._total
            self._publish(now)
            return self._latest

    def _publish(self, now: float) -> None:
        eta: float | None = None
        if self._phase is Phase.DONE:
            eta = 0.0
        elif self._render_started is not None and self._fraction > 0.0:
            spent = now - self._render_started
            eta = max(spent * (1.0 - self._fraction) / self._fraction, 0.0)
        self._latest = Progress(
            phase=self._phase,
            fraction=self._fraction,
            frames_done=self._done,
            frames_total=self._total,
            elapsed=max(now - self._started, 0.0),
            eta=eta,
            step=self._step,
            step_done=self._step_done,
            step_total=self._step_total,
            live=self._phase not in _FINAL,
            label=self._label,
            output_path=self._output_path,
        )
        self._last_publish = now


def _fitted(label: object) -> str | None:
    """``label`` as the ledger holds it: cut to its column, without NUL characters."""
    if label is None:
        return None
    if not isinstance(label, str):
        # Never the value itself in the message: it may be anything, of any size.
        msg = (
            f"progress label must be a text or None, got {type(label).__name__}: pass a "
            f"description such as 'Encoding video'"
        )
        raise TypeError(msg)
    if len(label) > MAX_LABEL_LENGTH:
        label = label[: MAX_LABEL_LENGTH - 1] + _CUT
    # A lone surrogate (a file name decoded with surrogateescape) fails every UTF-8 driver.
    label = label.encode("utf-8", "replace").decode("utf-8")
    return label.replace("\x00", "\ufffd")


_ENDED: Final = {
    AttemptState.COMPLETED: Phase.DONE,
    AttemptState.FAILED: Phase.FAILED,
    AttemptState.SUPERSEDED: Phase.FAILED,
    AttemptState.INTERRUPTED: Phase.FAILED,
}
_PHASES: Final = {p.value: p for p in Phase}
# The steps whose done/total the ledger holds are video frames.
_FRAME_STEPS: Final = frozenset(
    p.value for p in (Phase.QUEUED, Phase.RENDERING, Phase.FINALIZING, Phase.DONE, Phase.FAILED)
)


def progress_of(attempt: Attempt, now: float, lease: float | None = None) -> Progress:
    """Return the progress a ledger record shows, as of the UNIX time ``now``.

    A live attempt whose lease has run out, or whose worker is a process of this machine
    that is gone (the check recovery makes), reads as stale (:attr:`Progress.live` false);
    with ``lease`` (the ledger's), :attr:`Progress.age` is how long ago its worker last
    renewed it, which is when it last wrote these figures.

    A renderer's own phase names (anything the runner does not know) read as phase
    ``rendering`` with that name as :attr:`Progress.step`; an ended attempt reads as
    ``done`` or ``failed``. The ledger keeps one ``done``/``total`` pair, the current
    step's: during a step of the renderer's own, ``frames_done``/``frames_total`` read 0
    (``fraction`` is kept). :attr:`Progress.output_path` and :attr:`Progress.label` are
    the attempt's (no label once it has ended).
    """
    phase = _ENDED.get(attempt.state) or _PHASES.get(attempt.phase, Phase.RENDERING)
    counts_frames = attempt.phase in _FRAME_STEPS
    fraction = min(max(attempt.fraction, 0.0), 1.0)
    until = attempt.finished_at if attempt.finished_at is not None else now
    expires = attempt.lease_expires_at
    # A worker of this machine that is gone (SIGKILLed, say) renews nothing any more:
    # stale at once, as recovery sees it, not when the lease it renewed runs out.
    live = attempt.active and (expires is None or expires > now) and not dead_owner(attempt)
    age = 0.0
    if attempt.active and expires is not None and lease is not None:
        age = max(now - (expires - lease), 0.0)
    return Progress(
        phase=phase,
        fraction=1.0 if phase is Phase.DONE else fraction,
        frames_done=attempt.done if counts_frames else 0,
        frames_total=attempt.total if counts_frames else 0,
        elapsed=max(until - attempt.created_at, 0.0),
        eta=0.0 if phase is Phase.DONE else attempt.eta_seconds,
        step=phase.value if phase in _FINAL else attempt.phase,
        step_done=attempt.done,
        step_total=attempt.total,
        live=live,
        age=age,
        # An ended attempt shows no description, as the runner's own job does.
        label=None if phase in _FINAL else attempt.label,
        output_path=attempt.output_path,
    )
