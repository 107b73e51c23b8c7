"""The commands behind ``renderstate``; imported only when one runs (needs the ``cli`` extra)."""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, cast

try:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
    from rich.table import Table
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    msg = "the renderstate command line needs rich: pip install 'renderstate[cli]'"
    raise ImportError(msg) from exc

from renderstate._attempts import Attempt
from renderstate._records import TransitionRecord
from renderstate._status import Status
from renderstate.cli import DEFAULT_HOME, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from renderstate.cli._store import Project, Store, StoreError
from renderstate.exceptions import RenderConflictError, RenderStateError, UnknownStatusError
from renderstate.rendering.timeline import (
    Timeline,
    TimelineError,
    _read_timeline_file,
    parse_timeline,
)
from renderstate.runner import RenderJob, RenderRunner
from renderstate.testing import FakeRenderer
from renderstate.typing import ProgressSink, Renderer

__all__ = ["run"]

_STYLES = {
    Status.DRAFT: "white",
    Status.PROCESSING: "yellow",
    Status.COMPLETED: "green",
    Status.FAILED: "red",
}


class UsageError(Exception):
    """An argument that names nothing usable; the message says what to pass instead."""


class _SimulatedCrashError(RuntimeError):
    """What the demo's deliberately failing render raises halfway through."""


class _HideSimulatedCrash(logging.Filter):
    """Keeps the demo's deliberate crash out of the error log; the demo reports it itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, _SimulatedCrashError)


class _CancelledError(Exception):
    """Raised into a render at its next progress report after Ctrl-C."""


class _Cancellable:
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


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; return the exit code."""
    handler = _log_to_stderr(verbose=args.verbose)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        command: Callable[[argparse.Namespace], int] = _COMMANDS[args.command]
        return command(args)
    except (UsageError, StoreError, TimelineError) as exc:
        err.print(f"[red]renderstate: error:[/] {escape(str(exc))}")
        return EXIT_USAGE
    except RenderConflictError as exc:
        err.print(f"[red]renderstate: 409 Conflict:[/] {escape(str(exc))}")
        return EXIT_FAILED
    except RenderStateError as exc:
        err.print(f"[red]renderstate: error:[/] {escape(str(exc))}")
        if isinstance(exc, UnknownStatusError):
            err.print(
                f"  The command line's database stores only {_KNOWN}: set this row's status "
                f"to one of them (FAILED lets a new render start); nothing was changed."
            )
        return EXIT_FAILED
    except ImportError as exc:  # the render extra, imported when a render starts
        err.print(f"[red]renderstate: error:[/] {escape(str(exc))}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        # The commands that change projects say themselves where each one stands; this is
        # Ctrl-C anywhere else (opening the database, say), before anything was changed.
        err.print("[red]renderstate: interrupted[/]; `renderstate status` shows every project")
        return EXIT_INTERRUPTED
    finally:
        logging.getLogger("renderstate").removeHandler(handler)


# ------------------------------------------------------------------ shared pieces


class _OneLine(logging.Formatter):
    """``level: message (ExceptionType: text)``: tracebacks only with --verbose."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f" ({type(error).__name__}: {error})"
        return text


def _log_to_stderr(*, verbose: bool) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    if not verbose:
        handler.setFormatter(_OneLine())
    logger = logging.getLogger("renderstate")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    return handler


def _transition_printer(console: Console) -> Callable[[TransitionRecord], None]:
    def show(record: TransitionRecord) -> None:
        source, target = record.source, record.target
        console.print(
            f"  [{_STYLES[source]}]{source}[/] -> [{_STYLES[target]}]{target}[/]"
            f"  [dim]({record.edge}, project {str(record.project_key)[:8]})[/]"
        )

    return show


def _watch(
    console: Console, job: RenderJob[Any], label: str, cancel: threading.Event | None = None
) -> Status:
    """Show a live progress bar until ``job`` ends; return its final status.

    On Ctrl-C, set ``cancel`` (the render stops at its next frame and is FAILED), wait for the
    job to end, then let the interrupt go on.
    """
    try:
        return _show_progress(console, job, label)
    except KeyboardInterrupt:
        if cancel is not None:
            cancel.set()
            console.print("  cancelling: the render stops at its next frame ...")
            job.wait()
        raise


def _show_progress(console: Console, job: RenderJob[Any], label: str) -> Status:
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


def _console() -> Console:
    # soft_wrap: long ids and paths stay on one line, so they can be copied.
    return Console(highlight=False, soft_wrap=True)


def _renderer(name: str) -> Renderer[Any]:
    if name == "fake":
        return FakeRenderer(frames=48, frame_delay=0.01)
    from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415 - heavy import

    return MoviePyRenderer(preset="veryfast")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _file_summary(path: Path) -> str:
    if not path.is_file():
        return "[red]missing[/]"
    return f"{path.stat().st_size:,} bytes, sha256 {_digest(path)}..."


def _store(args: argparse.Namespace, *, create: bool = True) -> Store:
    return Store(args.db, create=create)


# ------------------------------------------------------------------ demo


class _DemoRenderer:
    """The real renderer, which the demo can hold at the start or make crash halfway."""

    def __init__(self, inner: _Cancellable) -> None:
        self.inner = inner
        self.cancel = inner.cancel
        self.gate: threading.Event | None = None
        self.crash = False

    def __call__(self, project: Any, target: Path, progress: ProgressSink) -> None:
        if self.gate is not None:
            self.gate.wait()  # set by the demo in the same step, never left unset
        if not self.crash:
            self.inner(project, target, progress)
            return

        def crashing(phase: str, done: int, total: int) -> None:
            progress(phase, done, total)
            # total is 0 until moviepy knows the frame count: crash only once it is known.
            if phase == "rendering" and total > 0 and done >= total // 2:
                msg = f"simulated encoder crash at frame {done} of {total}"
                raise _SimulatedCrashError(msg)

        self.inner(project, target, crashing)


def _sample_timeline() -> dict[str, Any]:
    text = resources.files("renderstate.rendering").joinpath("sample_timeline.json")
    data: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return data


class _ReportedByTheCommand(logging.Filter):
    """Drops the runner's one-line "render failed" log: the command prints that error itself.

    Only without ``--verbose``, which asks for the traceback the log record carries.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.msg == "the render of project %s failed")


