"""`renderstate status` reads well on an 80-column terminal; attempts are counted per project."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

import pytest

from renderstate import ProjectLifecycle, RenderRunner, Status
from renderstate.cli import EXIT_OK, main
from renderstate.cli._show import short_ids, when
from renderstate.cli._store import Project, Store
from renderstate.testing import FakeRenderer, InlineExecutor

TITLE = "A rather long project title that an 80-column terminal has to wrap at its words"


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db.sqlite3'}"


def run(tmp_path: Path, *args: str) -> int:
    return main([*args, "--db", url(tmp_path), "--media", str(tmp_path / "m")])


def terminal_output(capsys: pytest.CaptureFixture[str]) -> list[str]:
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    return out.splitlines()


def completed_projects(tmp_path: Path, count: int) -> list[str]:
    """``count`` COMPLETED projects with long titles and the command's own output paths."""
    store = Store(url(tmp_path))
    keys = []
    for n in range(count):
        project = store.create(f"{TITLE} {n}", {})
        with store.sessions.begin() as session:
            row = session.merge(project)
            row.status = "COMPLETED"
            row.output_path = f"projects/{project.id}/final.mp4"
        keys.append(project.id)
    store.close()
    return keys


def test_status_at_80_columns_reads_well(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short ids, whole statuses, titles wrapped at words, one-line paths, readable times."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    keys = completed_projects(tmp_path, 3)
    assert run(tmp_path, "status") == EXIT_OK
    lines = terminal_output(capsys)
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    rows = [line for line in lines if line[:8] in {k[:8] for k in keys}]
    assert len(rows) == 3, "\n".join(lines)
    for row in rows:
        short_id, status, *_ = row.split()
        assert len(short_id) == 8
        assert status == "COMPLETED"
        assert "\u2026/final.mp4" in row
        assert row.rstrip().endswith("just now")
    text = " ".join(" ".join(lines).split())
    for word in TITLE.split():
        assert word in text  # wrapped, never cut
    for key in keys:
        assert key not in text  # the whole id is for `status KEY` and for pipes
    # Three projects, a header and its rule, a caption: each row takes at most 3 lines.
    assert len(lines) <= 3 * 3 + 3, "\n".join(lines)
    assert "\u2026/ is the project's folder, projects/ID/" in lines[-1]


def test_a_short_id_is_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id the table shows is accepted by `status KEY`, which shows the project whole."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    (key,) = completed_projects(tmp_path, 1)
    assert run(tmp_path, "status") == EXIT_OK
    short = terminal_output(capsys)[2].split()[0]
    assert run(tmp_path, "status", short) == EXIT_OK
    out = capsys.readouterr().out
    assert key in out
    assert f"projects/{key}/final.mp4" in out


def test_short_ids_grow_until_unique() -> None:
    """Ids sharing their first 8 characters are shown with as many more as tell them apart."""
    ids = ["abcdefgh-1111", "abcdefgh-1122", "zzzzzzzz-0000"]
    assert short_ids(ids) == {
        "abcdefgh-1111": "abcdefgh-111",
        "abcdefgh-1122": "abcdefgh-112",
        "zzzzzzzz-0000": "zzzzzzzz-000",
    }
    assert short_ids(["abcdefgh-1", "zzzzzzzz-2"]) == {
        "abcdefgh-1": "abcdefgh",
        "zzzzzzzz-2": "zzzzzzzz",
    }


@pytest.mark.parametrize(
    ("ago", "text"),
    [
        (datetime.timedelta(seconds=5), "just now"),
        (datetime.timedelta(minutes=5, seconds=30), "5 min ago"),
        (datetime.timedelta(hours=3, minutes=59), "3 h ago"),
        (datetime.timedelta(days=1, hours=2), "yesterday"),
        (datetime.timedelta(days=4), "4 days ago"),
        (datetime.timedelta(days=30), "2026-11-07"),
    ],
)
def test_times_read_as_relative_then_as_dates(ago: datetime.timedelta, text: str) -> None:
    """Recent times are relative; a time over a week old is its full date, never cut."""
    now = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)
    assert when(now - ago, now) == text
    assert when((now - ago).replace(tzinfo=None), now) == text  # SQLite's naive UTC


def test_status_key_numbers_attempts_per_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A project's third render is its attempt 3, shown beside the ledger's global id."""
    timeline = tmp_path / "timeline.json"
    timeline.write_text(
        json.dumps({"width": 64, "height": 36, "fps": 12, "scenes": [{"duration": 1}]})
    )
    render = ["render", str(timeline), "--renderer", "fake"]
    assert run(tmp_path, *render) == EXIT_OK  # another project: the ledger's attempt 1
    store = Store(url(tmp_path))
    project = store.create("counted", {})
    store.close()
    for _ in range(3):
        assert run(tmp_path, *render, "--project", project.id) == EXIT_OK
    capsys.readouterr()
    assert run(tmp_path, "status", project.id) == EXIT_OK
    out = capsys.readouterr().out
    assert "  attempt      3 (ledger #4) completed after " in out, out
    updated = Store(url(tmp_path), create=False)
    try:
        row: Project = updated.get(project.id)
    finally:
        updated.close()
    assert f"  updated      {row.updated_at:%Y-%m-%d %H:%M:%S} UTC (just now)" in out, out


def test_a_row_without_output_path_shows_the_ledgers_video(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A project rendered by a runner with output_field=None (the status alone written):
    `status` and `status KEY` show the video its completed attempt recorded in the ledger,
    and the file behind it."""
    store = Store(url(tmp_path))
    project = store.create("no column", {})
    with RenderRunner(
        store.adapter,
        FakeRenderer(frames=2),
        media_root=tmp_path / "m",
        executor=InlineExecutor(),
        ledger=store.ledger,
        loader=store.loader,
        output_field=None,
    ) as runner:
        assert runner.submit(project).wait(30) is Status.COMPLETED
    assert store.get(project.id).output_path is None
    store.close()
    assert run(tmp_path, "status", project.id) == EXIT_OK
    shown = terminal_output(capsys)
    path = f"projects/{project.id}/final.mp4"
    assert f"  output_path  {path}" in shown
    assert any(line.startswith("  file ") and "missing" not in line for line in shown), shown
    assert run(tmp_path, "status") == EXIT_OK
    (row,) = [line for line in terminal_output(capsys) if line.startswith(project.id)]
    assert row.split("\t")[3] == path


def test_status_shows_a_live_attempt_s_label_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A render's description of its step, written by its worker's heartbeat, is shown
    beside its phase by ``status``, as text (brackets are not markup)."""
    store = Store(url(tmp_path))
    try:
        project = store.create("labelled", {})
        _, attempt = store.ledger.start(ProjectLifecycle(project, store.adapter))
        attempt = store.ledger.begin(attempt)
        assert store.ledger.heartbeat(
            attempt, {"phase": "encode", "done": 1, "total": 4, "label": "Encoding [bold]video"}
        )
    finally:
        store.close()
    capsys.readouterr()
    assert run(tmp_path, "status", project.id) == EXIT_OK
    out = capsys.readouterr().out
    assert "encode 0% (Encoding [bold]video) on " in out, out
