"""The renderstate command line: the demo end to end, each command, and its error paths."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from renderstate import RenderJob, Status, to_dot, to_mermaid
from renderstate.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _commands, main
from renderstate.cli._store import Store
from renderstate.runner import Phase
from renderstate.testing import FakeRenderer

TIMELINE = {
    "width": 160,
    "height": 90,
    "fps": 12,
    "scenes": [{"duration": 1, "title": "hello"}],
}


def cli(tmp_path: Path, *args: str) -> list[str]:
    return [*args, "--db", f"sqlite:///{tmp_path / 'db.sqlite3'}", "--media", str(tmp_path / "m")]


@pytest.fixture
def timeline(tmp_path: Path) -> Path:
    path = tmp_path / "timeline.json"
    path.write_text(json.dumps(TIMELINE))
    return path


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "renderstate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_demo_end_to_end_writes_a_playable_mp4(tmp_path: Path) -> None:
    """`renderstate demo` in an empty directory exits 0 and leaves an MP4 in ./renderstate-demo."""
    result = run_cli("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "simulated encoder crash" not in result.stderr  # reported once, on stdout
    (video,) = (tmp_path / "renderstate-demo" / "media" / "projects").glob("*/final.mp4")
    assert video.read_bytes()[4:8] == b"ftyp"  # an ISO media file, not the fake renderer's
    assert sorted(p.name for p in video.parent.iterdir()) == ["final.mp4"]
    out = result.stdout
    for transition in [
        "DRAFT -> PROCESSING",
        "COMPLETED -> PROCESSING",
        "PROCESSING -> FAILED",
        "FAILED -> PROCESSING",
    ]:
        assert transition in out
    assert "refused, HTTP 409" in out
    assert "previous final.mp4 unchanged" in out
    # The doomed render really gets halfway (moviepy reports a total of 0 before it starts).
    crash = re.search(r"simulated encoder crash at frame (\d+) of (\d+)", out)
    assert crash is not None
    assert int(crash[2]) > 0
    assert int(crash[1]) == int(crash[2]) // 2
    # The re-render's edited title changes the video: a replacement, not the same bytes.
    digests = re.findall(r"sha256 ([0-9a-f]{16})", out)
    assert digests[0] != digests[1]
    assert str(video.resolve()) in out
    assert "FAILED  " not in out.split("Result")[-1]  # every check of the demo is ok
    status = run_cli("status", cwd=tmp_path)
    assert status.returncode == 0
    assert "COMPLETED" in status.stdout


def test_demo_with_the_fake_renderer_runs_every_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's four steps behave as designed, in process, with the fake renderer."""
    assert main(["demo", "--renderer", "fake", "--dir", str(tmp_path / "d")]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.count("  ok  ") == 6
    assert "temporary files left beside it: none" in out
    (video,) = (tmp_path / "d" / "media" / "projects").glob("*/final.mp4")
    assert video.read_bytes().startswith(b"FAKE VIDEO")


def test_render_then_status_then_re_render(
    tmp_path: Path, timeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """render creates a project and completes it; status shows it; --project re-renders it."""
    assert main(cli(tmp_path, "render", str(timeline), "--renderer", "fake")) == EXIT_OK
    out = capsys.readouterr().out
    assert "DRAFT -> PROCESSING" in out
    assert "COMPLETED" in out
    assert main(cli(tmp_path, "status")) == EXIT_OK
    listing = capsys.readouterr().out
    assert "timeline" in listing
    (video,) = (tmp_path / "m" / "projects").glob("*/final.mp4")
    key = video.parent.name
    assert main(cli(tmp_path, "status", key[:8])) == EXIT_OK
    shown = capsys.readouterr().out
    assert key in shown
    assert "COMPLETED" in shown
    args = cli(tmp_path, "render", str(timeline), "--project", key, "--renderer", "fake")
    assert main(args) == EXIT_OK
    assert "COMPLETED -> PROCESSING" in capsys.readouterr().out


def test_render_with_moviepy_writes_an_mp4(tmp_path: Path, timeline: Path) -> None:
    """The default renderer is moviepy: a tiny timeline becomes a real MP4."""
    result = run_cli(*cli(tmp_path, "render", str(timeline)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (video,) = (tmp_path / "m" / "projects").glob("*/final.mp4")
    assert video.read_bytes()[4:8] == b"ftyp"


def test_recover_fails_projects_left_processing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """recover turns a PROCESSING row into FAILED and reports it; a second run finds nothing."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    project = store.create("stuck", {})
    with store.sessions.begin() as session:
        session.merge(project).status = "PROCESSING"
    store.close()
    assert main(cli(tmp_path, "recover")) == EXIT_OK
    assert "PROCESSING -> FAILED" in capsys.readouterr().out
    assert main(cli(tmp_path, "status", project.id)) == EXIT_OK
    assert "FAILED" in capsys.readouterr().out
    assert main(cli(tmp_path, "recover")) == EXIT_OK
    assert "No project was left PROCESSING" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_diagram_prints_the_machine(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    """diagram prints the diagram derived from the transition table."""
    assert main(["diagram", "--format", fmt]) == EXIT_OK
    assert capsys.readouterr().out == (to_mermaid() if fmt == "mermaid" else to_dot())


def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    """`python -m renderstate diagram` works like `renderstate diagram`."""
    result = run_cli("diagram", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == to_mermaid()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bogus"],
        ["diagram", "--format", "png"],
        ["render"],
        ["render", "t.json", "--renderer", "x"],
    ],
)
def test_bad_arguments_exit_2_with_usage(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse refuses missing or unknown arguments with exit code 2 and a usage line."""
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == EXIT_USAGE
    assert "usage: renderstate" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "render", "status", "recover", "diagram", None])
def test_help_everywhere(command: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    """--help works for the program and every command, exiting 0."""
    with pytest.raises(SystemExit) as info:
        main([command, "--help"] if command else ["--help"])
    assert info.value.code == 0
    assert "usage: renderstate" in capsys.readouterr().out


def test_unknown_project_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status of an unknown key exits 2 and says how to list projects."""
    Store(f"sqlite:///{tmp_path / 'db.sqlite3'}").close()
    assert main(cli(tmp_path, "status")) == EXIT_OK
    assert "No projects" in capsys.readouterr().out
    assert main(cli(tmp_path, "status", "no-such-project")) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no project 'no-such-project'" in err
    assert "renderstate status" in err


def test_missing_timeline_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """render of a file that does not exist exits 2 and creates nothing."""
    assert main(cli(tmp_path, "render", str(tmp_path / "nope.json"))) == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_invalid_timeline_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A timeline the renderer would refuse is reported before any project is created."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"scenes": []}))
    assert main(cli(tmp_path, "render", str(bad), "--renderer", "fake")) == EXIT_USAGE
    assert "scenes" in capsys.readouterr().err
    assert not (tmp_path / "db.sqlite3").exists()


def test_bad_database_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unparsable --db exits 2 with an example of a good URL."""
    assert main(["status", "--db", "not a url"]) == EXIT_USAGE
    assert "sqlite:///" in capsys.readouterr().err


def test_a_conflicting_render_exits_1_with_409(
    tmp_path: Path, timeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """render --project of a PROCESSING project is refused with 409 and exit code 1."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    project = store.create("busy", {})
    with store.sessions.begin() as session:
        session.merge(project).status = "PROCESSING"
    store.close()
    args = cli(tmp_path, "render", str(timeline), "--project", project.id, "--renderer", "fake")
    assert main(args) == EXIT_FAILED
    assert "409 Conflict" in capsys.readouterr().err


def test_a_failed_render_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render that raises leaves the project FAILED and exits 1 with the error."""
    monkeypatch.setattr(
        _commands, "_renderer", lambda name: FakeRenderer(frames=4, fail_at_frame=2)
    )
    path = tmp_path / "t.json"
    path.write_text(json.dumps(TIMELINE))
    assert main(cli(tmp_path, "render", str(path), "--renderer", "fake")) == EXIT_FAILED
    captured = capsys.readouterr()
    assert "FakeRenderer failed at frame 2" in captured.out
    assert "PROCESSING -> FAILED" in captured.out


def test_ctrl_c_stops_the_render_and_fails_the_project(
    tmp_path: Path,
    timeline: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C during render stops it at the next frame: exit 130, FAILED, no file left."""
    endless = FakeRenderer(frames=10**7, frame_delay=0.001)
    monkeypatch.setattr(_commands, "_renderer", lambda name: endless)

    def interrupted(console: object, job: RenderJob[object], label: str) -> Status:
        while job.progress.phase is not Phase.RENDERING:
            time.sleep(0.01)
        raise KeyboardInterrupt

    monkeypatch.setattr(_commands, "_show_progress", interrupted)
    assert main(cli(tmp_path, "render", str(timeline), "--renderer", "fake")) == 130
    captured = capsys.readouterr()
    assert "PROCESSING -> FAILED" in captured.out
    assert "interrupted" in captured.err
    assert [p for p in (tmp_path / "m").rglob("*") if p.is_file()] == []
    assert main(cli(tmp_path, "status")) == EXIT_OK
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["status", "recover"])
def test_reading_commands_do_not_create_a_database(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """status and recover on a missing SQLite file exit 2 and say how to create one."""
    assert main(cli(tmp_path, command)) == EXIT_USAGE
    assert "renderstate demo" in capsys.readouterr().err
    assert not (tmp_path / "db.sqlite3").exists()