def _demo(args: argparse.Namespace) -> int:
    console = _console()
    home = Path(args.dir)
    store = Store(f"sqlite:///{home / 'renderstate.sqlite3'}")
    media = home / "media"
    console.print(f"[bold]renderstate demo[/]: database {store.url}, media root {media}/")
    data = _sample_timeline()
    timeline = parse_timeline(data)
    project = store.create(
        "renderstate demo", data, width=timeline.width, height=timeline.height, fps=_fps(timeline)
    )
    console.print(f"Created project [bold]{project.id}[/] ([white]{project.status}[/])")
    renderer = _DemoRenderer(_Cancellable(_renderer(args.renderer)))
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        renderer,
        media_root=media,
        observers=[_transition_printer(console)],
        ledger=store.ledger,
        loader=store.loader,
    )
    demo = _Demo(console, store, runner, renderer, project)
    try:
        with runner:
            demo.first_render()
            demo.conflicting_re_render()
            demo.crash()
            demo.retry()
    finally:
        store.close()
    console.rule("Result")
    for name, ok in demo.checks:
        console.print(f"  {'[green]ok[/]' if ok else '[red]FAILED[/]'}  {name}")
    playable = "playable MP4" if args.renderer == "moviepy" else "fake video (--renderer fake)"
    console.print(f"\nThe {playable} is at [bold]{demo.final.resolve()}[/]")
    console.print(f"stored as output_path = {project.output_path!r} on project {project.id}")
    hint = "" if args.dir == DEFAULT_HOME else f" --db {store.url} --media {media}"
    console.print(f"[dim]See all projects with: renderstate status{hint}[/]")
    return EXIT_OK if all(ok for _, ok in demo.checks) else EXIT_FAILED


