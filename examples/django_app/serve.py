"""Serve the Django example with gunicorn: one worker process, many request threads.

    python examples/django_app/serve.py --port 8000 \
        --database-url sqlite:///example.sqlite3 --media-root media

The tables are created (migrated) at start. Projects a previous run left PROCESSING (it was
killed mid-render) are failed when the worker starts, so they can be rendered again.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
INSTALL = "pip install -r examples/django_app/requirements.txt"
"""Installs this example and the driver of every database it takes (from the clone's root)."""
DRIVERS = {"postgres": ("psycopg",), "postgresql": ("psycopg",), "mysql": ("pymysql",)}
"""The modules a ``--database-url`` scheme needs."""


def missing(error: ImportError) -> NoReturn:
    """Say which line installs what is missing, and exit 2."""
    print(
        f"{type(error).__name__}: {error}\n"
        f"This example needs packages that are not installed. From the clone's root, run:\n"
        f"    {INSTALL}",
        file=sys.stderr,
    )
    raise SystemExit(2)


def require_driver(database_url: str) -> None:
    """Exit 2 with the install line when the driver of ``database_url`` is not installed."""
    scheme = urlsplit(database_url).scheme.split("+", 1)[0]
    for module in DRIVERS.get(scheme, ()):
        try:
            importlib.import_module(module)
        except ImportError as error:
            missing(error)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--database-url",
        default="sqlite:///example.sqlite3",
        help="sqlite:///path, postgresql://user@host/name or mysql://user@host/name",
    )
    parser.add_argument("--media-root", default="media", help="uploads and rendered videos")
    parser.add_argument("--threads", type=int, default=32, help="request threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    require_driver(args.database_url)
    media_root = Path(args.media_root).resolve()
    (media_root / "uploads").mkdir(parents=True, exist_ok=True)
    os.environ["EXPORTSITE_DATABASE_URL"] = args.database_url
    os.environ["EXPORTSITE_MEDIA_ROOT"] = str(media_root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exportsite.settings")
    sys.path.insert(0, str(HERE))

    try:
        import django  # noqa: PLC0415 - configured by the environment set above
        import gunicorn  # noqa: F401, PLC0415
        from django.core.management import call_command  # noqa: PLC0415
    except ImportError as error:
        missing(error)

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)

    from gunicorn.app.base import BaseApplication  # noqa: PLC0415

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{args.host}:{args.port}")
            # One process: its runner renders, and sees the progress of every render.
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", args.threads)
            self.cfg.set("post_worker_init", post_worker_init)
            self.cfg.set("worker_exit", worker_exit)
            # No runtime control socket: it lives at one fixed path per user.
            self.cfg.set("control_socket_disable", True)  # noqa: FBT003

        def load(self) -> Any:
            from exportsite.wsgi import application  # noqa: PLC0415

            return application

    Server().run()


def post_worker_init(worker: Any) -> None:
    """Fail what a dead predecessor left PROCESSING: no render of this process runs yet."""
    from projects.rendering import get_runner  # noqa: PLC0415

    for record in get_runner().recover_interrupted():
        worker.log.warning("project %s was left PROCESSING; it is FAILED now", record.project_key)


def worker_exit(server: Any, worker: Any) -> None:
    """Shut the runner down as the worker exits: running renders finish and are recorded."""
    from projects.rendering import get_runner  # noqa: PLC0415

    get_runner().shutdown(wait=True, cancel_pending=True)


if __name__ == "__main__":
    main()
