"""Child process of the recovery test: starts a slow render, says so, and waits to be killed.

Usage: python render_child.py DB MEDIA KEY
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sqlite_store import SQLiteStore

from renderstate import RenderRunner
from renderstate.testing import FakeRenderer
from renderstate.typing import ProgressSink

slow = FakeRenderer(frames=100_000, frame_delay=0.01)


def renderer(project: object, target: Path, progress: ProgressSink) -> None:
    def sink(phase: str, done: int, total: int) -> None:
        progress(phase, done, total)
        if done == 3:
            print("rendering", target, flush=True)

    slow(project, target, sink)


def main() -> None:
    db, media, key = sys.argv[1:]
    store = SQLiteStore(Path(db))
    runner = RenderRunner(store, renderer, media_root=media)
    runner.submit(store.load(key)).wait()


if __name__ == "__main__":
    main()