class _Demo:
    """The demo's four steps, each recording whether it behaved as the design says."""

    def __init__(
        self,
        console: Console,
        store: Store,
        runner: RenderRunner[Project],
        renderer: _DemoRenderer,
        project: Project,
    ) -> None:
        self.console = console
        self.store = store
        self.runner = runner
        self.renderer = renderer
        self.project = project
        self.final = runner.file_path(project)
        self.checks: list[tuple[str, bool]] = []

    def watch(self, job: RenderJob[Project], label: str) -> Status:
        return _watch(self.console, job, label, self.renderer.cancel)

    def first_render(self) -> None:
        self.console.rule("1. First render: DRAFT -> PROCESSING -> COMPLETED")
        status = self.watch(self.runner.submit(self.project), "render")
        self.checks.append(("first render completed", status is Status.COMPLETED))
        self.console.print(f"  final.mp4: {_file_summary(self.final)}")

    def conflicting_re_render(self) -> None:
        self.console.rule("2. Re-render, and a second start while it runs")
        # The user edits the first scene's title, so the new video visibly differs.
        timeline = copy.deepcopy(self.project.timeline)
        timeline["scenes"][0]["title"] = "renderstate, re-rendered"
        self.project.timeline = timeline
        gate = self.renderer.gate = threading.Event()
        job = self.runner.submit(self.project)
        other_request = self.store.get(self.project.id)  # what a second web request loads
        self.console.print(f"  a second request loads the project: it is {other_request.status}")
        refused = False
        try:
            self.runner.submit(other_request)
        except RenderConflictError as exc:
            refused = exc.status_code == 409
            self.console.print(f"  [red]refused, HTTP {exc.status_code}[/]: {escape(str(exc))}")
        finally:
            self.renderer.gate = None
            gate.set()
        self.checks.append(("second start refused with 409", refused))
        status = self.watch(job, "re-render")
        self.checks.append(("re-render completed", status is Status.COMPLETED))
        self.console.print(f"  final.mp4 replaced at the same path: {_file_summary(self.final)}")

    def crash(self) -> None:
        self.console.rule("3. A render that crashes halfway")
        before = _digest(self.final)
        self.renderer.crash = True
        hide = _HideSimulatedCrash()
        runner_log = logging.getLogger("renderstate.runner")
        runner_log.addFilter(hide)
        try:
            job = self.runner.submit(self.project)
            status = self.watch(job, "doomed render")
        finally:
            self.renderer.crash = False
            runner_log.removeFilter(hide)
        self.console.print(f"  the render failed: [red]{escape(str(job.error))}[/]")
        kept = self.final.is_file() and _digest(self.final) == before
        self.console.print(
            f"  previous final.mp4 {'unchanged' if kept else '[red]CHANGED[/]'}: "
            f"{_file_summary(self.final)}; output_path still {self.project.output_path}"
        )
        leftovers = sorted(p.name for p in self.final.parent.iterdir() if p != self.final)
        self.console.print(f"  temporary files left beside it: {leftovers or 'none'}")
        self.checks.append(("crash left the project FAILED", status is Status.FAILED))
        self.checks.append(("previous video intact, no temp file", kept and not leftovers))

    def retry(self) -> None:
        self.console.rule("4. Retry: FAILED -> PROCESSING -> COMPLETED")
        status = self.watch(self.runner.submit(self.project), "retry")
        self.checks.append(("retry completed", status is Status.COMPLETED))


def _fps(timeline: Timeline) -> int | None:
    return None if timeline.fps is None else round(timeline.fps)


# ------------------------------------------------------------------ render, status, recover


