"""``renderstate render``: a timeline file into a project, here or on the workers."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.markup import escape

from renderstate._status import Status
from renderstate.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from renderstate.cli._common import (
    ReportedByTheCommand,
    UsageError,
    attempt_label,
    file_summary,
    make_renderer,
    new_console,
    open_store,
    refuse_to_render,
    sample_data,
    transition_printer,
    whole_fps,
)
from renderstate.cli._progress import Cancellable, follow, watch
from renderstate.cli._store import Project, Store, StoreError
from renderstate.ledger._owners import worker_label
from renderstate.rendering.timeline import Timeline, _read_timeline_file, parse_timeline
from renderstate.runner import RenderJob, RenderRunner


def _timeline_source(args: argparse.Namespace) -> tuple[object, Path, str]:
    """The timeline data, the directory its paths are relative to, and a default title."""
    if args.sample:
        if args.timeline is not None:
            msg = "give a TIMELINE file or --sample, not both"
            raise UsageError(msg)
        return sample_data(), Path.cwd(), "renderstate sample"
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


def check_media(timeline: Timeline) -> None:
    """Check what the moviepy renderer checks before it starts ffmpeg, here and now.

    Pictures that are not pictures, text the font cannot draw and a soundtrack ffmpeg
    cannot read are refused like any other timeline error: before a project is created or
    a render started, so they leave nothing behind (the renderer would fail the project).

    Raises:
        TimelineError: the first problem found, naming the scene and field.
        ImportError: the ``render`` extra is missing (its message says how to install it).
    """
    import renderstate.rendering.moviepy  # noqa: F401, PLC0415 - says which extra is missing
    from renderstate.rendering._fonts import verify_text  # noqa: PLC0415
    from renderstate.rendering._frames import verify_images  # noqa: PLC0415
    from renderstate.rendering._media import check_audio_file  # noqa: PLC0415

    verify_images(timeline)
    verify_text(timeline)
    if timeline.soundtrack is not None and timeline.soundtrack.file is not None:
        check_audio_file(timeline.soundtrack.file)


def render_command(args: argparse.Namespace) -> int:
    console = new_console()
    if args.project and args.title is not None:
        msg = (
            "--title names a new project; with --project KEY the project keeps its title "
            "(leave out --title, or leave out --project to create a new project)"
        )
        raise UsageError(msg)
    data, base, default_title = _timeline_source(args)
    # The file is the operator's own: its media paths may lead anywhere (docs/timeline.md).
    timeline = parse_timeline(data, base_dir=base, allow_outside_base_dir=True)
    if args.renderer == "moviepy" and not (args.broker and find_spec("moviepy") is None):
        check_media(timeline)
    data = dict(cast("Mapping[str, Any]", data))  # a Mapping, or parse_timeline refused it
    store = open_store(args)
    project: Project | None = None
    job: RenderJob[Any] | None = None
    quiet = None if args.verbose else ReportedByTheCommand()
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
                fps=whole_fps(timeline),
            )
            console.print(f"Created project [bold]{project.id}[/] ({project.status})")
        if args.broker:
            return _send(console, args, store=store, project=project, data=data, timeline=timeline)
        renderer = make_renderer(args.renderer)
        if args.renderer == "moviepy":
            from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415

            renderer = MoviePyRenderer(timeline=timeline, preset="veryfast")
        cancellable = Cancellable(renderer)
        with RenderRunner(
            store.adapter,
            cancellable,
            media_root=args.media,
            observers=[transition_printer(console)],
            ledger=store.ledger,
            loader=store.loader,
        ) as runner:
            job = started = runner.submit(project)
            if args.project:
                # Only once the start has won: a refused render changes nothing.
                store.update_timeline(
                    project,
                    data,
                    width=timeline.width,
                    height=timeline.height,
                    fps=whole_fps(timeline),
                )
            status = watch(console, started, "render", cancellable)
            final = runner.file_path(project)
    except KeyboardInterrupt:
        _report_interrupt(project, job, store)
        return EXIT_INTERRUPTED
    finally:
        if quiet is not None:
            runner_log.removeFilter(quiet)
        store.close()
    if status is Status.COMPLETED:
        console.print(f"[green]COMPLETED[/]: {final.resolve()} ({file_summary(final)})")
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
        what = f"before its render started: project {project.id} is {status}"
    elif status == Status.FAILED.value:
        what = (
            f"and the render cancelled: project {project.id} is {status}, its previous "
            f"video (if any) kept"
        )
    else:
        when = "after the render had ended" if job.done() else "while the render was starting"
        what = f"{when}: project {project.id} is {status}"
    err.print(
        f"[red]renderstate: interrupted[/] {what}. "
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
                project, data, width=timeline.width, height=timeline.height, fps=whole_fps(timeline)
            )

    with RenderRunner(
        store.adapter,
        refuse_to_render,
        media_root=args.media,
        executor=Sender(args, store_timeline),
        observers=[transition_printer(console)],
        ledger=store.ledger,
        loader=store.loader,
    ) as runner:
        job = runner.submit(project)
        sent = job.attempt_id
        number = None if sent is None else store.attempt_number(project, sent)
        console.print(
            f"Sent attempt {attempt_label(number, sent or 0)} to the workers on queue "
            f"{args.queue!r}"
        )
        status = follow(console, runner, store, project)
        final = runner.file_path(project)
    attempt = store.current_attempt(project)
    if status is Status.COMPLETED:
        by = None if attempt is None or attempt.worker is None else worker_label(attempt.worker)
        worker = "" if by is None else f" by {by}"
        console.print(f"[green]COMPLETED[/]{worker}: {final.resolve()} ({file_summary(final)})")
        return EXIT_OK
    error = "" if attempt is None else f": {escape(str(attempt.error))}"
    console.print(f"[red]{status}[/]{error}")
    return EXIT_FAILED
