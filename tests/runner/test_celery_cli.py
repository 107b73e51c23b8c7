"""`renderstate worker` renders what `renderstate render --broker` sends, on the command
line's embedded database; both are real processes, Redis the broker."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from renderstate import Status
from renderstate.cli._store import Store
from renderstate.ledger import AttemptState
from renderstate.ledger._identity import parse_worker
from runner.celery_workers import REDIS_URL, Workers, new_settings, redis_reachable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not redis_reachable(), reason="needs Redis at 127.0.0.1:6379"),
]


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"renderstate-cli-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{name}*"))
    if keys:
        client.delete(*keys)


def test_a_worker_started_from_the_command_line_renders_a_sent_timeline(
    tmp_path: Path, queue: str
) -> None:
    """`renderstate render --broker` exits 0 once the worker has COMPLETED the project."""
    db = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    media = tmp_path / "media"
    common = ["--broker", REDIS_URL, "--db", db, "--media", str(media), "--queue", queue]
    workers = Workers(new_settings(tmp_path), tmp_path)
    command = [
        sys.executable,
        "-m",
        "renderstate",
        "worker",
        *common,
        "--renderer",
        "fake",
        "--pool",
        "solo",
        "--hostname",
        f"{queue}@%h",
    ]
    try:
        worker = workers.start("cli", command=command)
        timeline = tmp_path / "clip.json"
        timeline.write_text(json.dumps({"width": 64, "height": 36, "scenes": [{"duration": 1}]}))
        sent = subprocess.run(
            [sys.executable, "-m", "renderstate", "render", str(timeline), *common],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr + worker.output()
        assert "COMPLETED" in sent.stdout
        store = Store(db)
        try:
            (project,) = store.all()
            assert project.status == Status.COMPLETED.value
            attempt = store.current_attempt(project)
            assert attempt is not None
            assert attempt.state is AttemptState.COMPLETED
            assert attempt.worker is not None
            assert parse_worker(attempt.worker).pid == worker.pid
            final = media / "projects" / project.id / "final.mp4"
            assert final.read_bytes().startswith(b"FAKE VIDEO")
        finally:
            store.close()
    finally:
        workers.stop_all()


def test_the_worker_command_refuses_a_bad_concurrency(tmp_path: Path) -> None:
    """A usage error exits 2 and names the option."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "renderstate",
            "worker",
            "--broker",
            REDIS_URL,
            "--db",
            f"sqlite:///{tmp_path / 'x.sqlite3'}",
            "--concurrency",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--concurrency must be at least 1" in done.stderr


def test_the_worker_command_refuses_a_bad_grace(tmp_path: Path) -> None:
    """A negative or non-numeric --grace exits 2, names the option and how to give it."""
    for bad in ("-1", "soon"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "renderstate",
                "worker",
                "--broker",
                REDIS_URL,
                "--db",
                f"sqlite:///{tmp_path / 'x.sqlite3'}",
                "--grace",
                bad,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert "--grace needs a number of seconds, at least 0" in done.stderr
