"""Prompt takeover and warm shutdown with real `celery worker` processes, on Redis (set as
docs/celery.md recommends: a visibility timeout of two hours, so the broker hands nothing
back during a test) and on RabbitMQ: a worker SIGKILLed or frozen mid-render has its render
resumed by another worker's sweep within two leases, measured on the ledger's own
timestamps; a worker told to stop (SIGTERM) hands its render back and another completes it.
The web process runs nothing but its submit."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from kombu import Connection

from renderstate import Status
from renderstate.cli._store import Project
from renderstate.cli._worker import build_app as cli_app
from renderstate.ledger import Attempt, AttemptState
from renderstate.ledger._identity import parse_worker
from renderstate.runner.celery import CeleryExecutor
from runner.celery_app import Settings
from runner.celery_workers import (
    REDIS_URL,
    Worker,
    Workers,
    new_settings,
    redis_reachable,
    workers_for,
)
from runner.test_celery import (
    RABBITMQ_URL,
    Watch,
    Web,
    complete_fake_video,
    digest,
    rabbitmq_reachable,
    web_for,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not redis_reachable(), reason="needs Redis at 127.0.0.1:6379"),
]

LEASE = 2.0
FRAMES = 120


@pytest.fixture(params=["redis", "rabbitmq"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A long render (6 s), a 2 s lease, and the broker as docs/celery.md sets it."""
    made = new_settings(
        tmp_path, frames=FRAMES, frame_delay=0.05, lease=LEASE, visibility_timeout=7200.0
    )
    if request.param == "redis":
        yield made
        return
    if not rabbitmq_reachable():
        pytest.skip("needs RabbitMQ at 127.0.0.1:5672")
    yield replace(made, broker=RABBITMQ_URL, backend=REDIS_URL)
    with Connection(RABBITMQ_URL) as connection:
        channel = connection.default_channel
        channel.queue_delete(made.queue)
        channel.exchange_delete(made.queue)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    with workers_for(settings, tmp_path / "logs") as started:
        yield started


class Statuses:
    """Samples the project's status from its own thread: a FAILED is never missed for long."""

    def __init__(self, web: Web, project: Project) -> None:
        self.web = web
        self.project = project
        self.seen: set[Status] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Statuses:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.add(self.web.status(self.project))
            time.sleep(0.01)


def _rendered_with_a_previous_video(web: Web) -> tuple[Project, Path, str]:
    project = web.project()
    web.runner.submit(project)
    assert web.wait_ended(project, timeout=60) is Status.COMPLETED, web.attempts(project)
    final = web.runner.file_path(project)
    return project, final, digest(final)


def _owner(web: Web, attempt_id: int, workers: list[Worker]) -> tuple[Worker, Worker]:
    """The worker rendering the attempt (well under way), and the other one."""
    seen: list[Attempt] = []

    def under_way() -> bool:
        attempt = web.ledger.get(attempt_id)
        if attempt is None or attempt.worker is None or attempt.done <= 10:
            return False
        seen.append(attempt)
        return True

    web.wait_for(under_way, 30, "the render to be well under way")
    pid = parse_worker(seen[-1].worker or "").pid
    (owner,) = [w for w in workers if w.pid == pid]
    (other,) = [w for w in workers if w.pid != pid]
    return owner, other


def _the_takeover(
    web: Web, project: Project, job_attempt: int, rescuer: Worker, since: float
) -> Attempt:
    """The re-render's one attempt, completed by ``rescuer`` within two leases of ``since``."""
    attempts = web.attempts(project)
    assert [a.state for a in attempts] == [AttemptState.COMPLETED, AttemptState.COMPLETED]
    redone = attempts[0]
    assert redone.id == job_attempt
    assert redone.worker is not None
    assert parse_worker(redone.worker).pid == rescuer.pid
    assert redone.started_at is not None
    # The ledger's own clock: when the rescuer began the attempt, after the owner went.
    assert since <= redone.started_at <= since + 2 * LEASE, redone.started_at - since
    return redone


