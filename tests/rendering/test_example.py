"""examples/render_timeline.py, run as a user would, writes a playable video."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("moviepy", reason="needs the render extra: pip install 'renderstate[render]'")

from .media import probe

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "render_timeline.py"


@pytest.mark.slow
def test_render_timeline_example_refuses_a_typo_then_writes_the_video(tmp_path: Path) -> None:
    """The example shows a refused typo, progress up to 120/120 frames and a 5 s MP4."""
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert "refused: Timeline scene 0, field 'titel'" in out
    assert "rendering: 120/120" in out
    info = probe(tmp_path / "video.mp4")
    assert (info.width, info.height, info.pixel_format, info.audio_codec) == (
        640,
        360,
        "yuv420p",
        "aac",
    )
    assert info.duration == pytest.approx(5.0, abs=0.1)
