"""Every program in examples/ runs, as a user would run it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
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


ORIGIN_APP = EXAMPLES / "adopting_threads"
ORIGIN_CHILD = Path(__file__).with_name("adopting_threads_child.py")


def _origin_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def test_the_origin_apps_own_suite_passes_on_renderstate(tmp_path: Path) -> None:
    """examples/adopting_threads (Django + DRF + moviepy, its own thread task manager,
    swapped onto renderstate): its own test suite, run as its team runs it, is green."""
    pytest.importorskip("rest_framework", reason="needs the drf extra")
    run = subprocess.run(
        [sys.executable, str(ORIGIN_APP / "manage.py"), "test", "studio"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_origin_env(),
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "Ran 5 tests" in run.stderr
    assert run.stderr.rstrip().splitlines()[-2:] == [
        "OK",
        "Destroying test database for alias 'default'...",
    ]


def test_the_origin_app_cancels_a_render_from_its_api(tmp_path: Path) -> None:
    """A re-render cancelled mid-frames through the app's cancel endpoint (real threads, a
    real moviepy render): FAILED as cancelled, the previous video byte-identical, nothing
    beside it (no temporary file, no moviepy soundtrack scratch file)."""
    pytest.importorskip("rest_framework", reason="needs the drf extra")
    run = subprocess.run(
        [sys.executable, str(ORIGIN_CHILD), "cancel"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_origin_env(),
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.splitlines()[-1])
    assert found["status"]["status"] == "FAILED"
    assert found["status"]["error"].startswith("RenderCancelledError: ")
    assert found["same"] is True
    assert found["listing"] == ["final.mp4"]


def test_the_origin_app_recovers_a_sigkilled_render(tmp_path: Path) -> None:
    """The server process is SIGKILLed while its task manager's thread re-renders (moviepy
    writing frames); `manage.py recover_renders` right after: FAILED, the previous video
    byte-identical, nothing beside it."""
    pytest.importorskip("rest_framework", reason="needs the drf extra")
    child = subprocess.Popen(
        [sys.executable, str(ORIGIN_CHILD), "kill"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_origin_env(),
    )
    try:
        assert child.stdout is not None
        first = json.loads(child.stdout.readline())
        assert child.stdout.readline() == "rendering\n", child.stderr.read() if child.stderr else ""
    finally:
        child.kill()
        child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    folder = tmp_path / "media" / "projects" / str(first["pk"])
    assert len(list(folder.iterdir())) == 2  # the video and the dead render's private directory
    recovered = subprocess.run(
        [sys.executable, str(ORIGIN_APP / "manage.py"), "recover_renders"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_origin_env(),
        timeout=120,
        check=False,
    )
    assert recovered.returncode == 0, recovered.stderr
    assert "recovered 1 render(s)" in recovered.stdout
    with sqlite3.connect(tmp_path / "origin.sqlite3") as db:
        (status,) = db.execute("SELECT status FROM studio_project WHERE id = ?", (first["pk"],))
    assert status == ("FAILED",)
    assert sorted(p.name for p in folder.iterdir()) == ["final.mp4"]
    assert hashlib.sha256((folder / "final.mp4").read_bytes()).hexdigest() == first["sha"]


TRANSCODER_APP = EXAMPLES / "adopting_celery_hls"
TRANSCODER_CHILD = Path(__file__).with_name("adopting_celery_child.py")


def test_the_transcoding_apps_own_suite_passes_on_renderstate(tmp_path: Path) -> None:
    """examples/adopting_celery_hls (Django + Celery, five statuses, an HLS directory, no
    output column) swapped onto renderstate: its own suite, with its test settings'
    task_always_eager and no mock, no broker, is green."""
    pytest.importorskip("celery", reason="needs the celery extra")
    run = subprocess.run(
        [
            sys.executable,
            str(TRANSCODER_APP / "manage.py"),
            "test",
            "videos",
            "--settings",
            "transcoder.settings_test",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**_origin_env(), "TRANSCODER_BROKER": "redis://127.0.0.1:1/0"},  # never used
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "Ran 5 tests" in run.stderr
    assert "\nOK\n" in run.stderr


def _transcoder(tmp_path: Path, *args: str) -> dict[str, object]:
    run = subprocess.run(
        [sys.executable, str(TRANSCODER_CHILD), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_transcoder_env(tmp_path),
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    found: dict[str, object] = json.loads(run.stdout.splitlines()[-1])
    return found


def _transcoder_env(tmp_path: Path) -> dict[str, str]:
    env = _origin_env()
    env["PYTHONPATH"] = os.pathsep.join([str(TRANSCODER_APP), env["PYTHONPATH"]])
    env["TRANSCODER_BROKER"] = "redis://127.0.0.1:6379/0"
    env["TRANSCODER_QUEUE"] = f"transcoder-test-{tmp_path.name}-{os.getpid()}"
    return env


def test_the_transcoding_app_recovers_a_sigkilled_worker(tmp_path: Path) -> None:
    """A Celery worker (prefork, Redis) is SIGKILLed with its ffmpeg while it transcodes a
    video again; `manage.py recover_transcodes` right after: ERROR, the previous HLS
    directory file for file and byte for byte, nothing beside it."""
    pytest.importorskip("celery", reason="needs the celery extra")
    redis = pytest.importorskip("redis", reason="needs the celery extra's Redis client")
    try:
        redis.Redis(socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable: {exc}")
    env = _transcoder_env(tmp_path)
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "transcoder",
                "worker",
                "--queues",
                env["TRANSCODER_QUEUE"],
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "--loglevel",
                "WARNING",
            ],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # SIGKILL takes the worker, its pool child and ffmpeg
        )
    try:
        first = _transcoder(tmp_path, "first")
        pk = str(first["id"])
        running = _transcoder(tmp_path, "again", pk)
        assert running["status"] == "QUEUED", running  # QUEUED is the literal written
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=60)
    folder = tmp_path / "media" / "videos" / pk
    assert len(list(folder.iterdir())) == 2  # the output and the dead worker's staging
    recovered = subprocess.run(
        [sys.executable, str(TRANSCODER_APP / "manage.py"), "recover_transcodes"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert recovered.returncode == 0, recovered.stderr
    assert "recovered 1 transcode(s)" in recovered.stdout
    state = _transcoder(tmp_path, "state", pk)
    assert state["status"] == "ERROR"
    assert "not rendered to the end" in str(state["error"]), state  # error_field="error"
    assert state["task_id"], state  # task_id_field="task_id": the Celery task's id
    assert state["tree"] == first["tree"]
    assert state["listing"] == ["hls"]