def _timeline_source(args: argparse.Namespace) -> tuple[object, Path, str]:
    """The timeline data, the directory its paths are relative to, and a default title."""
    if args.sample:
        if args.timeline is not None:
            msg = "give a TIMELINE file or --sample, not both"
            raise UsageError(msg)
        return _sample_timeline(), Path.cwd(), "renderstate sample"
    if args.timeline is None:
        msg = (
            "give a TIMELINE file (.json or .toml), or --sample for the sample timeline "
            "(`renderstate sample > timeline.json` saves it to edit)"
        )
        raise UsageError(msg)
    path = Path(args.timeline)
    if path.is_dir():
        msg = f"{str(path)!r} is a directory; give the .json or .toml timeline file inside it"
        raise UsageError(msg)
    if not path.is_file():
        msg = f"timeline file {str(path)!r} does not exist"
        raise UsageError(msg)
    return _read_timeline_file(path), path.parent, path.stem


def _render(args: argparse.Namespace) -> int:
    console = _console()
    if args.project and args.title is not None:
        msg = (
            "--title names a new project; with --project KEY the project keeps its title "
            "(leave out --title, or leave out --project to create a new project)"
        )
        raise UsageError(msg)
    data, base, default_title = _timeline_source(args)
    # The file is the operator's own: its media paths may lead anywhere (docs/timeline.md).
    timeline = parse_timeline(data, base_dir=base, allow_outside_base_dir=True)
    data = dict(cast("Mapping[str, Any]", data))  # a Mapping, or parse_timeline refused it
    store = _store(args)
    project: Project | None = None
    job: RenderJob[Any] | None = None
    quiet = None if args.verbose else _ReportedByTheCommand()
    runner_log = logging.getLogger("renderstate.runner")
    if quiet is not None:
        runner_log.addFilter(quiet)
    try:
        if args.project:
            project = store.get(args.project)
        else:
            project = store.create(
                args.title or default_title,
                data,
                width=timeline.width,
                height=timeline.height,
                fps=_fps(timeline),
            )
            console.print(f"Created project [bold]{project.id}[/] ({project.status})")
        if args.broker:
            return _send(console, args, store=store, project=project, data=data, timeline=timeline)
        renderer = _renderer(args.renderer)
        if args.renderer == "moviepy":
            from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415

            renderer = MoviePyRenderer(timeline=timeline, preset="veryfast")
        cancellable = _Cancellable(renderer)
        with RenderRunner(
            store.adapter,
            cancellable,
            media_root=args.media,
            observers=[_transition_printer(console)],
            ledger=store.ledger,
            loader=store.loader,
        ) as runner:
            job = started = runner.submit(project)
            if args.project:
                # Only once the start has won: a refused render changes nothing.
                store.update_timeline(
                    project, data, width=timeline.width, height=timeline.height, fps=_fps(timeline)
                )
            status = _watch(console, started, "render", cancellable.cancel)
            final = runner.file_path(project)
    except KeyboardInterrupt:
        _report_interrupt(project, job, store)
        return EXIT_INTERRUPTED
    finally:
        if quiet is not None:
            runner_log.removeFilter(quiet)
        store.close()
    if status is Status.COMPLETED:
        console.print(f"[green]COMPLETED[/]: {final.resolve()} ({_file_summary(final)})")
        return EXIT_OK
    console.print(f"[red]{status}[/]: {escape(str(started.error))}")
    return EXIT_FAILED


