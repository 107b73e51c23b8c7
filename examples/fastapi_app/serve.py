"""Serve the FastAPI example with uvicorn: one process, async endpoints, renders in threads.

    python examples/fastapi_app/serve.py --port 8000 \
        --database-url sqlite:///example.sqlite3 --media-root media

Then open http://127.0.0.1:8000/. The tables are created at start, and a render a previous
run left PROCESSING (it was killed mid-render) is failed once its attempt's lease (``--lease``)
has expired, so it can be rendered again.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

INSTALL = "pip install -r examples/fastapi_app/requirements.txt"
"""Installs this example and the driver of every database it takes (from the clone's root)."""
DRIVERS = {
    "postgres": ("psycopg",),
    "postgresql": ("psycopg",),
    "mysql": ("aiomysql",),
}
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
    import uvicorn
    from app import create_app
except ImportError as error:
    missing(error)


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
    parser.add_argument(
        "--lease",
        type=float,
        default=30.0,
        help="seconds a render's attempt stays alive without a heartbeat (recovery after that)",
    )
    args = parser.parse_args(argv)
    require_driver(args.database_url)
    app = create_app(args.database_url, args.media_root, lease=args.lease)
    # One process: its runner renders, and sees the progress of every render. Open event
    # streams end with their render; do not wait for them longer than this at shutdown.
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
