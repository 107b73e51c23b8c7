"""``renderstate demo``: the whole lifecycle of a sample project, step by step."""

from __future__ import annotations

import argparse
import copy
import logging
import shlex
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from renderstate._status import Status
from renderstate.cli import DEFAULT_HOME, EXIT_FAILED, EXIT_OK
from renderstate.cli._common import (
    digest,
    file_summary,
    make_renderer,
    new_console,
    own_command,
    sample_data,
    transition_printer,
    whole_fps,
)
from renderstate.cli._progress import Cancellable, watch
from renderstate.cli._store import Project, Store
from renderstate.exceptions import RenderConflictError
from renderstate.rendering.timeline import parse_timeline
from renderstate.runner import RenderJob, RenderRunner
from renderstate.typing import ProgressSink


class _SimulatedCrashError(RuntimeError):
    """What the demo's deliberately failing render raises halfway through."""


class _HideSimulatedCrash(logging.Filter):
    """Keeps the demo's deliberate crash out of the error log; the demo reports it itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, _SimulatedCrashError)


class _DemoRenderer:
    """The real renderer, which the demo can hold at the start or make crash halfway."""

    def __init__(self, inner: Cancellable) -> None:
        self.inner = inner
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


def demo_command(args: argparse.Namespace) -> int:
    console = new_console()
    home = Path(args.dir)
    store = Store(f"sqlite:///{home / 'renderstate.sqlite3'}")
    media = home / "media"
    console.print(f"[bold]renderstate demo[/]: database {store.url}, media root {media}/")
    data = sample_data()
    timeline = parse_timeline(data)
    project = store.create(
        "renderstate demo",
        data,
        width=timeline.width,
        height=timeline.height,
        fps=whole_fps(timeline),
    )
    console.print(f"Created project [bold]{project.id}[/] ([white]{project.status}[/])")
    renderer = _DemoRenderer(Cancellable(make_renderer(args.renderer)))
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        renderer,
        media_root=media,
        observers=[transition_printer(console)],
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
    hint = f"{own_command()} status"
    if args.dir != DEFAULT_HOME:
        hint += f" --db {shlex.quote(store.url)} --media {shlex.quote(str(media))}"
    console.print(f"[dim]See all projects with: {escape(hint)}[/]")
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
        return watch(self.console, job, label, self.renderer.inner)

    def first_render(self) -> None:
        self.console.rule("1. First render: DRAFT -> PROCESSING -> COMPLETED")
        status = self.watch(self.runner.submit(self.project), "render")
        self.checks.append(("first render completed", status is Status.COMPLETED))
        self.console.print(f"  final.mp4: {file_summary(self.final)}")

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
        self.console.print(f"  final.mp4 replaced at the same path: {file_summary(self.final)}")

    def crash(self) -> None:
        self.console.rule("3. A render that crashes halfway")
        before = digest(self.final)
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
        kept = self.final.is_file() and digest(self.final) == before
        self.console.print(
            f"  previous final.mp4 {'unchanged' if kept else '[red]CHANGED[/]'}: "
            f"{file_summary(self.final)}; output_path still {self.project.output_path}"
        )
        leftovers = sorted(p.name for p in self.final.parent.iterdir() if p != self.final)
        self.console.print(f"  temporary files left beside it: {leftovers or 'none'}")
        self.checks.append(("crash left the project FAILED", status is Status.FAILED))
        self.checks.append(("previous video intact, no temp file", kept and not leftovers))

    def retry(self) -> None:
        self.console.rule("4. Retry: FAILED -> PROCESSING -> COMPLETED")
        status = self.watch(self.runner.submit(self.project), "retry")
        self.checks.append(("retry completed", status is Status.COMPLETED))
