"""Child process of the recovery tests: starts a slow render, says so, and waits to be killed.

Usage: python render_child.py DB MEDIA KEY [fake|moviepy]

``fake`` (the default) renders with the FakeRenderer; ``moviepy`` with the real
MoviePyRenderer on a timeline with a tone, stopping for good once frames are being encoded
(the soundtrack's scratch file is written by then).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sqlite_store import SQLiteStore

from renderstate import RenderRunner
from renderstate.testing import FakeRenderer
from renderstate.typing import ProgressSink, Renderer

slow = FakeRenderer(frames=100_000, frame_delay=0.01)

TONE_TIMELINE = {
    "width": 64,
    "height": 36,
    "fps": 10,
    "scenes": [{"duration": 20, "background": "#336699", "title": "killed"}],
    "soundtrack": {"tone": 440},
}


def fake(project: object, target: Path, progress: ProgressSink) -> None:
    def sink(phase: str, done: int, total: int) -> None:
        progress(phase, done, total)
        if done == 3:
            print("rendering", target, flush=True)

    slow(project, target, sink)


def moviepy_renderer() -> Renderer[object]:
    from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415 - the extra

    renderer = MoviePyRenderer(timeline=TONE_TIMELINE, preset="ultrafast")
    never = threading.Event()

    def render(project: object, target: Path, progress: ProgressSink) -> None:
        def sink(phase: str, done: int, total: int) -> None:
            progress(phase, done, total)
            if phase == "rendering" and done == 3:
                print("rendering", target, flush=True)
                never.wait()  # mid-encode, ffmpeg running, until the parent kills us

        renderer(project, target, sink)

    return render


def main() -> None:
    db, media, key, *kind = sys.argv[1:]
    renderer = moviepy_renderer() if kind == ["moviepy"] else fake
    store = SQLiteStore(Path(db))
    runner = RenderRunner(store, renderer, media_root=media)
    runner.submit(store.load(key)).wait()


if __name__ == "__main__":
    main()
