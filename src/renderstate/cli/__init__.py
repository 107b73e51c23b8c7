"""The ``renderstate`` command line (also ``python -m renderstate``).

::

    renderstate demo                      # the whole lifecycle on an embedded SQLite database
    renderstate render TIMELINE [--db URL] [--media DIR] [--project KEY] [--broker URL]
    renderstate render --sample           # the sample timeline the docs use
    renderstate sample > timeline.json    # print it, to edit
    renderstate worker --broker URL [--db URL] [--media DIR] [--concurrency N]
    renderstate status [KEY]
    renderstate recover
    renderstate diagram [--format mermaid|dot]

Everything but ``diagram``, ``sample`` and ``--version`` needs the ``cli`` extra
(``pip install 'renderstate[cli]'``),
imported only when the command runs. Exit codes: 0 success, 1 a render failed or was
refused, 2 bad arguments (unknown project, invalid timeline, unusable ``--db``),
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import resources
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
_DEFAULT_QUEUE: Final = "renderstate"
_DEFAULT_GRACE: Final = 20.0
"""renderstate.runner.celery.DEFAULT_GRACE (Celery is imported only when `worker` runs)."""


def _grace(text: str) -> float:
    """``--grace``: a number of seconds, at least 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        msg = f"--grace needs a number of seconds, at least 0, e.g. --grace 20; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return seconds


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


def _version() -> str:
    from renderstate import __version__  # noqa: PLC0415 - only for --version

    return f"renderstate {__version__}"


