"""Serve the FastAPI example with uvicorn: one process, async endpoints, renders in threads.

    python examples/fastapi_app/serve.py --port 8000 \
        --database-url sqlite:///example.sqlite3 --media-root media

Then open http://127.0.0.1:8000/. The tables are created at start, and projects a previous
run left PROCESSING (it was killed mid-render) are failed, so they can be rendered again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--database-url",
        default="sqlite:///example.sqlite3",
        help="sqlite:///path or postgresql://user@host:port/name (default: %(default)s)",
    )
    parser.add_argument("--media-root", default="media", help="uploads and rendered videos")
    args = parser.parse_args(argv)
    app = create_app(args.database_url, args.media_root)
    # One process: its runner renders, and sees the progress of every render. Open event
    # streams end with their render; do not wait for them longer than this at shutdown.
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
