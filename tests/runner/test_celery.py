"""Renders on real `celery worker` subprocesses, Redis as broker and result backend (and
RabbitMQ as the broker), a SQLite file shared with the test process: end to end, a SIGKILLed
worker's job redelivered, two workers never rendering one project twice at once, duplicate
deliveries, a broker that is down, and recovery that leaves live renders alone."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection

from renderstate import RenderConflictError, RenderJob, RenderRunner, Status
from renderstate.cli._store import Project
from renderstate.ledger import AttemptState
from renderstate.ledger._identity import parse_worker
from renderstate.runner.celery import TASK_NAME, CeleryExecutor
from runner.celery_app import Settings, build_app, store_for
from runner.celery_workers import (
    REDIS_URL,
    Workers,
    closed_port,
    new_settings,
    queued,
    redis_reachable,
    workers_for,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not redis_reachable(), reason="needs Redis at 127.0.0.1:6379"),
]

SCOPE = Project.__tablename__


def _never_here(project: object, target: Path, progress: object) -> None:
    msg = "the web process never renders: its executor sends the job to a worker"
    raise AssertionError(msg)


class Web:
    """The submitting side: a runner whose executor sends specs to the workers."""

    def __init__(self, settings: Settings, executor: CeleryExecutor | None = None) -> None:
        self.settings = settings
        self.store, self.ledger = store_for(settings)
        self.app = build_app(settings)
        self.executor = executor or CeleryExecutor(self.app, queue=settings.queue)
        self.runner: RenderRunner[Project] = RenderRunner(
            self.store.adapter,
            _never_here,
            media_root=settings.media,
            executor=self.executor,
            ledger=self.ledger,
            loader=self.store.loader,
        )

    def close(self) -> None:
        self.runner.shutdown()
        self.store.close()

    def project(self, title: str = "clip") -> Project:
        return self.store.create(title, {"width": 64, "height": 36, "fps": 10})

    def status(self, project: Project) -> Status:
        return Status(self.store.get(project.id).status)

    def attempts(self, project: Project) -> list[Any]:
        return self.ledger.history(SCOPE, project.id)

    def frames_done(self, job: RenderJob[Project]) -> int:
        attempt = self.ledger.get(job.attempt_id or 0)
        return 0 if attempt is None else attempt.done

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                msg = f"timed out after {timeout} s waiting for {what}"
                raise AssertionError(msg)
            time.sleep(0.05)

    def wait_ended(self, project: Project, timeout: float = 30.0) -> Status:
        self.wait_for(
            lambda: self.status(project) is not Status.PROCESSING, timeout, f"{project.id} to end"
        )
        return self.status(project)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return new_settings(tmp_path)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    with workers_for(settings, tmp_path / "logs") as started:
        yield started


@contextmanager
def web_for(settings: Settings) -> Iterator[Web]:
    web = Web(settings)
    try:
        yield web
    finally:
        web.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def complete_fake_video(path: Path, frames: int) -> bool:
    lines = path.read_bytes().decode().splitlines()
    return lines[0].startswith("FAKE VIDEO") and lines[1:] == [f"frame {i}" for i in range(frames)]


def test_a_worker_renders_a_submit_and_progress_is_readable_throughout(
    tmp_path: Path, settings: Settings, workers: Workers
) -> None:
    """Submit in this process, a prefork worker renders it; the ledger shows it advance."""
    settings = replace(settings, frames=40, frame_delay=0.05)
    workers.settings = settings
    workers.start("prefork", pool="prefork", concurrency=1)
    with web_for(settings) as web:
        project = web.project()
        job = web.runner.submit(project, actor="ann")
        assert web.status(project) is Status.PROCESSING
        seen: list[tuple[str, float]] = []
        while web.status(project) is Status.PROCESSING:
            progress = web.runner.progress(project)
            assert progress is not None
            seen.append((progress.phase.value, progress.fraction))
            time.sleep(0.05)
        assert web.status(project) is Status.COMPLETED
        fractions = [f for _, f in seen]
        assert fractions == sorted(fractions), "progress never goes back within an attempt"
        assert any(0 < f < 1 for f in fractions), f"no intermediate progress seen: {seen}"
        assert "rendering" in {p for p, _ in seen}
        final = web.runner.file_path(project)
        assert complete_fake_video(final, 40)
        assert web.store.get(project.id).output_path == job.output_path
        (attempt,) = web.attempts(project)
        assert attempt.id == job.attempt_id
        assert attempt.state is AttemptState.COMPLETED
        assert attempt.actor == "ann"
        assert attempt.worker is not None
        assert parse_worker(attempt.worker).pid != workers.started[0].pid, (
            "rendered in the pool's child process, not the parent"
        )
        # The worker removes its backup and private directory just after the commit that
        # this process saw: on a loaded machine that can take a moment.
        web.wait_for(
            lambda: sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"],
            10,
            "the worker to remove its backup and private directory",
        )


def test_the_task_is_sent_under_the_id_its_attempt_records(
    settings: Settings, workers: Workers
) -> None:
    """The executor makes the Celery task id before the start: the attempt records it
    (Attempt.task_id, the job's task_id) and the worker's task runs under it, so the
    result Celery stores under that id is this render's."""
    workers.start("ids", concurrency=1)
    sent_under_recorded_ids(settings)


def sent_under_recorded_ids(settings: Settings) -> None:
    """Two submits: each attempt's task id is the one its task ran under, and they differ."""
    # The result stored, so that Celery tells which task id the worker ran under.
    keep = CeleryExecutor(
        build_app(settings), queue=settings.queue, options={"ignore_result": False}
    )
    web = Web(settings, keep)
    try:
        project = web.project()
        job = web.runner.submit(project)
        (attempt,) = web.attempts(project)
        assert attempt.task_id is not None
        assert job.task_id == attempt.task_id
        assert keep.app.AsyncResult(attempt.task_id).get(timeout=60) == "rendered"
        assert web.wait_ended(project) is Status.COMPLETED
        other = web.project("second")
        web.runner.submit(other)
        (second,) = web.attempts(other)
        assert second.task_id not in (None, attempt.task_id), "a fresh id per render"
        assert web.wait_ended(other) is Status.COMPLETED
    finally:
        web.close()


def test_a_real_moviepy_render_on_a_worker_ends_completed_with_a_playable_file(
    tmp_path: Path, settings: Settings, workers: Workers
) -> None:
    """MoviePyRenderer on the worker renders the project's stored timeline into an MP4."""
    from rendering.media import probe  # noqa: PLC0415 - needs the render extra's ffmpeg

    settings = replace(settings, renderer="moviepy")
    workers.settings = settings
    workers.start("moviepy")
    with web_for(settings) as web:
        timeline = {
            "width": 64,
            "height": 36,
            "fps": 10,
            "scenes": [{"duration": 0.5, "background": "#3366cc"}],
        }
        project = web.store.create("real", timeline, width=64, height=36, fps=10)
        web.runner.submit(project)
        assert web.wait_ended(project, timeout=60) is Status.COMPLETED, web.attempts(project)
        info = probe(web.runner.file_path(project))
        assert (info.width, info.height, info.video_codec) == (64, 36, "h264")
        assert info.duration == pytest.approx(0.5, abs=0.15)


class Watch:
    """Samples, from its own thread, what any user could see: the ledger and final.mp4."""

    def __init__(self, web: Web, projects: list[Project]) -> None:
        self.web = web
        self.projects = projects
        self.samples: list[tuple[float, str, list[Any], str | None]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self.errors:
            raise self.errors[0]

    def _run(self) -> None:
        store = self.web.ledger.store
        try:
            while not self._stop.is_set():
                for project in self.projects:
                    final = self.web.runner.file_path(project)
                    try:
                        content = digest(final)
                    except FileNotFoundError:
                        content = None
                    live = store.live(SCOPE, project.id)
                    self.samples.append((self.web.ledger.now(), project.id, live, content))
                time.sleep(0.02)
        except BaseException as exc:  # reported by __exit__
            self.errors.append(exc)

    def handover(self, dead_pid: int, taker_pid: int, *, dead_at: float | None = None) -> float:
        """Check one owner at a time: the taker rendered only after the dead worker's last
        lease ran out (or, given ``dead_at``, after that time: the dead worker's process,
        on this machine, was seen gone). Both must have been seen rendering; returns when
        the taker started."""
        owners = [
            (t, live[0].worker, live[0].lease_expires_at)
            for t, _, live, _ in self.samples
            if live and live[0].worker is not None
        ]
        dead = [o for o in owners if parse_worker(o[1]).pid == dead_pid]
        taken = [o for o in owners if parse_worker(o[1]).pid == taker_pid]
        assert dead, "the first worker was seen rendering"
        assert taken, "the second worker was seen rendering"
        taken_at = min(t for t, _, _ in taken)
        if dead_at is not None:
            assert taken_at >= dead_at, "two owners at once"
        else:
            assert taken_at >= max(lease for _, _, lease in dead), "two owners at once"
        return taken_at


def test_a_sigkilled_worker_s_job_is_redelivered_and_completes_with_one_owner_at_a_time(
    tmp_path: Path, settings: Settings, workers: Workers
) -> None:
    """Kill -9 mid-render: the old video stays; a restarted worker takes over the attempt
    once the dead one's lease expired, and replaces the video atomically."""
    settings = replace(settings, frames=60, frame_delay=0.05, lease=1.5, visibility_timeout=2.0)
    workers.settings = settings
    first = workers.start("doomed")
    with web_for(settings) as web:
        project = web.project()
        web.runner.submit(project)
        assert web.wait_ended(project) is Status.COMPLETED
        final = web.runner.file_path(project)
        previous = digest(final)

        job = web.runner.submit(project)  # the re-render the worker will die in
        with Watch(web, [project]) as watch:
            web.wait_for(
                lambda: web.frames_done(job) > 10,
                20,
                "the re-render to be well under way",
            )
            first.kill()
            killed_at = web.ledger.now()
            assert digest(final) == previous, "the previous video is intact after the kill"
            assert web.status(project) is Status.PROCESSING
            second = workers.start("rescuer")
            assert web.wait_ended(project) is Status.COMPLETED, web.attempts(project)
        assert complete_fake_video(final, 60)
        # Never a partial file: every sample saw the old video or the complete new one.
        assert {content for *_, content in watch.samples} <= {previous, digest(final)}
        # One attempt, taken over by the second worker once the first was gone: a process
        # of this machine seen gone is taken over at once (its sweep or its begin), not
        # only after its lease ran out.
        attempts = web.attempts(project)
        assert [a.state for a in attempts] == [AttemptState.COMPLETED, AttemptState.COMPLETED]
        redone = attempts[0]
        assert redone.id == job.attempt_id
        assert parse_worker(redone.worker).pid == second.pid
        # Who renders the attempt at each sample (a queued attempt has no owner yet).
        assert watch.handover(first.pid, second.pid, dead_at=killed_at) >= killed_at
        assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def test_two_workers_twenty_submits_across_five_projects_one_render_per_project_at_a_time(
    tmp_path: Path, settings: Settings, workers: Workers
) -> None:
    """Every accepted submit ends COMPLETED (or superseded); the ledger never shows two
    rendering attempts of one project, and attempts of a project never overlap in time."""
    settings = replace(settings, frames=8, frame_delay=0.02)
    workers.settings = settings
    workers.start("w1")
    workers.start("w2")
    with web_for(settings) as web:
        projects = [web.project(f"p{i}") for i in range(5)]
        accepted: list[int] = []
        refused = 0
        with Watch(web, projects) as watch:
            while len(accepted) < 20:
                for project in projects:
                    # Twice in a row: the second finds the first still PROCESSING (its
                    # render has not even reached a worker), however loaded the machine.
                    for _ in range(2):
                        if len(accepted) == 20:
                            break
                        try:
                            accepted.append(web.runner.submit(project).attempt_id or 0)
                        except RenderConflictError:
                            refused += 1
                time.sleep(0.01)
            for project in projects:
                assert web.wait_ended(project) is Status.COMPLETED
        assert all(len(live) <= 1 for _, _, live, _ in watch.samples)
        states: dict[int, AttemptState] = {}
        workers_seen: set[str] = set()
        for project in projects:
            history = sorted(web.attempts(project), key=lambda a: a.id)
            for earlier, later in itertools.pairwise(history):
                assert earlier.finished_at is not None
                assert later.started_at is not None
                assert earlier.finished_at <= later.started_at, "two renders of one project at once"
            for attempt in history:
                states[attempt.id] = attempt.state
                workers_seen.add(attempt.worker or "")
        assert sorted(states) == sorted(accepted)
        assert set(states.values()) <= {AttemptState.COMPLETED, AttemptState.SUPERSEDED}
        assert AttemptState.COMPLETED in states.values()
        assert len(workers_seen) == 2, "both workers rendered"
        assert refused > 0, "some submits raced a running render and got 409"


def test_a_broker_that_is_down_fails_the_attempt_and_the_project_and_raises(
    tmp_path: Path, settings: Settings
) -> None:
    """A closed port: submit raises the broker's error, nothing is queued, and neither the
    project nor its attempt is left live."""
    from kombu.exceptions import OperationalError  # noqa: PLC0415

    down = replace(settings, broker=f"redis://127.0.0.1:{closed_port()}/0")
    web = Web(settings, CeleryExecutor(build_app(down), queue=settings.queue))
    try:
        project = web.project()
        with pytest.raises(OperationalError):
            web.runner.submit(project)
        assert web.status(project) is Status.FAILED
        (attempt,) = web.attempts(project)
        assert attempt.state is AttemptState.FAILED
        assert attempt.error is not None
        assert "OperationalError" in attempt.error
        assert "Connection refused" in attempt.error or "Error 111" in attempt.error
        assert queued(settings) == 0
    finally:
        web.close()


def test_recover_while_another_worker_renders_changes_only_the_stale_project(
    tmp_path: Path, settings: Settings, workers: Workers
) -> None:
    """Worker B is SIGKILLed mid-render; recovery from this process fails only B's project
    while worker A keeps rendering its own to COMPLETED."""
    # No redelivery and no sweep during the test: the killed render is left for recovery.
    settings = replace(
        settings, frames=80, frame_delay=0.05, lease=1.5, visibility_timeout=600, sweep=False
    )
    workers.settings = settings
    one, two = workers.start("one"), workers.start("two")
    with web_for(settings) as web:
        alive, stale = web.project("alive"), web.project("stale")
        jobs = {p.id: web.runner.submit(p) for p in (alive, stale)}

        def rendering_worker(project: Project) -> str | None:
            attempt = web.ledger.get(jobs[project.id].attempt_id or 0)
            return None if attempt is None or attempt.done == 0 else attempt.worker

        web.wait_for(
            lambda: rendering_worker(alive) is not None and rendering_worker(stale) is not None,
            20,
            "both renders to start",
        )
        victim = one if parse_worker(str(rendering_worker(stale))).pid == one.pid else two
        assert parse_worker(str(rendering_worker(alive))).pid != victim.pid
        victim.kill()
        time.sleep(settings.lease + 0.3)
        records = web.runner.recover_interrupted()
        assert [r.project_key for r in records] == [stale.id]
        assert web.status(stale) is Status.FAILED
        assert web.status(alive) is Status.PROCESSING
        assert web.wait_ended(alive) is Status.COMPLETED
        (interrupted,) = web.attempts(stale)
        assert interrupted.state is AttemptState.INTERRUPTED
        assert web.attempts(alive)[0].state is AttemptState.COMPLETED


def test_duplicate_deliveries_render_nothing_and_change_nothing(
    tmp_path: Path, settings: Settings, workers: Workers
) -> None:
    """The same spec delivered again: while another worker renders it, the duplicate is
    refused (the record untouched) and retried after that worker's lease, until the
    attempt has ended; then it does nothing."""
    settings = replace(settings, frames=60, frame_delay=0.05, lease=1.0)
    workers.settings = settings
    workers.start("w1")
    workers.start("w2")
    with web_for(settings) as web:
        project = web.project()
        job = web.runner.submit(project)
        web.wait_for(
            lambda: web.frames_done(job) > 0,
            20,
            "the render to start",
        )
        owner = web.ledger.get(job.attempt_id or 0)
        assert owner is not None
        duplicate = web.app.send_task(
            TASK_NAME, args=(job.spec.to_dict(),), queue=settings.queue, ignore_result=False
        )
        assert duplicate.get(timeout=30) == "not live"
        assert web.wait_ended(project) is Status.COMPLETED
        (attempt,) = web.attempts(project)
        assert (attempt.worker, attempt.started_at) == (owner.worker, owner.started_at), (
            "the first worker rendered it alone, begun once"
        )
        logs = "".join(worker.output() for worker in workers.started)
        assert "looking again in" in logs, "the duplicate was refused and retried"
        rendered = digest(web.runner.file_path(project))
        late = web.app.send_task(
            TASK_NAME, args=(job.spec.to_dict(),), queue=settings.queue, ignore_result=False
        )
        assert late.get(timeout=30) == "not live"
        assert web.attempts(project) == [attempt]
        assert digest(web.runner.file_path(project)) == rendered


def test_a_visibility_timeout_redelivery_never_renders_the_attempt_twice(
    tmp_path: Path, settings: Settings, workers: Workers
) -> None:
    """A render longer than the broker's visibility timeout: Redis hands the message to the
    idle second worker while the first still renders. The second begin is refused, so the
    attempt has one owner throughout, its progress never drops (it went 0.8 -> 0.05 when
    the redelivery began the attempt again), and the project ends COMPLETED once."""
    settings = replace(settings, frames=80, frame_delay=0.05, lease=1.5, visibility_timeout=1.0)
    workers.settings = settings
    workers.start("w1")
    workers.start("w2")
    with web_for(settings) as web:
        project = web.project()
        with Watch(web, [project]) as watch:
            job = web.runner.submit(project)
            assert web.wait_ended(project) is Status.COMPLETED, web.attempts(project)
        (attempt,) = web.attempts(project)
        assert attempt.state is AttemptState.COMPLETED
        seen = [live[0] for *_, live, _ in watch.samples if live and live[0].worker]
        assert {a.worker for a in seen} == {attempt.worker}, "one owner throughout"
        assert {a.started_at for a in seen} == {attempt.started_at}, "begun once"
        fractions = [a.fraction for a in seen]
        assert fractions == sorted(fractions), "progress never went back"
        logs = "".join(worker.output() for worker in workers.started)
        assert "looking again in" in logs, "the broker did redeliver while it rendered"
        assert complete_fake_video(web.runner.file_path(project), 80)
        assert job.wait(10) is Status.COMPLETED


RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def rabbitmq_reachable() -> bool:
    try:
        with Connection(RABBITMQ_URL, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception:  # any failure means: not reachable
        return False
    return True


@pytest.fixture
def rabbit_settings(settings: Settings) -> Iterator[Settings]:
    if not rabbitmq_reachable():
        pytest.skip("needs RabbitMQ at 127.0.0.1:5672")
    yield replace(settings, broker=RABBITMQ_URL, backend=REDIS_URL)
    with Connection(RABBITMQ_URL) as connection:
        channel = connection.default_channel
        channel.queue_delete(settings.queue)
        channel.exchange_delete(settings.queue)


def test_rabbitmq_a_worker_renders_a_submit_and_progress_is_readable_throughout(
    tmp_path: Path, rabbit_settings: Settings
) -> None:
    """RabbitMQ as the broker (Redis keeps the results): submit here, a worker renders it,
    the ledger shows it advance, the project ends COMPLETED with the whole video."""
    settings = replace(rabbit_settings, frames=40, frame_delay=0.05)
    with workers_for(settings, tmp_path / "logs") as workers, web_for(settings) as web:
        workers.start("rabbit")
        project = web.project()
        job = web.runner.submit(project)
        seen: list[float] = []
        while web.status(project) is Status.PROCESSING:
            seen.append(job.progress.fraction)
            time.sleep(0.02)
        assert web.status(project) is Status.COMPLETED, web.attempts(project)
        assert seen == sorted(seen)
        assert any(0.0 < f < 1.0 for f in seen), seen
        assert complete_fake_video(web.runner.file_path(project), 40)
        assert job.wait(10) is Status.COMPLETED


def test_rabbitmq_the_task_is_sent_under_the_id_its_attempt_records(
    tmp_path: Path, rabbit_settings: Settings
) -> None:
    """RabbitMQ as the broker: the task id the start recorded is the one the task ran under."""
    with workers_for(rabbit_settings, tmp_path / "logs") as workers:
        workers.start("rabbit-ids", concurrency=1)
        sent_under_recorded_ids(rabbit_settings)


def test_rabbitmq_a_sigkilled_worker_s_job_comes_back_and_is_taken_over_at_once(
    tmp_path: Path, rabbit_settings: Settings
) -> None:
    """RabbitMQ requeues a dead consumer's message as soon as its connection drops, while
    the dead worker's lease still runs: that worker ran on this machine and its process is
    gone, so the new worker takes the attempt over at once (no retry, no lease to wait out,
    never two owners) and completes it."""
    settings = replace(rabbit_settings, frames=300, frame_delay=0.03, lease=2.0)
    with workers_for(settings, tmp_path / "logs") as workers, web_for(settings) as web:
        first = workers.start("doomed")
        project = web.project()
        job = web.runner.submit(project)
        with Watch(web, [project]) as watch:
            web.wait_for(lambda: web.frames_done(job) > 10, 20, "the render to be under way")
            # Idle and consuming before the kill, so the requeued message reaches it at
            # once, while the dead worker's lease still runs.
            second = workers.start("rescuer")
            assert web.frames_done(job) < 300, "the first worker is still rendering"
            dead_at = web.ledger.now()  # killed from here on, so seen gone from here on
            first.kill()
            assert web.wait_ended(project, timeout=60) is Status.COMPLETED, web.attempts(project)
        (attempt,) = web.attempts(project)
        assert attempt.worker is not None
        assert parse_worker(attempt.worker).pid == second.pid
        assert "looking again in" not in second.output(), "taken over without a retry"
        watch.handover(first.pid, second.pid, dead_at=dead_at)
        final = web.runner.file_path(project)
        assert complete_fake_video(final, 300)
        assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def test_the_task_is_registered_under_its_documented_name(settings: Settings) -> None:
    """The worker's app knows the task the executor sends to, with late acknowledgement."""
    import runner.celery_app as module  # noqa: PLC0415

    app = build_app(settings)
    from renderstate.runner.celery import register  # noqa: PLC0415

    task = register(app, lambda: module.make_runner(settings))
    assert task.name == TASK_NAME == "renderstate.render"
    registered = app.tasks[TASK_NAME]
    assert registered.acks_late is True
    assert registered.reject_on_worker_lost is True


def test_register_refuses_a_negative_grace(settings: Settings) -> None:
    """A grace below 0 is refused when the task is registered, naming what to give."""
    from renderstate.runner.celery import register  # noqa: PLC0415

    with pytest.raises(ValueError, match="grace must be a number of seconds, at least 0"):
        register(build_app(settings), lambda: None, grace=-1.0)  # type: ignore[arg-type,return-value]
