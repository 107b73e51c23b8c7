"""Child process of the local-death tests: renders with a 60 s lease until it is killed.

Usage: python death_child.py URL MEDIA KEY KIND [SOUNDTRACK]

Renders project KEY of the command line's database at URL, with a ledger whose lease is
60 s. ``KIND`` says where it stops for good, printing ``ready`` first: ``fake`` (a
FakeRenderer, at frame 3), ``soundtrack`` (the MoviePyRenderer, while moviepy's reader
decodes SOUNDTRACK into the scratch WAV) or ``encoding`` (the MoviePyRenderer, at frame 3
of the video, piped frame by frame: the encoder is running).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from renderstate import RenderRunner
from renderstate.cli._store import Project, Store
from renderstate.ledger import Ledger
from renderstate.testing import FakeRenderer
from renderstate.typing import ProgressSink, Renderer

LEASE = 60.0


def timeline(soundtrack: str) -> dict[str, object]:
    return {
        "width": 64,
        "height": 36,
        "fps": 10,
        "scenes": [
            {"duration": 10, "background": "#336699", "title": "killed"},
            {"duration": 10, "background": "#993366", "title": "twice"},
        ],
        "soundtrack": {"file": Path(soundtrack).name},
    }


def stopping(renderer: Renderer[Project], phase: str, at: int) -> Renderer[Project]:
    never = threading.Event()

    def render(project: Project, target: Path, progress: ProgressSink) -> None:
        def sink(reported: str, done: int, total: int) -> None:
            progress(reported, done, total)
            if reported == phase and done >= at:
                print("ready", flush=True)
                never.wait()  # in the render's own thread, its children running

        renderer(project, target, sink)

    return render


def main() -> None:
    url, media, key, kind, *soundtrack = sys.argv[1:]
    renderer: Renderer[Project]
    if kind == "fake":
        renderer = stopping(FakeRenderer(frames=100_000, frame_delay=0.01), "rendering", 3)
    else:
        from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415 - the extra

        moviepy = MoviePyRenderer(
            timeline=timeline(soundtrack[0]),
            base_dir=Path(soundtrack[0]).parent,
            preset="ultrafast",
            # Every frame piped: the encoder still waits for pictures at frame 3.
            repeat_stills=False,
        )
        phase, at = ("writing audio", 1) if kind == "soundtrack" else ("rendering", 3)
        renderer = stopping(moviepy, phase, at)
    store = Store(url)
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        renderer,
        media_root=media,
        ledger=Ledger(store.ledger.store, lease=LEASE),
        loader=store.loader,
    )
    runner.submit(store.get(key)).wait()


if __name__ == "__main__":
    main()