class _Version(argparse.Action):
    """``--version``: print the installed version and exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        sys.stdout.write(f"{_version()}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``renderstate`` command."""
    parser = argparse.ArgumentParser(
        prog="renderstate",
        description="The render lifecycle of a video project, from the command line.",
        epilog="Start with `renderstate demo`. Each command has its own --help.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log tracebacks of failed renders"
    )
    # -v is accepted after the command too (`renderstate render -v t.json`); SUPPRESS keeps
    # the top-level value when the command's own -v is not given.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log tracebacks of failed renders",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        parents=[verbose],
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
        parents=[verbose],
        help="render a timeline file into a project's final.mp4",
        description=(
            "Render TIMELINE (a .json or .toml timeline), or the sample timeline with "
            "--sample, into a new project, or into --project KEY (a re-render or a retry). "
            "Exits 1 if the render fails."
        ),
    )
    render.add_argument(
        "timeline", metavar="TIMELINE", nargs="?", help="a .json or .toml timeline file"
    )
    render.add_argument(
        "--sample",
        action="store_true",
        help="render the sample timeline (`renderstate sample` prints it) instead of a file",
    )
    _add_store_options(render)
    render.add_argument(
        "--project", metavar="KEY", help="render into this existing project (id or unique prefix)"
    )
    render.add_argument(
        "--title", help="title of the new project (default: the file's name); not with --project"
    )
    _add_renderer_option(render)
    render.add_argument(
        "--broker",
        metavar="URL",
        help=(
            "send the render to `renderstate worker` processes through this Celery broker "
            "(e.g. redis://localhost:6379/0) and follow its progress in the database, "
            "instead of rendering in this process (--renderer is then the worker's)"
        ),
    )
    render.add_argument(
        "--queue",
        default=_DEFAULT_QUEUE,
        help=f"the workers' queue, with --broker (default: {_DEFAULT_QUEUE})",
    )

    status = commands.add_parser(
        "status",
        parents=[verbose],
        help="list projects and their status, or show one",
        description="Show every project's status, or one project's (KEY: id or unique prefix).",
    )
    status.add_argument("key", metavar="KEY", nargs="?", help="the project to show")
    _add_store_options(status)

    recover = commands.add_parser(
        "recover",
        parents=[verbose],
        help="mark projects left PROCESSING by a dead process as FAILED",
        description=(
            "Mark every project that a killed or crashed process left PROCESSING as FAILED "
            "(guarded: a project that completed meanwhile is untouched) and remove the "
            "temporary files its render left. Every command records its renders in the "
            "database's attempt ledger, and a render renews its lease while it runs: "
            "recover fails only renders whose lease expired (about 30 s after their "
            "process died; at once for a process of this machine that is gone) and lists "
            "those still live, so it is safe to run while other "
            "processes and workers render with this database. A project PROCESSING with "
            "no attempt recorded (started before the ledger, or by an app without one) "
            "is failed at once."
        ),
    )
    _add_store_options(recover)

    commands.add_parser(
        "sample",
        parents=[verbose],
        help="print the sample timeline (JSON), to save, edit and render",
        description=(
            "Print the sample timeline the docs use: `renderstate sample > timeline.json`, "
            "edit it, then `renderstate render timeline.json`."
        ),
    )

    worker = commands.add_parser(
        "worker",
        parents=[verbose],
        help="render on a Celery worker what `renderstate render --broker` sends",
        description=(
            "Run a Celery worker (in this process) that renders the projects of --db sent "
            "through --broker by `renderstate render --broker`. Every worker and sender must "
            "use the same database and media root. Stop it with SIGTERM or Ctrl-C: a render "
            "that cannot finish within --grace seconds stops and goes back to the queue for "
            "another worker. A killed worker's render is sent again by the other workers "
            "once its lease expired (at once if it ran on their machine)."
        ),
    )
    worker.add_argument(
        "--broker", required=True, metavar="URL", help="Celery broker URL, e.g. redis://localhost"
    )
    _add_store_options(worker)
    worker.add_argument(
        "--queue", default=_DEFAULT_QUEUE, help=f"queue to consume (default: {_DEFAULT_QUEUE})"
    )
    worker.add_argument("--concurrency", type=int, default=1, help="renders at once (default: 1)")
    worker.add_argument(
        "--pool",
        choices=["prefork", "solo", "threads"],
        default="prefork",
        help="Celery's execution pool (default: prefork, one process per render)",
    )
    worker.add_argument(
        "--visibility-timeout",
        type=float,
        metavar="SECONDS",
        help=(
            "Redis/SQS only: seconds before an unacknowledged render is delivered again; "
            "longer than your longest render (Celery's default: 3600)"
        ),
    )
    worker.add_argument(
        "--grace",
        type=_grace,
        default=_DEFAULT_GRACE,
        metavar="SECONDS",
        help=(
            "on SIGTERM, seconds a render may still take before it is handed back to the "
            f"queue; below your process manager's own grace (default: {_DEFAULT_GRACE:g})"
        ),
    )
    worker.add_argument("--hostname", help="the worker's node name (default: celery@HOST)")
    worker.add_argument("--loglevel", default="INFO", help="Celery's log level (default: INFO)")
    _add_renderer_option(worker)

    diagram = commands.add_parser(
        "diagram",
        parents=[verbose],
        help="print the state machine as Mermaid or Graphviz",
        description="Print the five-edge state machine, derived from the transition table.",
    )
    diagram.add_argument(
        "--format", choices=["mermaid", "dot"], default="mermaid", help="default: mermaid"
    )
    return parser


def _sample_text() -> str:
    text = resources.files("renderstate.rendering").joinpath("sample_timeline.json")
    return text.read_text("utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``renderstate`` command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "render" and (args.timeline is None) != bool(args.sample):
        parser.error(
            "render needs a TIMELINE file (.json or .toml) or --sample, and not both; "
            "`renderstate sample > timeline.json` saves the sample to edit"
        )
    if args.command == "diagram":
        sys.stdout.write(to_mermaid() if args.format == "mermaid" else to_dot())
        return EXIT_OK
    if args.command == "sample":
        sys.stdout.write(_sample_text())
        return EXIT_OK
    try:
        from renderstate.cli import _commands  # noqa: PLC0415 - extras load only when needed
    except ImportError as exc:
        sys.stderr.write(f"renderstate: error: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        # Ctrl-C while the command's libraries load: nothing has been read or written yet.
        sys.stderr.write("renderstate: interrupted before the command started; nothing changed\n")
        return EXIT_INTERRUPTED
    return _commands.run(args)