def _report_interrupt(project: Project | None, job: RenderJob[Any] | None, store: Store) -> None:
    """Say what Ctrl-C really left behind: nothing, a DRAFT project, or a FAILED render."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if project is None:
        err.print("[red]renderstate: interrupted[/] before a project was created; nothing changed")
        return
    try:
        status = store.get(project.id).status
    except StoreError:
        status = "unknown"
    if job is None:
        what = "before its render started"
    elif status == Status.FAILED.value:
        what = "the render was stopped and the previous video, if any, kept"
    else:
        what = "after the render had ended" if job.done() else "while the render was starting"
    err.print(
        f"[red]renderstate: interrupted[/] {what}: project {project.id} is {status}. "
        f"Render it with `renderstate render TIMELINE --project {project.id}`."
    )


def _send(
    console: Console,
    args: argparse.Namespace,
    *,
    store: Store,
    project: Project,
    data: dict[str, Any],
    timeline: Timeline,
) -> int:
    """Render on `renderstate worker` processes; follow the attempt in the database."""
    from renderstate.cli._worker import Sender  # noqa: PLC0415 - the celery extra

    def store_timeline() -> None:
        if args.project:
            store.update_timeline(
                project, data, width=timeline.width, height=timeline.height, fps=_fps(timeline)
            )

    with RenderRunner(
        store.adapter,
        _refuse,
        media_root=args.media,
        executor=Sender(args, store_timeline),
        observers=[_transition_printer(console)],
        ledger=store.ledger,
        loader=store.loader,
    ) as runner:
        job = runner.submit(project)
        console.print(f"Sent attempt {job.attempt_id} to the workers on queue {args.queue!r}")
        status = _follow(console, runner, store, project)
        final = runner.file_path(project)
    attempt = store.current_attempt(project)
    if status is Status.COMPLETED:
        worker = "" if attempt is None else f" by {attempt.worker}"
        console.print(f"[green]COMPLETED[/]{worker}: {final.resolve()} ({_file_summary(final)})")
        return EXIT_OK
    error = "" if attempt is None else f": {escape(str(attempt.error))}"
    console.print(f"[red]{status}[/]{error}")
    return EXIT_FAILED


def _follow(
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


def _worker(args: argparse.Namespace) -> int:
    from renderstate.cli._worker import work  # noqa: PLC0415 - the celery extra

    if args.concurrency < 1:
        msg = f"--concurrency must be at least 1, got {args.concurrency}"
        raise UsageError(msg)
    return work(args, _renderer)


def _status(args: argparse.Namespace) -> int:
    console = _console()
    store = _store(args, create=False)
    try:
        if args.key:
            project = store.get(args.key)
            _show_project(console, project, Path(args.media), store.current_attempt(project))
            return EXIT_OK
        projects = store.all()
    finally:
        store.close()
    if not projects:
        console.print(f"No projects in {store.url}. Try `renderstate demo`.")
        return EXIT_OK
    unknown = sum(_known_status(p) is None for p in projects)
    if console.is_terminal:
        console.print(_status_table(projects))
    else:
        # Piped or redirected: one line per project, tab-separated, nothing wrapped or
        # styled, so `renderstate status | grep FAILED | cut -f1` gives whole ids.
        console.file.write("id\tstatus\ttitle\toutput_path\tupdated\n")
        for p in projects:
            status = p.status if _known_status(p) else f"{p.status!r} (unknown status)"
            fields = (
                p.id,
                status,
                p.title,
                p.output_path or "",
                f"{p.updated_at:%Y-%m-%d %H:%M:%S}",
            )
            console.file.write("\t".join(_one_line(f) for f in fields) + "\n")
    if unknown:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[red]renderstate: warning:[/] {unknown} project(s) have a status that is not "
            f"one of {_KNOWN}; `renderstate status KEY` explains, and no render can start "
            f"until the row's status is one of them again"
        )
    return EXIT_OK


_KNOWN = ", ".join(s.value for s in Status)


def _one_line(text: str) -> str:
    return " ".join(str(text).split("\t")).replace("\n", " ").replace("\r", " ")


def _status_table(projects: list[Project]) -> Table:
    """The terminal view: ids and statuses whole on one line; titles and paths fold instead."""
    table = Table("id", "status", "title", "output_path", "updated")
    id_width = max(len(p.id) for p in projects)
    table.columns[0].no_wrap = True
    table.columns[0].min_width = id_width
    table.columns[1].no_wrap = True
    table.columns[2].overflow = "fold"
    table.columns[3].overflow = "fold"
    for p in projects:
        table.add_row(
            p.id,
            _status_text(p),
            escape(p.title),
            p.output_path or "",
            f"{p.updated_at:%Y-%m-%d %H:%M:%S}",
        )
    return table


def _known_status(project: Project) -> Status | None:
    """The project's status, or ``None`` when the row holds a value outside the four."""
    try:
        return Status(project.status)
    except ValueError:
        return None