def test_a_sigkilled_worker_s_render_resumes_on_another_within_two_leases(
    settings: Settings, workers: Workers
) -> None:
    """The whole worker is SIGKILLed mid-render; the other worker's sweep sends it again
    (Redis would hand the message back only after two hours): the render completes there,
    one attempt, one completion, the previous video intact until then, no partial file."""
    one, two = workers.start("one"), workers.start("two")
    with web_for(settings) as web:
        project, final, previous = _rendered_with_a_previous_video(web)
        job = web.runner.submit(project)
        assert job.attempt_id is not None
        with Watch(web, [project]) as watch, Statuses(web, project) as statuses:
            owner, rescuer = _owner(web, job.attempt_id, [one, two])
            owner.kill()
            killed_at = web.ledger.now()
            assert web.wait_ended(project, timeout=60) is Status.COMPLETED, web.attempts(project)
        _the_takeover(web, project, job.attempt_id, rescuer, killed_at)
        assert Status.FAILED not in statuses.seen
        assert complete_fake_video(final, FRAMES)
        assert {content for *_, content in watch.samples} <= {previous, digest(final)}
        assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
        assert "is queued again" in rescuer.output() or settings.broker == RABBITMQ_URL
        # Sent again under the id the start recorded (the app's task_id_field, revoke's).
        assert job.task_id is not None
        assert f"[{job.task_id}] received" in rescuer.output()


def test_a_frozen_worker_s_render_resumes_on_another_and_the_frozen_one_changes_nothing(
    settings: Settings, workers: Workers
) -> None:
    """A worker stops answering mid-render (SIGSTOP: its process and its broker connection
    stay, so neither Redis nor RabbitMQ hands its message back): once its lease expired,
    the other worker's sweep requeues the render and completes it. Woken up, the frozen
    worker is fenced: it publishes nothing and removes its own temporary file."""
    one, two = workers.start("one"), workers.start("two")
    with web_for(settings) as web:
        project, final, previous = _rendered_with_a_previous_video(web)
        job = web.runner.submit(project)
        assert job.attempt_id is not None
        with Statuses(web, project) as statuses:
            owner, rescuer = _owner(web, job.attempt_id, [one, two])
            os.killpg(owner.pid, signal.SIGSTOP)
            try:
                stopped_at = web.ledger.now()
                assert web.wait_ended(project, timeout=60) is Status.COMPLETED
                rendered = digest(final)
                assert rendered != previous
                _the_takeover(web, project, job.attempt_id, rescuer, stopped_at)
                assert "stopped renewing its lease; it is queued again" in rescuer.output()
            finally:
                os.killpg(owner.pid, signal.SIGCONT)
            web.wait_for(
                lambda: sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"],
                30,
                "the woken worker to remove its temporary file",
            )
        assert Status.FAILED not in statuses.seen
        assert digest(final) == rendered, "the woken worker published nothing"
        assert complete_fake_video(final, FRAMES)
        assert [a.state for a in web.attempts(project)] == [AttemptState.COMPLETED] * 2


@pytest.mark.parametrize("settings", ["redis"], indirect=True)
def test_a_frozen_worker_killed_before_it_wakes_leaves_no_temporary_file(
    settings: Settings, workers: Workers
) -> None:
    """A worker frozen mid-render (SIGSTOP) has its render taken over and completed by the
    other one, then is SIGKILLed without ever waking: it could not remove its temporary
    file, and the takeover could not either (its owner was alive then); the new owner
    removes it once its own attempt has ended, and nothing is left beside the video."""
    one, two = workers.start("one"), workers.start("two")
    with web_for(settings) as web:
        project, final, previous = _rendered_with_a_previous_video(web)
        job = web.runner.submit(project)
        assert job.attempt_id is not None
        owner, rescuer = _owner(web, job.attempt_id, [one, two])
        os.killpg(owner.pid, signal.SIGSTOP)
        try:
            stopped_at = web.ledger.now()
            assert web.wait_ended(project, timeout=60) is Status.COMPLETED
            _the_takeover(web, project, job.attempt_id, rescuer, stopped_at)
        finally:
            owner.kill()  # never woken
        web.wait_for(
            lambda: sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"],
            15,
            "the new owner to remove the frozen owner's temporary file",
        )
        assert digest(final) != previous
        assert complete_fake_video(final, FRAMES)


