"""The app's own render function, of the common shape: it picks its output file and returns it.

It stands in for the app's moviepy code (fetch assets, text to speech, compose, encode); it
writes a few bytes so that the example runs in a blink. ``FAIL_NEXT`` makes the next render
crash halfway, after writing part of its file, as an encoder would.
"""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

FAIL_NEXT = False


def render_story(project_id: str, on_progress: Callable[[int, int], None]) -> Path:
    """Render the project's story to a file of its own choosing and return that file."""
    global FAIL_NEXT  # noqa: PLW0603 - the example's failure switch
    fd, name = tempfile.mkstemp(prefix=f"story-{project_id}-", suffix=".mp4")
    out = Path(name)
    try:
        with os.fdopen(fd, "wb") as video:
            for frame in range(10):
                video.write(f"frame {frame} of {project_id}\n".encode())
                on_progress(frame + 1, 10)
                if FAIL_NEXT and frame == 4:
                    FAIL_NEXT = False
                    _crash(frame)
    except BaseException:
        out.unlink()
        raise
    return out


def _crash(frame: int) -> None:
    msg = f"the encoder crashed at frame {frame + 1}"
    raise RuntimeError(msg)