def _status_text(project: Project) -> str:
    status = _known_status(project)
    if status is None:
        return f"[bold red]{escape(repr(project.status))} (unknown status)[/]"
    return f"[{_STYLES[status]}]{status}[/]"


def _attempt_text(attempt: Attempt) -> str:
    text = f"#{attempt.id} {attempt.state}"
    if attempt.active:
        text += f", {attempt.phase} {attempt.fraction:.0%}"
        if attempt.worker:
            text += f" on {attempt.worker}"
    elif attempt.rendering_seconds is not None:
        text += f" after {attempt.rendering_seconds:.1f} s"
    if attempt.actor:
        text += f", asked by {escape(attempt.actor)}"
    return text


def _show_project(
    console: Console, project: Project, media: Path, attempt: Attempt | None = None
) -> None:
    """Print one project; raise :class:`UnknownStatusError` after it if its status is unknown."""
    console.print(f"[bold]{escape(project.title)}[/]  {project.id}")
    console.print(f"  status       {_status_text(project)}")
    console.print(f"  output_path  {project.output_path or '-'}")
    if project.output_path:
        file = media.joinpath(*project.output_path.split("/"))
        console.print(f"  file         {file} ({_file_summary(file)})")
    console.print(f"  updated      {project.updated_at:%Y-%m-%d %H:%M:%S}")
    if attempt is not None:
        console.print(f"  attempt      {_attempt_text(attempt)}")
        if attempt.error:
            console.print(f"  error        {escape(attempt.error)}")
    if _known_status(project) is None:
        raise UnknownStatusError(
            value=project.status, allowed=[s.value for s in Status], project_key=project.id
        )


def _clock(timestamp: float) -> str:
    return f"{datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc):%H:%M:%S} UTC"


def _refuse(project: Any, target: Path, progress: ProgressSink) -> None:
    msg = "recover renders nothing"
    raise RuntimeError(msg)


def _recover(args: argparse.Namespace) -> int:
    console = _console()
    store = _store(args, create=False)
    try:
        # Safe while other processes render: only attempts whose lease expired.
        with RenderRunner(
            store.adapter, _refuse, media_root=args.media, ledger=store.ledger, loader=store.loader
        ) as runner:
            records = runner.recover_interrupted()
        # A project left PROCESSING with no attempt at all was started before this
        # database had a ledger (every start since records one): fail it too.
        orphans = [
            p for p in store.with_status(Status.PROCESSING) if store.current_attempt(p) is None
        ]
        if orphans:
            with RenderRunner(store.adapter, _refuse, media_root=args.media) as plain:
                records += plain.recover_interrupted(orphans)
        alive = [
            (p, a)
            for p in store.with_status(Status.PROCESSING)
            if (a := store.current_attempt(p)) is not None and a.active
        ]
    finally:
        store.close()
    if not records:
        if alive:
            for project, attempt in alive:
                console.print(
                    f"  {project.id}: attempt #{attempt.id} {attempt.state} on "
                    f"{attempt.worker or 'a queue'}, lease until "
                    f"{attempt.lease_expires_at and _clock(attempt.lease_expires_at)}"
                )
            console.print(
                f"No project was recovered: {len(alive)} render(s) still hold a lease. A "
                f"render whose process died is recovered once its lease expires."
            )
            return EXIT_OK
        console.print("No project was left PROCESSING.")
        return EXIT_OK
    for record in records:
        console.print(f"  {record.project_key}: PROCESSING -> [red]FAILED[/] ({record.error})")
    console.print(f"Recovered {len(records)} project(s); start their renders again to retry.")
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _demo,
    "render": _render,
    "status": _status,
    "recover": _recover,
    "worker": _worker,
}
