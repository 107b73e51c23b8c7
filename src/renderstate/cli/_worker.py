"""``renderstate worker``: a Celery worker that renders the command line's projects.

It builds a Celery app on ``--broker``, registers :data:`renderstate.runner.celery.TASK_NAME`
on it with a runner over the ``--db`` store (projects and attempt ledger), and runs
``celery worker`` in this process. ``renderstate render --broker URL`` sends to it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

try:
    from celery import Celery
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    msg = "`renderstate worker` and `--broker` need Celery: pip install 'renderstate[cli,celery]'"
    raise ImportError(msg) from exc

from renderstate.cli._store import Project, Store
from renderstate.runner import RenderRunner
from renderstate.runner.celery import CeleryExecutor, register
from renderstate.typing import Job, Renderer

__all__ = ["Sender", "build_app", "work"]


def build_app(broker: str, *, visibility_timeout: float | None = None) -> Celery:
    """The command line's Celery app on ``broker`` (results are not stored)."""
    app = Celery("renderstate", broker=broker)
    app.conf.update(
        task_ignore_result=True,
        # One message at a time per process: with late acknowledgement, prefetched
        # messages would wait unacknowledged (and count against the visibility timeout).
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
    )
    if visibility_timeout is not None:
        app.conf.broker_transport_options = {"visibility_timeout": visibility_timeout}
    return app


class Sender:
    """Sends ``renderstate render --broker``'s job, after ``before()`` (once the start won).

    The new timeline is stored between the guarded start and the send: a refused start
    changes nothing, and the worker never loads the project before its timeline is saved.
    """

    def __init__(self, args: argparse.Namespace, before: Callable[[], None]) -> None:
        self._celery = CeleryExecutor(build_app(args.broker), queue=args.queue)
        self._before = before

    def schedule(self, job: Job, /) -> None:
        self._before()
        self._celery.schedule(job)

    @property
    def route(self) -> str:
        """What the ledger records as the attempt's executor (the Celery executor's)."""
        return self._celery.route

    def shutdown(self, wait: bool = True) -> None:
        self._celery.shutdown(wait)


def work(args: argparse.Namespace, renderer_for: Any) -> int:
    """Run a worker in this process until it is stopped.

    On SIGTERM (or Ctrl-C) a render that cannot finish within ``--grace`` seconds stops at
    its next frame and goes back to the queue; the worker sweeps the ledger every half lease,
    sending again the renders of workers that died.
    """
    app = build_app(args.broker, visibility_timeout=args.visibility_timeout)
    Store(args.db).close()  # a bad --db is reported now, not on the first task

    def make_runner() -> RenderRunner[Project]:
        store = Store(args.db)
        renderer: Renderer[Any] = renderer_for(args.renderer)
        return RenderRunner(
            store.adapter,
            renderer,
            media_root=args.media,
            ledger=store.ledger,
            loader=store.loader,
        )

    register(app, make_runner, grace=args.grace)
    argv = [
        "worker",
        "--queues",
        args.queue,
        "--concurrency",
        str(args.concurrency),
        "--pool",
        args.pool,
        "--loglevel",
        args.loglevel,
    ]
    if args.hostname:
        argv += ["--hostname", args.hostname]
    app.worker_main(argv)
    return 0
