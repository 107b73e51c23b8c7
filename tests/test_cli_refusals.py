"""A timeline the renderer would refuse is refused by the command first, leaving nothing behind.

Whether the parser or the renderer's own checks (pictures, glyphs, audio) find the problem,
``renderstate render`` exits 2 before a project is created or a render started: no row, no
``projects/<id>/`` folder, no database file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from renderstate.cli import EXIT_USAGE, main
from renderstate.cli._store import Store

SIZE = {"width": 64, "height": 36, "fps": 12}

BAD = {
    "a picture that is not one": (
        {"scenes": [{"duration": 1, "image": "not-a-picture.png"}]},
        "is not a readable picture",
    ),
    "text the font cannot draw": (
        {"scenes": [{"duration": 1, "title": "\u4e2d"}]},
        "which has no glyph for it",
    ),
    "a soundtrack that is not audio": (
        {"scenes": [{"duration": 1}], "soundtrack": {"file": "not-audio.mp3"}},
        "is not a readable audio file",
    ),
    "a missing picture": (
        {"scenes": [{"duration": 1, "image": "missing.png"}]},
        "does not exist",
    ),
    "no frame at all": ({"scenes": [{"duration": 0.01}]}, "shorter than one frame"),
}


def write_timeline(tmp_path: Path, timeline: dict[str, Any]) -> Path:
    (tmp_path / "not-a-picture.png").write_text("hello")
    (tmp_path / "not-audio.mp3").write_text("hello")
    path = tmp_path / "timeline.json"
    path.write_text(json.dumps({**SIZE, **timeline}))
    return path


def run(tmp_path: Path, *args: str) -> int:
    return main(
        [*args, "--db", f"sqlite:///{tmp_path / 'db.sqlite3'}", "--media", str(tmp_path / "m")]
    )


@pytest.mark.parametrize(("timeline", "problem"), BAD.values(), ids=BAD.keys())
def test_a_bad_timeline_creates_nothing(
    tmp_path: Path, timeline: dict[str, Any], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every kind of bad timeline exits 2 naming the problem; no database, row or folder."""
    path = write_timeline(tmp_path, timeline)
    assert run(tmp_path, "render", str(path)) == EXIT_USAGE
    captured = capsys.readouterr()
    assert problem in captured.err, captured.err
    assert "Created project" not in captured.out
    assert not (tmp_path / "db.sqlite3").exists()
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("timeline", "problem"), BAD.values(), ids=BAD.keys())
def test_a_bad_timeline_leaves_an_existing_project_as_it_was(
    tmp_path: Path, timeline: dict[str, Any], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """render --project with a bad timeline exits 2; the project keeps its status and timeline."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    project = store.create("kept", {"scenes": [{"duration": 1}]})
    store.close()
    path = write_timeline(tmp_path, timeline)
    assert run(tmp_path, "render", str(path), "--project", project.id) == EXIT_USAGE
    assert problem in capsys.readouterr().err
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}", create=False)
    try:
        row = store.get(project.id)
        assert (row.status, row.timeline) == ("DRAFT", {"scenes": [{"duration": 1}]})
        assert store.current_attempt(row) is None
    finally:
        store.close()
    assert not (tmp_path / "m").exists()
