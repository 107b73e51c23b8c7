"""What the commands share: the console, the renderers, the store, how statuses look."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import shlex
import shutil
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

try:
    from rich.console import Console
    from rich.markup import escape
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    msg = "the renderstate command line needs rich: pip install 'renderstate[cli]'"
    raise ImportError(msg) from exc

from renderstate._records import TransitionRecord
from renderstate._status import Status
from renderstate.cli._progress import CTRL_C
from renderstate.cli._store import Project, Store
from renderstate.exceptions import RenderCancelledError
from renderstate.rendering.timeline import Timeline
from renderstate.testing import FakeRenderer
from renderstate.typing import ProgressSink, Renderer

STYLES = {
    Status.DRAFT: "white",
    Status.PROCESSING: "yellow",
    Status.COMPLETED: "green",
    Status.FAILED: "red",
}


class UsageError(Exception):
    """An argument that names nothing usable; the message says what to pass instead."""


def transition_printer(console: Console) -> Callable[[TransitionRecord], None]:
    def show(record: TransitionRecord) -> None:
        source, target = record.source, record.target
        console.print(
            f"  [{STYLES[source]}]{source}[/] -> [{STYLES[target]}]{target}[/]"
            f"  [dim]({record.edge}, project {str(record.project_key)[:8]})[/]"
        )

    return show


def new_console() -> Console:
    # soft_wrap: long ids and paths stay on one line, so they can be copied.
    return Console(highlight=False, soft_wrap=True)


def make_renderer(name: str) -> Renderer[Any]:
    if name == "fake":
        return FakeRenderer(frames=48, frame_delay=0.01)
    from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415 - heavy import

    return MoviePyRenderer(preset="veryfast")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def file_summary(path: Path) -> str:
    if not path.is_file():
        return "[red]missing[/]"
    return f"{path.stat().st_size:,} bytes, sha256 {digest(path)}..."


def open_store(args: argparse.Namespace, *, create: bool = True) -> Store:
    return Store(args.db, create=create)


def sample_data() -> dict[str, Any]:
    text = resources.files("renderstate.rendering").joinpath("sample_timeline.json")
    data: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return data


class ReportedByTheCommand(logging.Filter):
    """Drops the runner's logs of what the command prints itself.

    The one-line "render failed" (only without ``--verbose``, which asks for the
    traceback the log record carries), and the warning of a render cancelled by Ctrl-C.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.msg == "the render of project %s failed":
            return False
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(
            isinstance(arg, RenderCancelledError) and arg.reason == CTRL_C for arg in args
        )


def whole_fps(timeline: Timeline) -> int | None:
    return None if timeline.fps is None else round(timeline.fps)


KNOWN_STATUSES = ", ".join(s.value for s in Status)


def known_status(project: Project) -> Status | None:
    """The project's status, or ``None`` when the row holds a value outside the four."""
    try:
        return Status(project.status)
    except ValueError:
        return None


def status_text(project: Project) -> str:
    status = known_status(project)
    if status is None:
        return f"[bold red]{escape(repr(project.status))} (unknown status)[/]"
    return f"[{STYLES[status]}]{status}[/]"


def refuse_to_render(project: Any, target: Path, progress: ProgressSink) -> None:
    msg = "recover renders nothing"
    raise RuntimeError(msg)


def attempt_label(number: int | None, attempt_id: int) -> str:
    """``3 (ledger #41)``: the project's own count first, then the ledger's id for it."""
    return f"#{attempt_id}" if number is None else f"{number} (ledger #{attempt_id})"


def own_command() -> str:
    """How to run ``renderstate`` again the way it was run now, venv activated or not.

    ``renderstate`` when that name on the PATH is this very script; otherwise the path
    it was run by (``.venv/bin/renderstate``); for ``python -m renderstate``, that
    interpreter (by its path unless ``python`` on the PATH is it).
    """
    argv0 = sys.argv[0] if sys.argv else ""
    if not argv0 or Path(argv0).name == "__main__.py":
        python = shutil.which("python")
        # absolute(), not resolve(): a venv's python is a symlink to one outside the venv
        if python is not None and Path(python).absolute() == Path(sys.executable).absolute():
            return "python -m renderstate"
        return f"{shlex.quote(sys.executable)} -m renderstate"
    found = shutil.which("renderstate")
    with contextlib.suppress(OSError):
        if found is not None and Path(found).samefile(argv0):
            return "renderstate"
    return shlex.quote(argv0)
