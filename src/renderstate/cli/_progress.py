"""Live progress bars, and Ctrl-C that stops a render at its next progress report."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from renderstate._status import Status
from renderstate.cli._store import Project, Store
from renderstate.runner import RenderJob, RenderRunner
from renderstate.typing import ProgressSink, Renderer

CTRL_C: Final = "cancelled with Ctrl-C"
"""The reason stored for a render Ctrl-C stopped (in its ``RenderCancelledError``)."""

GRACE: Final = 1.0
"""Seconds a failed render waits to learn whether Ctrl-C caused the failure."""


class Cancellable:
    """Wraps a renderer so that a render Ctrl-C stops ends as cancelled, whatever it raised.

    :func:`watch` cancels the job on Ctrl-C (``job.cancel(CTRL_C)``): the render stops at
    its next progress report with a :class:`~renderstate.RenderCancelledError`, and the
    runner removes the temporary file, keeps the previous video and marks the project
    FAILED. But a terminal's Ctrl-C reaches the whole process group, ffmpeg too, and an
    ffmpeg killed by it fails the render (``exit status 255``) before the main thread has
    even seen the interrupt. So a failed render first waits a moment for that interrupt;
    if it came, the render reports progress once more, which the cancelled job answers with
    its :class:`~renderstate.RenderCancelledError` (the ffmpeg failure is its context).
    """

    def __init__(self, inner: Renderer[Any]) -> None:
        self.inner = inner
        self.interrupted = threading.Event()
        """Set by :func:`watch` once Ctrl-C has cancelled the job."""

    def __call__(self, project: Any, target: Path, progress: ProgressSink) -> None:
        try:
            self.inner(project, target, progress)
        except Exception:
            if self.interrupted.wait(GRACE):
                progress("rendering", 0, 0)  # raises the job's RenderCancelledError
            raise


def watch(
    console: Console, job: RenderJob[Any], label: str, cancellable: Cancellable | None = None
) -> Status:
    """Show a live progress bar until ``job`` ends; return its final status.

    On Ctrl-C, cancel the job (the render stops at its next progress report and is
    FAILED, its reason :data:`CTRL_C`), wait for it to end, then let the interrupt go on.
    """
    try:
        return show_progress(console, job, label)
    except KeyboardInterrupt:
        if cancellable is not None:
            if job.cancel(CTRL_C):
                cancellable.interrupted.set()
            console.print("  cancelling: the render stops at its next frame ...")
            job.wait()
        raise


class Eta:
    """The progress bar's estimate of the time left, which never claims the end early.

    The runner's own ETA extrapolates from the render's start, so a render whose frames
    come in a burst (a still stretch piped at once) or that reaches its last frame long
    before it ends (the soundtrack's AAC, the join) read ``eta 0s`` at 20-38 % and for the
    whole finish. This one says nothing until the frames have moved for
    :attr:`SETTLE` seconds and past :attr:`MIN_FRACTION`, extrapolates from the last
    :attr:`WINDOW` seconds only, never shows less than :attr:`FLOOR` while the render
    runs, and says ``finishing`` once every frame is in but the render has not ended.
    """

    SETTLE: Final = 3.0
    """Seconds of moving frames before any estimate."""
    MIN_FRACTION: Final = 0.05
    """The share of frames done before any estimate."""
    WINDOW: Final = 10.0
    """Seconds of recent progress the rate is measured over."""
    FLOOR: Final = 1.0
    """The least time left an unfinished render is said to have."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._samples: deque[tuple[float, float]] = deque()
        self._since: float | None = None

    def __call__(self, fraction: float, *, done: bool) -> str:
        """The text for the bar after a report of ``fraction`` (``""``: no estimate)."""
        if done:
            return ""
        if fraction >= 1.0:
            return "finishing"
        now = self._clock()
        if fraction <= 0.0:
            return ""
        if self._since is None:
            self._since = now
        self._samples.append((now, fraction))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.WINDOW:
            self._samples.popleft()
        if now - self._since < self.SETTLE or fraction < self.MIN_FRACTION:
            return ""
        then, before = self._samples[0]
        if now <= then or fraction <= before:
            return ""  # no movement in the window: a stall has no honest estimate
        left = (1.0 - fraction) * (now - then) / (fraction - before)
        return f"eta {_duration(max(left, self.FLOOR))}"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def show_progress(console: Console, job: RenderJob[Any], label: str) -> Status:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[frames]}"),
        TextColumn("[dim]{task.fields[eta]}"),
    )
    estimate = Eta()
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(label, total=1.0, frames="", eta="")
        while True:
            finished = job.done()
            progress = job.progress
            frames = (
                f"{progress.frames_done}/{progress.frames_total} frames"
                if progress.frames_total
                else ""
            )
            eta = estimate(progress.fraction, done=finished)
            bar.update(
                task,
                completed=progress.fraction,
                description=f"{label} [cyan]{progress.phase}[/]",
                frames=frames,
                eta=eta,
            )
            if finished:
                break
            with contextlib.suppress(TimeoutError):
                job.wait(timeout=0.1)
    return job.wait()


def follow(
    console: Console, runner: RenderRunner[Project], store: Store, project: Project
) -> Status:
    """Show the progress a worker writes to the ledger until the project leaves PROCESSING."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[frames]}"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("render", total=1.0, frames="")
        while True:
            status = Status(store.get(project.id).status)
            progress = runner.progress(project)
            if progress is not None:
                frames = (
                    f"{progress.frames_done}/{progress.frames_total} frames"
                    if progress.frames_total
                    else ""
                )
                bar.update(
                    task,
                    completed=progress.fraction,
                    description=f"render [cyan]{progress.phase}[/]",
                    frames=frames,
                )
            if status is not Status.PROCESSING:
                return status
            time.sleep(0.2)
