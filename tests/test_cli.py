"""The renderstate command line: the demo end to end, each command, and its error paths."""

from __future__ import annotations

import importlib.abc
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import renderstate
import renderstate.cli
from adapters import databases
from renderstate import ProjectLifecycle, RenderJob, Status, to_dot, to_mermaid
from renderstate.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _progress, _render, build_parser, main
from renderstate.cli._store import Project, Store
from renderstate.ledger import AttemptState, Ledger
from renderstate.rendering.timeline import parse_timeline, sample_timeline
from renderstate.runner import Phase
from renderstate.testing import FakeRenderer

TIMELINE = {
    "width": 160,
    "height": 90,
    "fps": 12,
    "scenes": [{"duration": 1, "title": "hello"}],
}


def db_url(tmp_path: Path) -> str:
    """The test database's URL: an SQLite file in ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'db.sqlite3'}"


def cli(tmp_path: Path, *args: str) -> list[str]:
    return [*args, "--db", db_url(tmp_path), "--media", str(tmp_path / "m")]


@pytest.fixture
def timeline(tmp_path: Path) -> Path:
    path = tmp_path / "timeline.json"
    path.write_text(json.dumps(TIMELINE))
    return path


def render_fake(tmp_path: Path, timeline: Path, *options: str) -> int:
    """`renderstate render TIMELINE *options --renderer fake` on the test database."""
    return main([*cli(tmp_path, "render", str(timeline), *options), "--renderer", "fake"])


def stored(tmp_path: Path, key: str) -> Project:
    """The project's row as it is in the test database now."""
    store = Store(db_url(tmp_path), create=False)
    try:
        return store.get(key)
    finally:
        store.close()


def only_project(tmp_path: Path) -> Project:
    """The one project in the test database (a render created it)."""
    store = Store(db_url(tmp_path), create=False)
    try:
        (project,) = store.all()
    finally:
        store.close()
    return project


def timeline_of(row: Project) -> tuple[object, ...]:
    """The timeline a row stores, with the size and rate stored beside it."""
    return (row.timeline, row.resolution_width, row.resolution_height, row.framerate)


STORED_TIMELINE = (TIMELINE, 160, 90, 12)
"""``timeline_of`` a row that stores ``TIMELINE``."""


def with_status(tmp_path: Path, status: str, timeline: dict[str, Any] | None = None) -> str:
    """Create a project, write ``status`` straight into its row, and return its id."""
    store = Store(db_url(tmp_path))
    project = store.create("odd", timeline or {})
    with store.sessions.begin() as session:
        session.merge(project).status = status
    store.close()
    return project.id


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


