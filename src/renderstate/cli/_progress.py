"""Live progress bars, and Ctrl-C that stops a render at its next progress report."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from renderstate._status import Status
from renderstate.cli._store import Project, Store
from renderstate.runner import RenderJob, RenderRunner
from renderstate.typing import ProgressSink, Renderer


class _CancelledError(Exception):
    """Raised into a render at its next progress report after Ctrl-C."""


class Cancellable:
    """Wraps a renderer so that setting :attr:`cancel` stops it at its next progress report.

    The runner then does what it does for any failure: removes the temporary file, keeps
    the previous video and marks the project FAILED.
    """

    def __init__(self, inner: Renderer[Any]) -> None:
        self.inner = inner
        self.cancel = threading.Event()

    def __call__(self, project: Any, target: Path, progress: ProgressSink) -> None:
        def sink(phase: str, done: int, total: int) -> None:
            if self.cancel.is_set():
                msg = "cancelled with Ctrl-C"
                raise _CancelledError(msg)
            progress(phase, done, total)

        sink("rendering", 0, 0)  # a render cancelled while queued stops here
        self.inner(project, target, sink)


def watch(
    console: Console, job: RenderJob[Any], label: str, cancel: threading.Event | None = None
) -> Status:
    """Show a live progress bar until ``job`` ends; return its final status.

    On Ctrl-C, set ``cancel`` (the render stops at its next frame and is FAILED), wait for the
    job to end, then let the interrupt go on.
    """
    try:
        return show_progress(console, job, label)
    except KeyboardInterrupt:
        if cancel is not None:
            cancel.set()
            console.print("  cancelling: the render stops at its next frame ...")
            job.wait()
        raise


def show_progress(console: Console, job: RenderJob[Any], label: str) -> Status:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[frames]}"),
        TextColumn("[dim]{task.fields[eta]}"),
    )
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
            eta = "" if progress.eta is None or finished else f"eta {progress.eta:.0f}s"
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