def test_a_worker_told_to_stop_hands_its_render_back_and_another_completes_it(
    settings: Settings, workers: Workers
) -> None:
    """SIGTERM (Celery's warm shutdown) mid-render, a 1 s grace and about 5 s of render
    left: the render stops at its next frame, its temporary file is removed, its attempt
    goes back to the queue and the worker exits; the other worker completes the same
    attempt. The project never shows FAILED; the previous video stays until then."""
    settings = replace(settings, grace=1.0)
    workers.settings = settings
    leaving = workers.start("leaving")
    with web_for(settings) as web:
        project, final, previous = _rendered_with_a_previous_video(web)
        job = web.runner.submit(project)
        assert job.attempt_id is not None
        with Statuses(web, project) as statuses:
            web.wait_for(lambda: web.frames_done(job) > 10, 30, "the render to be under way")
            staying = workers.start("staying", wait=False)
            leaving.stop(timeout=30)
            staying.wait_ready()
            assert leaving.process.returncode == 0, leaving.output()[-3000:]
            assert "handed back to the queue" in leaving.output()
            assert digest(final) == previous
            assert web.wait_ended(project, timeout=60) is Status.COMPLETED, web.attempts(project)
        assert Status.FAILED not in statuses.seen
        attempts = web.attempts(project)
        assert [a.state for a in attempts] == [AttemptState.COMPLETED, AttemptState.COMPLETED]
        assert attempts[0].id == job.attempt_id
        assert parse_worker(attempts[0].worker or "").pid == staying.pid
        assert complete_fake_video(final, FRAMES)
        assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


_CLI_WORKER = textwrap.dedent(
    """
    import sys
    from renderstate.cli import build_parser
    from renderstate.cli._worker import work
    from renderstate.testing import FakeRenderer

    args = build_parser().parse_args(sys.argv[1:])
    sys.exit(work(args, lambda name: FakeRenderer(frames={frames}, frame_delay=0.05)))
    """
)


def test_sigterm_to_renderstate_worker_hands_a_prefork_render_back(tmp_path: Path) -> None:
    """`renderstate worker` (its default prefork pool) gets SIGTERM in its main process
    only, as Kubernetes sends it: the pool child's render is handed back within --grace,
    the worker exits, and another `renderstate worker` completes the render. (Redis: the
    command line's broker handling is the same for both brokers.)"""
    settings = new_settings(
        tmp_path, frames=FRAMES, frame_delay=0.05, lease=LEASE, visibility_timeout=7200.0
    )
    script = tmp_path / "cli_worker.py"
    script.write_text(_CLI_WORKER.format(frames=FRAMES))
    web_settings = replace(settings, grace=1.0)

    def command(name: str) -> list[str]:
        return [
            sys.executable,
            str(script),
            "worker",
            "--broker",
            settings.broker,
            "--db",
            settings.db,
            "--media",
            settings.media,
            "--queue",
            settings.queue,
            "--grace",
            "1",
            "--visibility-timeout",
            "7200",
            "--hostname",
            f"{name}-{settings.queue}@%h",
        ]

    # The command line's app: no key prefix, its own queue.
    executor = CeleryExecutor(cli_app(settings.broker), queue=settings.queue)
    web = Web(web_settings, executor)
    try:
        with workers_for(web_settings, tmp_path / "logs") as workers:
            _hand_back_from_the_command_line(web, workers, command)
    finally:
        web.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"*{settings.queue}*"))
        if keys:
            client.delete(*keys)


def _hand_back_from_the_command_line(
    web: Web, workers: Workers, command: Callable[[str], list[str]]
) -> None:
    leaving = workers.start("leaving", command=command("leaving"))
    project, final, previous = _rendered_with_a_previous_video(web)
    job = web.runner.submit(project)
    with Statuses(web, project) as statuses:
        web.wait_for(lambda: web.frames_done(job) > 10, 30, "the render to be under way")
        staying = workers.start("staying", command=command("staying"), wait=False)
        os.kill(leaving.pid, signal.SIGTERM)  # the main process only
        leaving.process.wait(timeout=30)
        assert "handed back to the queue" in leaving.output()
        staying.wait_ready()
        assert leaving.process.returncode == 0, leaving.output()[-3000:]
        assert digest(final) == previous
        assert web.wait_ended(project, timeout=60) is Status.COMPLETED, web.attempts(project)
    assert Status.FAILED not in statuses.seen
    attempts = web.attempts(project)
    assert [a.state for a in attempts] == [AttemptState.COMPLETED, AttemptState.COMPLETED]
    assert attempts[0].id == job.attempt_id
    renderer = parse_worker(attempts[0].worker or "").pid
    assert renderer not in {leaving.pid, None}
    assert _parent_of(renderer) in {staying.pid, None}
    assert complete_fake_video(final, FRAMES)
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def _parent_of(pid: int | None) -> int | None:
    """The parent process id of a live ``pid`` (a prefork child's worker)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1])