@pytest.fixture
def failing_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--renderer fake` renders 4 frames and raises at frame 2."""
    monkeypatch.setattr(
        _render, "make_renderer", lambda name: FakeRenderer(frames=4, fail_at_frame=2)
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
    assert render_fake(tmp_path, timeline) == EXIT_OK
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
    assert render_fake(tmp_path, timeline, "--project", key) == EXIT_OK
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
    key = with_status(tmp_path, "PROCESSING")
    assert main(cli(tmp_path, "recover")) == EXIT_OK
    assert "PROCESSING -> FAILED" in capsys.readouterr().out
    assert main(cli(tmp_path, "status", key)) == EXIT_OK
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


def test_recover_spares_a_render_live_in_another_worker(tmp_path: Path) -> None:
    """`renderstate recover` fails only a project whose attempt's lease expired: a render
    another worker is running (its lease live) stays PROCESSING with its attempt untouched."""
    store = Store(db_url(tmp_path))
    try:
        live, dead = store.create("live", {}), store.create("dead", {})
        _, live_attempt = store.ledger.start(ProjectLifecycle(live, store.adapter))
        begun = store.ledger.begin(live_attempt, worker="other-host:4242")
        an_hour_ago = Ledger(store.ledger.store, clock=lambda: time.time() - 3600)
        _, dead_attempt = an_hour_ago.start(ProjectLifecycle(dead, store.adapter))
        an_hour_ago.begin(dead_attempt, worker="other-host:4343")
    finally:
        store.close()
    done = run_cli(*cli(tmp_path, "recover"), cwd=tmp_path)
    assert done.returncode == EXIT_OK, done.stderr
    assert f"{dead.id}: PROCESSING -> FAILED" in done.stdout
    assert live.id not in done.stdout
    store = Store(db_url(tmp_path))
    try:
        assert store.get(live.id).status == "PROCESSING"
        assert store.get(dead.id).status == "FAILED"
        still = store.ledger.get(live_attempt.id)
        assert still is not None
        assert (still.state, still.worker, still.error) == (
            AttemptState.RENDERING,
            "other-host:4242",
            None,
        )
        assert still.lease_expires_at == begun.lease_expires_at
        ended = store.ledger.get(dead_attempt.id)
        assert ended is not None
        assert ended.state is AttemptState.INTERRUPTED
    finally:
        store.close()


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
    Store(db_url(tmp_path)).close()
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
    assert render_fake(tmp_path, bad) == EXIT_USAGE
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
    key = with_status(tmp_path, "PROCESSING")
    assert render_fake(tmp_path, timeline, "--project", key) == EXIT_FAILED
    assert "409 Conflict" in capsys.readouterr().err
    assert stored(tmp_path, key).timeline == {}  # the refused render changed nothing


@pytest.mark.usefixtures("failing_renderer")
def test_a_failed_render_exits_1(
    tmp_path: Path, timeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A render that raises leaves the project FAILED and exits 1 with the error."""
    assert render_fake(tmp_path, timeline) == EXIT_FAILED
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
    monkeypatch.setattr(_render, "make_renderer", lambda name: endless)

    def interrupted(console: object, job: RenderJob[object], label: str) -> Status:
        while job.progress.phase is not Phase.RENDERING:
            time.sleep(0.01)
        raise KeyboardInterrupt

    monkeypatch.setattr(_progress, "show_progress", interrupted)
    assert render_fake(tmp_path, timeline) == 130
    captured = capsys.readouterr()
    assert "PROCESSING -> FAILED" in captured.out
    assert "interrupted" in captured.err
    assert [p for p in (tmp_path / "m").rglob("*") if p.is_file()] == []
    assert main(cli(tmp_path, "status", only_project(tmp_path).id)) == EXIT_OK
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "error        RenderCancelledError: " in out, out
    assert "cancelled: cancelled with Ctrl-C." in out, out


@pytest.mark.parametrize("command", ["status", "recover"])
def test_reading_commands_do_not_create_a_database(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """status and recover on a missing SQLite file exit 2 and say how to create one."""
    assert main(cli(tmp_path, command)) == EXIT_USAGE
    assert "renderstate demo" in capsys.readouterr().err
    assert not (tmp_path / "db.sqlite3").exists()


TOML_TIMELINE = """\
width = 160
height = 90
fps = 12

[[scenes]]
duration = 1
title = "hello"
"""


def test_status_lists_a_row_with_an_unknown_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """status lists a row holding an unknown status, marked as such, and warns on stderr."""
    monkeypatch.setenv("COLUMNS", "200")
    with_status(tmp_path, "ARCHIVED")
    assert main(cli(tmp_path, "status")) == EXIT_OK
    captured = capsys.readouterr()
    assert "'ARCHIVED' (unknown status)" in captured.out
    assert "1 project(s) have a status that is not one of" in captured.err
    assert "renderstate status KEY" in captured.err


def test_status_of_a_project_with_an_unknown_status_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status KEY shows the row, then the UnknownStatusError message and how to fix it; exit 1."""
    key = with_status(tmp_path, "ARCHIVED")
    assert main(cli(tmp_path, "status", key)) == EXIT_FAILED
    captured = capsys.readouterr()
    assert key in captured.out
    assert "'ARCHIVED' (unknown status)" in captured.out
    assert "status='ARCHIVED', which is not a known status" in captured.err
    assert "set this row's status to one of them" in captured.err
    assert "Traceback" not in captured.err


def test_render_and_recover_leave_a_row_with_an_unknown_status_alone(
    tmp_path: Path, timeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """render --project refuses an unknown status with exit 1; recover skips it; row unchanged."""
    key = with_status(tmp_path, "ARCHIVED")
    assert render_fake(tmp_path, timeline, "--project", key) == EXIT_FAILED
    assert "status='ARCHIVED', which is not a known status" in capsys.readouterr().err
    assert main(cli(tmp_path, "recover")) == EXIT_OK
    assert "No project was left PROCESSING" in capsys.readouterr().out
    row = stored(tmp_path, key)
    assert (row.status, row.timeline, row.output_path) == ("ARCHIVED", {}, None)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("name", ["t.json", "t.JSON", "t.toml", "t.Toml"])
def test_render_stores_the_files_timeline_on_the_new_project(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """render of a JSON or TOML file, any case of extension, stores its timeline as JSON data."""
    path = tmp_path / name
    is_toml = name.lower().endswith(".toml")
    path.write_text(TOML_TIMELINE if is_toml else json.dumps(TIMELINE), encoding="utf-8")
    assert render_fake(tmp_path, path) == EXIT_OK
    key = re.search(r"Created project (\S+)", capsys.readouterr().out)
    assert key is not None
    assert timeline_of(stored(tmp_path, key[1])) == STORED_TIMELINE


def test_render_project_replaces_the_stored_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """render --project stores the file's timeline (and its size and rate) on the project."""
    key = with_status(tmp_path, "COMPLETED", {"scenes": [{"duration": 9, "title": "old"}]})
    path = tmp_path / "new.toml"
    path.write_text(TOML_TIMELINE, encoding="utf-8")
    assert render_fake(tmp_path, path, "--project", key) == EXIT_OK
    assert "COMPLETED -> PROCESSING" in capsys.readouterr().out
    row = stored(tmp_path, key)
    assert timeline_of(row) == STORED_TIMELINE
    assert row.status == "COMPLETED"


# ------------------------------------------------------------------ what a new user hit


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the installed version and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"renderstate {renderstate.__version__}\n"


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        (["status"], False),
        (["-v", "status"], True),
        (["status", "-v"], True),
        (["render", "--verbose", "t.json"], True),
        (["-v", "recover", "-v"], True),
    ],
)
def test_verbose_before_or_after_the_command(argv: list[str], verbose: bool) -> None:
    """-v works before the command and after it."""
    assert build_parser().parse_args(argv).verbose is verbose


def test_a_directory_as_timeline_says_it_is_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory given as TIMELINE is named as a directory, not reported missing."""
    assert main(cli(tmp_path, "render", str(tmp_path))) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "is a directory" in err
    assert "does not exist" not in err
    assert not (tmp_path / "db.sqlite3").exists()


def test_title_with_project_is_refused(
    tmp_path: Path, timeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--title with --project would be ignored: it is refused and nothing changes."""
    key = with_status(tmp_path, "COMPLETED")
    assert render_fake(tmp_path, timeline, "--project", key, "--title", "New") == EXIT_USAGE
    assert "--title names a new project" in capsys.readouterr().err
    row = stored(tmp_path, key)
    assert (row.title, row.status, row.timeline) == ("odd", "COMPLETED", {})


def test_sample_prints_the_sample_timeline_and_render_sample_renders_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`renderstate sample` prints the docs' timeline; `render --sample` renders it."""
    assert main(["sample"]) == EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert parse_timeline(printed) == sample_timeline()
    assert main([*cli(tmp_path, "render", "--sample"), "--renderer", "fake"]) == EXIT_OK
    project = only_project(tmp_path)
    assert (project.status, project.timeline) == ("COMPLETED", printed)
    with pytest.raises(SystemExit):
        main(cli(tmp_path, "render", "--sample", "t.json"))
    assert "TIMELINE file" in capsys.readouterr().err


def test_status_piped_keeps_each_project_on_one_greppable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not on a terminal, status prints tab-separated lines with whole ids."""
    monkeypatch.setenv("COLUMNS", "40")
    keys = [with_status(tmp_path, s) for s in ("FAILED", "COMPLETED")]
    assert main(cli(tmp_path, "status")) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["id", "status", "title", "output_path", "updated"]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert set(rows) == set(keys)
    assert [rows[k][1] for k in keys] == ["FAILED", "COMPLETED"]


@pytest.mark.usefixtures("failing_renderer")
def test_status_of_a_failed_project_says_why_and_the_error_is_printed_once(
    tmp_path: Path, timeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed render prints its error once; `status KEY` shows it later."""
    assert render_fake(tmp_path, timeline) == EXIT_FAILED
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("FakeRenderer failed at frame 2") == 1
    project = only_project(tmp_path)
    assert main(cli(tmp_path, "status", project.id[:8])) == EXIT_OK
    out = capsys.readouterr().out
    assert "error        RuntimeError: FakeRenderer failed at frame 2" in out, out


def test_ctrl_c_before_the_render_starts_says_the_project_is_still_draft(
    tmp_path: Path,
    timeline: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C just after "Created project" reports it DRAFT (which it is), without a traceback."""

    def interrupted(name: str) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(_render, "make_renderer", interrupted)
    assert render_fake(tmp_path, timeline) == 130
    captured = capsys.readouterr()
    project = only_project(tmp_path)
    assert project.status == "DRAFT"
    assert f"project {project.id} is DRAFT" in captured.err
    assert "FAILED" not in captured.err
    assert "Traceback" not in captured.err


def test_ctrl_c_while_the_command_loads_is_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the command's libraries import exits 130 with one line."""

    class Interrupting(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, *args: object) -> None:
            if name == "renderstate.cli._commands":
                raise KeyboardInterrupt

    monkeypatch.delattr(renderstate.cli, "_commands", raising=False)
    monkeypatch.delitem(sys.modules, "renderstate.cli._commands", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert main(["status"]) == 130
    assert capsys.readouterr().err == (
        "renderstate: interrupted before the command started; nothing changed\n"
    )


@pytest.mark.postgres
def test_a_postgresql_url_without_a_driver_uses_the_installed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """postgresql:// (SQLAlchemy's psycopg2) works with psycopg 3, the one installed."""
    try:
        target = databases.create("postgres", tmp_path, "cli")
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    try:
        url = f"postgresql://{target.user}@127.0.0.1:5432/{target.name}"
        assert main(["status", "--db", url, "--media", str(tmp_path)]) == EXIT_OK
        assert "No projects" in capsys.readouterr().out
    finally:
        databases.drop(target)


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("postgresql+psycopg2://127.0.0.1/test", "pip install 'psycopg[binary]'"),
        # Not mysqldb: the Django tests install PyMySQL under that name in this process.
        ("mysql+mysqlconnector://root@127.0.0.1/test", "pip install 'pymysql'"),
    ],
)
def test_a_missing_database_driver_says_what_to_install(
    url: str, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A URL whose driver is not installed exits 2 naming the package and the URL to write."""
    assert main(["status", "--db", url]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert hint in err
    assert url.split("+", maxsplit=1)[0] + "+" in err
