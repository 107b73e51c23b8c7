"""``renderstate status``: every project in a table, or one project in detail."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from renderstate._attempts import Attempt
from renderstate._status import Status
from renderstate.cli import EXIT_OK
from renderstate.cli._common import (
    KNOWN_STATUSES,
    file_summary,
    known_status,
    new_console,
    open_store,
    status_text,
)
from renderstate.cli._store import Project
from renderstate.exceptions import UnknownStatusError


def status_command(args: argparse.Namespace) -> int:
    console = new_console()
    store = open_store(args, create=False)
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
    unknown = sum(known_status(p) is None for p in projects)
    if console.is_terminal:
        console.print(_status_table(projects))
    else:
        # Piped or redirected: one line per project, tab-separated, nothing wrapped or
        # styled, so `renderstate status | grep FAILED | cut -f1` gives whole ids.
        console.file.write("id\tstatus\ttitle\toutput_path\tupdated\n")
        for p in projects:
            status = p.status if known_status(p) else f"{p.status!r} (unknown status)"
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
            f"one of {KNOWN_STATUSES}; `renderstate status KEY` explains, and no render can start "
            f"until the row's status is one of them again"
        )
    return EXIT_OK


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
            status_text(p),
            escape(p.title),
            p.output_path or "",
            f"{p.updated_at:%Y-%m-%d %H:%M:%S}",
        )
    return table


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
    console.print(f"  status       {status_text(project)}")
    console.print(f"  output_path  {project.output_path or '-'}")
    if project.output_path:
        file = media.joinpath(*project.output_path.split("/"))
        console.print(f"  file         {file} ({file_summary(file)})")
    console.print(f"  updated      {project.updated_at:%Y-%m-%d %H:%M:%S}")
    if attempt is not None:
        console.print(f"  attempt      {_attempt_text(attempt)}")
        if attempt.error:
            console.print(f"  error        {escape(attempt.error)}")
    if known_status(project) is None:
        raise UnknownStatusError(
            value=project.status, allowed=[s.value for s in Status], project_key=project.id
        )
