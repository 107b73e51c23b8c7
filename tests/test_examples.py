"""Every program in examples/ runs, as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_lifecycle_basics_prints_one_winner_of_sixteen() -> None:
    """The basics example walks the five edges and shows 1 start and 15 conflicts."""
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "lifecycle_basics.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "1 started, 15 got 409 Conflict" in out
    assert "the last good video is still 'projects/42/final.mp4'" in out
    for edge in ("render", "complete", "re-render", "fail", "retry"):
        assert f"  {edge} " in out
    assert out.rstrip().endswith("Project 42 is COMPLETED: projects/42/final.mp4")


def test_adopting_drf_guards_finishes_and_publishes(tmp_path: Path) -> None:
    """The docs' existing app: 202 then 409 problem+json; a crashed re-render harms nothing."""
    pytest.importorskip("rest_framework", reason="needs the drf extra")
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "adopting_drf.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "export: 202 PROCESSING" in out
    assert "second click: 409 application/problem+json" in out
    assert "is already PROCESSING" in out
    assert "after the render: COMPLETED /media/projects/" in out
    assert "re-render that crashed: FAILED, still serving /media/projects/" in out
    assert "previous video byte-identical: True; temporary files left: []" in out


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_every_example_runs(example: Path, tmp_path: Path) -> None:
    """Each example exits 0 when run from an empty working directory."""
    subprocess.run(
        [sys.executable, str(example)], cwd=tmp_path, capture_output=True, check=True, timeout=300
    )
