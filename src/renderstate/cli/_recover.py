"""``renderstate recover`` and ``renderstate worker``: the commands for many processes."""

from __future__ import annotations

import argparse
import datetime

from renderstate._status import Status
from renderstate.cli import EXIT_OK
from renderstate.cli._common import (
    UsageError,
    attempt_label,
    make_renderer,
    new_console,
    open_store,
    refuse_to_render,
)
from renderstate.ledger._owners import worker_label
from renderstate.runner import RenderRunner


def worker_command(args: argparse.Namespace) -> int:
    from renderstate.cli._worker import work  # noqa: PLC0415 - the celery extra

    if args.concurrency < 1:
        msg = f"--concurrency must be at least 1, got {args.concurrency}"
        raise UsageError(msg)
    return work(args, make_renderer)


def _clock(timestamp: float) -> str:
    return f"{datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc):%H:%M:%S} UTC"


def recover_command(args: argparse.Namespace) -> int:
    console = new_console()
    store = open_store(args, create=False)
    try:
        # Safe while other processes render: only attempts whose lease expired.
        with RenderRunner(
            store.adapter,
            refuse_to_render,
            media_root=args.media,
            ledger=store.ledger,
            loader=store.loader,
        ) as runner:
            records = runner.recover_interrupted()
        # A project left PROCESSING with no attempt at all was started before this
        # database had a ledger (every start since records one): fail it too.
        orphans = [
            p for p in store.with_status(Status.PROCESSING) if store.current_attempt(p) is None
        ]
        if orphans:
            with RenderRunner(store.adapter, refuse_to_render, media_root=args.media) as plain:
                records += plain.recover_interrupted(orphans)
        alive = [
            (p, a, store.attempt_number(p, a.id))
            for p in store.with_status(Status.PROCESSING)
            if (a := store.current_attempt(p)) is not None and a.active
        ]
    finally:
        store.close()
    if not records:
        if alive:
            for project, attempt, number in alive:
                console.print(
                    f"  {project.id}: attempt {attempt_label(number, attempt.id)} "
                    f"{attempt.state} on "
                    f"{worker_label(attempt.worker) if attempt.worker else 'a queue'}, lease until "
                    f"{attempt.lease_expires_at and _clock(attempt.lease_expires_at)}"
                )
            console.print(
                f"No project was recovered: {len(alive)} render(s) still hold a lease. A "
                f"render whose process died on this machine is recovered at once; on "
                f"another machine, once its lease expires."
            )
            return EXIT_OK
        console.print("No project was left PROCESSING.")
        return EXIT_OK
    for record in records:
        console.print(f"  {record.project_key}: PROCESSING -> [red]FAILED[/] ({record.error})")
    console.print(f"Recovered {len(records)} project(s); start their renders again to retry.")
    return EXIT_OK
