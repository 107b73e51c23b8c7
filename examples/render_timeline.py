"""Render a three-scene timeline to video.mp4 in the current directory, printing progress.

Needs the render extra: pip install 'renderstate[render]'.
Run: python examples/render_timeline.py
"""

from __future__ import annotations

from pathlib import Path

from renderstate.rendering.moviepy import MoviePyRenderer
from renderstate.rendering.timeline import TimelineError

TIMELINE = {
    "width": 640,
    "height": 360,
    "fps": 24,
    "background": "#10243e",
    "scenes": [
        {"duration": 2, "title": "Hello", "subtitle": "a timeline, rendered"},
        {"duration": 2, "background": "#1f4e3d", "title": "Crossfade", "crossfade": 0.5},
        {"duration": 2, "background": "#5b1f3a", "title": "The end", "crossfade": 0.5},
    ],
    "soundtrack": {"tone": 330, "volume": 0.5},
}


def report(phase: str, done: int, total: int) -> None:
    """A progress sink: print every tenth of each phase."""
    if done == total or done % max(1, total // 10) == 0:
        print(f"{phase}: {done}/{total}")


def main() -> None:
    # A mistake is refused before anything is rendered, naming the scene and the field.
    try:
        MoviePyRenderer(timeline={"scenes": [{"duration": 2, "titel": "typo"}]})
    except TimelineError as error:
        print(f"refused: {error}")

    target = Path("video.mp4")
    MoviePyRenderer(timeline=TIMELINE, preset="veryfast")(None, target, report)
    print(f"wrote {target} ({target.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
