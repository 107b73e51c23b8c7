"""The ledger across real processes, on a SQLite file, PostgreSQL and MariaDB: leases keep
live renders safe from a recovery loop, a SIGKILLed render is recovered within a lease, and
readers in other processes see one attempt's progress at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from renderstate import RenderRunner, Status
from renderstate.cli._store import Project, Store
from renderstate.ledger import AttemptState, Ledger
from renderstate.runner.progress import progress_of
from renderstate.testing import FakeRenderer

from .cli_stores import db_targets, digest, store, url

__all__ = ["db_targets", "digest", "store", "url"]

CHILD = Path(__file__).with_name("ledger_child.py")

pytestmark = pytest.mark.slow


def child(*arguments: object, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *map(str, arguments)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )


def test_recovery_loop_never_touches_a_live_render_and_recovers_a_killed_one(
    tmp_path: Path, url: str, store: Store
) -> None:
    """A render longer than three leases, with another process recovering every 100 ms,
    completes untouched; a re-render SIGKILLed mid-way is recovered by the first recovery
    after its lease (1 s from its last heartbeat) expires, its partial file removed and the
    previous video byte-identical."""
    media = tmp_path / "media"
    project = store.create("leases", {})
    recovering = child("recover", url, media, 1.0, 5.0)
    time.sleep(0.5)  # the loop is running before the render starts
    rendering = child("render", url, media, project.id, 1.0, 0.2, 70, 0.05)
    out, err = rendering.communicate(timeout=120)
    assert rendering.returncode == 0, err
    assert "status COMPLETED" in out, out + err
    report, err = recovering.communicate(timeout=120)
    assert recovering.returncode == 0, err
    loop = json.loads(report)
    assert loop["calls"] >= 20
    assert project.id not in loop["recovered"], loop
    final = media / "projects" / project.id / "final.mp4"
    before = digest(final)
    assert store.get(project.id).status == "COMPLETED"

    killed = child("render", url, media, project.id, 1.0, 0.2, 100_000, 0.01)
    assert killed.stdout is not None
    line = killed.stdout.readline()
    assert line.startswith("rendering"), line + (killed.stderr.read() if killed.stderr else "")
    partial = Path(line.split(" ", 1)[1].strip())
    assert partial.exists()
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=30)  # reaps it and closes its pipes

    ledger = Ledger(store.ledger.store, lease=1.0, progress_interval=0.2)
    runner = RenderRunner(
        store.adapter, FakeRenderer(), media_root=media, ledger=ledger, loader=store.loader
    )
    dead = store.current_attempt(store.get(project.id))
    assert dead is not None
    assert dead.state is AttemptState.RENDERING
    assert dead.lease_expires_at is not None
    # Its last renewal set the lease; once that moment has passed, one recovery call fails it.
    while time.time() <= dead.lease_expires_at:
        assert store.get(project.id).status == "PROCESSING"
        time.sleep(0.05)
    recovered = [r.project_key for r in runner.recover_interrupted()]
    assert recovered == [project.id]
    assert store.get(project.id).status == "FAILED"
    assert digest(final) == before
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    current = store.current_attempt(store.get(project.id))
    assert current is not None
    assert current.state is AttemptState.INTERRUPTED
    runner.shutdown()


def test_readers_in_four_processes_see_one_attempt_at_a_time(
    tmp_path: Path, url: str, store: Store
) -> None:
    """Four processes poll one project while a fifth renders it twice: every reader sees
    each attempt advance, fractions within [0, 1] and never decreasing within an attempt,
    and the re-render start again from 0."""
    media = tmp_path / "media"
    project = store.create("readers", {})
    readers = [child("poll", url, project.id, 14.0) for _ in range(4)]
    time.sleep(1.0)
    rendering = child("render", url, media, project.id, 5.0, 0.1, 40, 0.05, 2, 1.0)
    out, err = rendering.communicate(timeout=120)
    assert rendering.returncode == 0, err
    assert out.count("status COMPLETED") == 2, out + err
    attempts = [a.id for a in store.ledger.history(Project.__tablename__, project.id)]
    assert len(attempts) == 2
    second = max(attempts)
    for reader in readers:
        report, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
        seen = json.loads(report)
        by_attempt: dict[int, list[float]] = defaultdict(list)
        order: list[int] = []
        for attempt_id, _state, _phase, fraction in seen:
            assert 0.0 <= fraction <= 1.0
            by_attempt[attempt_id].append(fraction)
            if not order or order[-1] != attempt_id:
                order.append(attempt_id)
        assert order == sorted(attempts), order  # one attempt at a time, never back
        for fractions in by_attempt.values():
            assert fractions == sorted(fractions), fractions
            assert len(set(fractions)) >= 3, fractions  # it visibly advanced
        assert by_attempt[second][0] == 0.0, by_attempt[second][:5]
        assert by_attempt[second][-1] == 1.0, by_attempt[second][-5:]
    assert store.get(project.id).status == Status.COMPLETED.value


def test_a_render_killed_on_this_machine_reads_as_stale_at_once(
    tmp_path: Path, url: str, store: Store
) -> None:
    """A render process of this machine SIGKILLed with most of its 60 s lease left: a
    reader in another process (this one) sees its last figures as not live at once, in
    ``Progress`` and in the status body, as recovery sees the process gone."""
    from renderstate.web import status_body  # noqa: PLC0415 - the web layer, here only

    media = tmp_path / "media"
    project = store.create("killed here", {})
    lease = 60.0
    killed = child("render", url, media, project.id, lease, 0.2, 100_000, 0.01)
    assert killed.stdout is not None
    line = killed.stdout.readline()
    assert line.startswith("rendering"), line + (killed.stderr.read() if killed.stderr else "")
    ledger = Ledger(store.ledger.store, lease=lease, progress_interval=0.2)
    runner = RenderRunner(
        store.adapter, FakeRenderer(), media_root=media, ledger=ledger, loader=store.loader
    )
    try:
        row = store.get(project.id)
        alive = runner.progress(row)
        assert alive is not None
        assert alive.live, "its process renders: live"
        os.kill(killed.pid, signal.SIGKILL)
        killed.communicate(timeout=30)
        dead = store.current_attempt(row)
        assert dead is not None
        assert dead.state is AttemptState.RENDERING
        assert dead.lease_expires_at is not None
        assert dead.lease_expires_at > time.time() + 30, "most of its lease is left"
        stale = runner.progress(row)
        assert stale is not None
        assert not stale.live
        body = status_body(row, runner)
        assert body["progress"] is not None
        assert body["progress"]["live"] is False
        # Recovery sees the same death at once, and fails it.
        assert [r.project_key for r in runner.recover_interrupted()] == [project.id]
    finally:
        runner.shutdown()


def test_a_killed_render_s_last_progress_reads_as_stale_once_its_lease_runs_out(
    tmp_path: Path, url: str, store: Store
) -> None:
    """A restarted server reading a SIGKILLed render's attempt: once the lease it renewed
    has run out, ``live`` is false with their age growing, in ``Progress`` and in the
    status body, until recovery fails it."""
    from renderstate.web import status_body  # noqa: PLC0415 - the web layer, here only

    media = tmp_path / "media"
    project = store.create("stale", {})
    lease = 1.5
    killed = child("render", url, media, project.id, lease, 0.2, 100_000, 0.01)
    assert killed.stdout is not None
    line = killed.stdout.readline()
    assert line.startswith("rendering"), line + (killed.stderr.read() if killed.stderr else "")
    time.sleep(0.5)  # a few heartbeats' worth of progress
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=30)

    ledger = Ledger(store.ledger.store, lease=lease, progress_interval=0.2)
    runner = RenderRunner(
        store.adapter, FakeRenderer(), media_root=media, ledger=ledger, loader=store.loader
    )
    try:
        dead = store.current_attempt(store.get(project.id))
        assert dead is not None
        assert dead.lease_expires_at is not None
        row = store.get(project.id)
        while time.time() <= dead.lease_expires_at + 0.5:
            time.sleep(0.05)
        stale = runner.progress(row)
        assert stale is not None
        assert not stale.live
        assert stale.age >= lease + 0.5
        assert stale.fraction > 0.0, "the dead render's last figure is still shown"
        body = status_body(row, runner)
        assert body["progress"] is not None
        assert body["progress"]["live"] is False
        assert body["progress"]["age_seconds"] >= lease + 0.5
        assert [r.project_key for r in runner.recover_interrupted()] == [project.id]
        assert status_body(store.get(project.id), runner)["progress"] is None
    finally:
        runner.shutdown()


def test_another_process_reads_the_render_s_label(tmp_path: Path, url: str, store: Store) -> None:
    """A render in another process describes its step (an accented, emoji, 300-character
    label): this process reads it from the ledger, in ``Progress.label`` and in the status
    body's ``label``, cut to the column's 255 characters as the renderer's own process
    keeps it; none once the render has ended."""
    from renderstate.web import status_body  # noqa: PLC0415 - the web layer, here only

    media = tmp_path / "media"
    project = store.create("labelled", {})
    given = "Encodage de la vid\u00e9o \U0001f3ac " + "x" * 300
    kept = given[:254] + "\u2026"
    rendering = child(
        "render", url, media, project.id, 30.0, 0.1, 400, 0.02, env={"RENDER_LABEL": given}
    )
    ledger = Ledger(store.ledger.store, lease=30.0, progress_interval=0.1)
    runner = RenderRunner(
        store.adapter, FakeRenderer(), media_root=media, ledger=ledger, loader=store.loader
    )
    try:
        assert rendering.stdout is not None
        line = rendering.stdout.readline()
        assert line.startswith("rendering"), line + (
            rendering.stderr.read() if rendering.stderr else ""
        )
        deadline = time.monotonic() + 60
        seen = runner.progress(store.get(project.id))
        while (seen is None or seen.label is None) and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = runner.progress(store.get(project.id))
        assert seen is not None
        assert seen.live
        assert seen.label == kept
        body = status_body(store.get(project.id), runner)
        assert body["progress"] is not None
        assert body["progress"]["label"] == kept
        out, err = rendering.communicate(timeout=120)
        assert "status COMPLETED" in out, err
        ended = store.current_attempt(store.get(project.id))
        assert ended is not None
        assert ended.state is AttemptState.COMPLETED
        assert progress_of(ended, time.time(), 30.0).label is None
    finally:
        rendering.kill()
        runner.shutdown()
