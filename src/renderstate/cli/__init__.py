"""The ``renderstate`` command line (also ``python -m renderstate``).

::

    renderstate demo                      # the whole lifecycle on an embedded SQLite database
    renderstate render TIMELINE [--db URL] [--media DIR] [--project KEY]
    renderstate status [KEY]
    renderstate recover
    renderstate diagram [--format mermaid|dot]

Everything but ``diagram`` needs the ``cli`` extra (``pip install 'renderstate[cli]'``),
imported only when the command runs. Exit codes: 0 success, 1 a render failed or was
refused, 2 bad arguments (unknown project, invalid timeline, unusable ``--db``),
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

from renderstate._status import to_dot, to_mermaid

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK: Final = 0
"""The command did what was asked."""
EXIT_FAILED: Final = 1
"""A render failed, a start was refused (409), or a needed extra is missing."""
EXIT_USAGE: Final = 2
"""Bad arguments: what argparse refuses, an unknown project, an invalid timeline or URL."""
EXIT_INTERRUPTED: Final = 130
"""Ctrl-C: queued renders were failed, running ones finished."""

DEFAULT_HOME: Final = "renderstate-demo"
"""The directory, under the current one, that holds the embedded database and the media."""
DEFAULT_DB: Final = f"sqlite:///{DEFAULT_HOME}/renderstate.sqlite3"
"""The embedded SQLite database every command uses unless given ``--db``."""
DEFAULT_MEDIA: Final = f"{DEFAULT_HOME}/media"
"""The media root every command uses unless given ``--media``."""


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="URL",
        help=f"SQLAlchemy database URL (default: {DEFAULT_DB})",
    )
    parser.add_argument(
        "--media",
        default=DEFAULT_MEDIA,
        metavar="DIR",
        help=f"media root the videos are written below (default: {DEFAULT_MEDIA})",
    )


def _add_renderer_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--renderer",
        choices=["moviepy", "fake"],
        default="moviepy",
        help=(
            "moviepy writes a real MP4 (default); fake writes a few bytes per frame, "
            "for trying the lifecycle quickly without ffmpeg"
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``renderstate`` command."""
    parser = argparse.ArgumentParser(
        prog="renderstate",
        description="The render lifecycle of a video project, from the command line.",
        epilog="Start with `renderstate demo`. Each command has its own --help.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log tracebacks of failed renders"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="render, re-render, refuse a second start (409), fail and retry a sample project",
        description=(
            "Create a sample project in an embedded SQLite database under DIR, render its "
            "timeline with a live progress bar, re-render it, show a concurrent start "
            "refused with 409, make a render fail (the previous video survives) and retry it."
        ),
    )
    demo.add_argument(
        "--dir",
        default=DEFAULT_HOME,
        help=f"where the database and media go (default: ./{DEFAULT_HOME})",
    )
    _add_renderer_option(demo)

    render = commands.add_parser(
        "render",
        help="render a timeline file into a project's final.mp4",
        description=(
            "Render TIMELINE (a .json or .toml timeline) into a new project, or into "
            "--project KEY (a re-render or a retry). Exits 1 if the render fails."
        ),
    )
    render.add_argument("timeline", metavar="TIMELINE", help="a .json or .toml timeline file")
    _add_store_options(render)
    render.add_argument(
        "--project", metavar="KEY", help="render into this existing project (id or unique prefix)"
    )
    render.add_argument("--title", help="title of a new project (default: the file's name)")
    _add_renderer_option(render)

    status = commands.add_parser(
        "status",
        help="list projects and their status, or show one",
        description="Show every project's status, or one project's (KEY: id or unique prefix).",
    )
    status.add_argument("key", metavar="KEY", nargs="?", help="the project to show")
    _add_store_options(status)

    recover = commands.add_parser(
        "recover",
        help="mark projects left PROCESSING by a dead process as FAILED",
        description=(
            "Mark every project that a killed or crashed process left PROCESSING as FAILED "
            "(guarded: a project that completed meanwhile is untouched) and remove the "
            "temporary files its render left. Run it only while no other process renders "
            "with this database: their projects are PROCESSING too."
        ),
    )
    _add_store_options(recover)

    diagram = commands.add_parser(
        "diagram",
        help="print the state machine as Mermaid or Graphviz",
        description="Print the five-edge state machine, derived from the transition table.",
    )
    diagram.add_argument(
        "--format", choices=["mermaid", "dot"], default="mermaid", help="default: mermaid"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``renderstate`` command line; return the process exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "diagram":
        sys.stdout.write(to_mermaid() if args.format == "mermaid" else to_dot())
        return EXIT_OK
    try:
        from renderstate.cli import _commands  # noqa: PLC0415 - extras load only when needed
    except ImportError as exc:
        sys.stderr.write(f"renderstate: error: {exc}\n")
        return EXIT_FAILED
    return _commands.run(args)
