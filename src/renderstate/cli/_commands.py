"""The commands behind ``renderstate``; imported only when one runs (needs the ``cli`` extra).

This module maps each command to its function and each error to an exit code; the commands
live one family per module: ``_demo``, ``_render`` (here or on the workers), ``_show``
(``status``), ``_recover`` (``recover`` and ``worker``), with what they share in ``_common``
and the progress bars and Ctrl-C in ``_progress``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

try:
    from rich.console import Console
    from rich.markup import escape
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    msg = "the renderstate command line needs rich: pip install 'renderstate[cli]'"
    raise ImportError(msg) from exc

from renderstate.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from renderstate.cli._common import KNOWN_STATUSES, UsageError
from renderstate.cli._demo import demo_command
from renderstate.cli._recover import recover_command, worker_command
from renderstate.cli._render import render_command
from renderstate.cli._show import status_command
from renderstate.cli._store import StoreError
from renderstate.exceptions import RenderConflictError, RenderStateError, UnknownStatusError
from renderstate.rendering.timeline import TimelineError

__all__ = ["run"]


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
                f"  The command line's database stores only {KNOWN_STATUSES}: set this row's "
                f"status to one of them (FAILED lets a new render start); nothing was changed."
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


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": demo_command,
    "render": render_command,
    "status": status_command,
    "recover": recover_command,
    "worker": worker_command,
}
