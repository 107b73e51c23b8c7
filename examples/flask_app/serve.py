"""Serve the Flask example with werkzeug's threaded WSGI server.

    python examples/flask_app/serve.py --port 8000 \
        --database-url sqlite:///example.sqlite3 --media-root media

The table is created at start. Projects a previous run left PROCESSING (it was killed
mid-render) are failed first, so they can be rendered again: this process is the only one
that renders, and it has not started any render yet.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

INSTALL = "pip install -r examples/flask_app/requirements.txt"
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


try:
    from app import create_app
    from werkzeug.serving import WSGIRequestHandler, make_server
except ImportError as error:
    missing(error)

log = logging.getLogger("flask_app")


class PlainLogHandler(WSGIRequestHandler):
    """werkzeug's request handler, logging each request without terminal colour codes.

    werkzeug colours its request lines with ANSI codes whatever the log goes to; this
    example's log is read in files and by process managers, where they show as noise.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log("info", '"%s" %s %s', self.requestline, code, size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--database-url",
        default="sqlite:///example.sqlite3",
        help="sqlite:///path, postgresql://user@host/name or mysql://user@host/name",
    )
    parser.add_argument("--media-root", default="media", help="uploads and rendered videos")
    args = parser.parse_args(argv)
    require_driver(args.database_url)
    logging.basicConfig(level=logging.INFO)

    app = create_app(args.database_url, args.media_root)
    runner = app.extensions["renderstate"]
    for record in runner.recover_interrupted():
        log.warning("project %s was left PROCESSING; it is FAILED now", record.project_key)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=PlainLogHandler)
    # SIGTERM (a process manager stopping the app) shuts down as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    log.info("serving on http://%s:%d", args.host, server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C: stop quietly
    finally:
        server.server_close()
        runner.shutdown(wait=True, cancel_pending=True)


if __name__ == "__main__":
    main()
