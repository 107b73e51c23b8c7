"""``renderstate status``: every project in a table, or one project in detail."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import Final

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from renderstate._attempts import Attempt
from renderstate._status import Status
from renderstate.cli import EXIT_OK
from renderstate.cli._common import (
    KNOWN_STATUSES,
    attempt_label,
    file_summary,
    known_status,
    new_console,
    open_store,
    status_text,
)
from renderstate.cli._store import Project
from renderstate.exceptions import UnknownStatusError
from renderstate.ledger._owners import worker_label


def status_command(args: argparse.Namespace) -> int:
    console = new_console()
    store = open_store(args, create=False)
    try:
        if args.key:
            project = store.get(args.key)
            attempt = store.current_attempt(project)
            number = None if attempt is None else store.attempt_number(project, attempt.id)
            _show_project(
                console,
                project,
                Path(args.media),
                video=store.video(project),
                attempt=attempt,
                number=number,
                now=_now(),
            )
            return EXIT_OK
        projects = store.all()
        videos = {p.id: store.video(p) for p in projects}
    finally:
        store.close()
    if not projects:
        console.print(f"No projects in {store.url}. Try `renderstate demo`.")
        return EXIT_OK
    unknown = sum(known_status(p) is None for p in projects)
    if console.is_terminal:
        console.print(_status_table(projects, videos, _now()))
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
                videos[p.id] or "",
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


SHORT_ID: Final = 8
"""The fewest characters of an id the table shows (more where two ids share them)."""


def short_ids(ids: list[str]) -> dict[str, str]:
    """Each id's shortest prefix, of at least :data:`SHORT_ID` characters, no other id shares.

    Every prefix is a key ``renderstate status KEY`` and ``render --project KEY`` accept.
    """
    width = SHORT_ID
    while len({i[:width] for i in ids}) < len(set(ids)) and width < max(map(len, ids)):
        width += 1
    return {i: i[:width] for i in ids}


def _short_path(path: str | None, project_id: str) -> tuple[str, bool]:
    """The output path, ``…/NAME`` when it is the project's own ``projects/ID/NAME``.

    Returns the text and whether it was shortened.
    """
    if not path:
        return "-", False
    folder = f"projects/{project_id}/"
    name = path.removeprefix(folder)
    if name != path and name and "/" not in name:
        return f"\u2026/{name}", True
    return path, False


def when(moment: datetime.datetime, now: datetime.datetime) -> str:
    """``moment`` as a person reads it: ``just now``, ``5 min ago``, ``3 h ago``, or its date.

    Naive datetimes are UTC (SQLite returns what was stored in UTC without its zone).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    seconds = (now - moment).total_seconds()
    if seconds < -60:  # a clock ahead of this one: say when, not "in the future"
        return f"{moment:%Y-%m-%d %H:%M}"
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    if seconds < 7 * 86400:
        days = seconds // 86400
        return "yesterday" if days == 1 else f"{days:.0f} days ago"
    return f"{moment:%Y-%m-%d}"


def _status_table(
    projects: list[Project], videos: dict[str, str | None], now: datetime.datetime
) -> Table:
    """The terminal view, readable at 80 columns.

    Short ids (unique prefixes, usable as KEY) and statuses never wrap; titles wrap at words;
    an output path in the project's own folder shows as ``…/final.mp4``; the time is relative
    (a date after a week).
    `renderstate status KEY` shows one project whole, and a pipe gets every field whole.
    """
    short = short_ids([p.id for p in projects])
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("title", ratio=3, min_width=10, overflow="fold")
    table.add_column("output_path", ratio=1, min_width=11, overflow="fold")
    table.add_column("updated", no_wrap=True)
    shortened = False
    for p in projects:
        path, cut = _short_path(videos[p.id], p.id)
        shortened = shortened or cut
        table.add_row(
            short[p.id], status_text(p), escape(p.title), escape(path), when(p.updated_at, now)
        )
    if shortened:
        table.caption = "\u2026/ is the project's folder, projects/ID/"
    table.caption_justify = "left"
    table.caption_style = "dim"
    return table


def _attempt_text(attempt: Attempt, number: int | None) -> str:
    text = f"{attempt_label(number, attempt.id)} {attempt.state}"
    if attempt.active:
        text += f", {attempt.phase} {attempt.fraction:.0%}"
        if attempt.label:
            text += f" ({escape(attempt.label)})"
        if attempt.worker:
            text += f" on {worker_label(attempt.worker)}"
    elif attempt.rendering_seconds is not None:
        text += f" after {attempt.rendering_seconds:.1f} s"
    if attempt.actor:
        text += f", asked by {escape(attempt.actor)}"
    return text


def _show_project(
    console: Console,
    project: Project,
    media: Path,
    *,
    video: str | None,
    attempt: Attempt | None,
    number: int | None,
    now: datetime.datetime,
) -> None:
    """Print one project; raise :class:`UnknownStatusError` after it if its status is unknown."""
    console.print(f"[bold]{escape(project.title)}[/]  {project.id}")
    console.print(f"  status       {status_text(project)}")
    # The row's path, or the ledger's for a row rendered with output_field=None.
    console.print(f"  output_path  {video or '-'}")
    if video:
        file = media.joinpath(*video.split("/"))
        console.print(f"  file         {file} ({file_summary(file)})")
    updated = project.updated_at
    console.print(f"  updated      {updated:%Y-%m-%d %H:%M:%S} UTC ({when(updated, now)})")
    if attempt is not None:
        console.print(f"  attempt      {_attempt_text(attempt, number)}")
        if attempt.error:
            console.print(f"  error        {escape(attempt.error)}")
    if known_status(project) is None:
        raise UnknownStatusError(
            value=project.status, allowed=[s.value for s in Status], project_key=project.id
        )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
