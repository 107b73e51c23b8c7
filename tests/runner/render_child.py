"""Child process of the recovery tests: starts a slow render, says so, and waits to be killed.

Usage: python render_child.py DB MEDIA KEY [fake|moviepy|own]

``fake`` (the default) renders with the FakeRenderer; ``moviepy`` with the real
MoviePyRenderer on a timeline with a tone, stopping for good once frames are being encoded
(the soundtrack's scratch file is written by then); ``own`` with a render function of the
common shape, ``render(project, on_progress) -> path``, that writes its own file under
``MEDIA/renders/`` (wrapped with ``renderstate.runner.own_path``).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sqlite_store import SQLiteStore

from renderstate import RenderRunner
from renderstate.runner import OnProgress, own_path
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


def own_render(media: str) -> Renderer[object]:
    def render_story(project: object, on_progress: OnProgress) -> Path:
        out = Path(media) / "renders" / f"{getattr(project, 'id', 'x')}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as video:
            for frame in range(100_000):
                video.write(b"NEW FRAME\n" * 100)
                video.flush()
                on_progress(frame + 1, 100_000)
                if frame == 3:
                    print("rendering", out, flush=True)
                time.sleep(0.01)
        return out

    return own_path(render_story)


def own_target_render() -> Renderer[object]:
    """The origin app's shape: told where to write, moviepy's scratch audio beside it."""

    def render_video(project_id: object, on_progress: OnProgress, output_path: Path) -> dict:
        scratch = output_path.with_name(f"{output_path.stem}TEMP_MPY_wvf_snd.mp4")
        scratch.write_bytes(b"scratch audio")
        with output_path.open("wb") as video:
            for frame in range(100_000):
                video.write(b"NEW FRAME\n" * 100)
                video.flush()
                on_progress(frame + 1, 100_000, "Rendering frames")
                if frame == 3:
                    print("rendering", output_path, flush=True)
                time.sleep(0.01)
        return {"video_path": str(output_path)}

    return own_path(
        render_video, argument=lambda p: p.id, target="output_path", result_key="video_path"
    )


def main() -> None:
    db, media, key, *kind = sys.argv[1:]
    if kind == ["moviepy"]:
        renderer = moviepy_renderer()
    elif kind == ["own"]:
        renderer = own_render(media)
    elif kind == ["own-target"]:
        renderer = own_target_render()
    else:
        renderer = fake
    store = SQLiteStore(Path(db))
    runner = RenderRunner(store, renderer, media_root=media)
    runner.submit(store.load(key)).wait()


if __name__ == "__main__":
    main()
