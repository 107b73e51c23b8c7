"""CeleryExecutor(app, task=...) and run_attempt(): the app's own Celery task, sent with the
app's own arguments, renders the attempt on real `celery worker` processes (Redis), in eager
mode in the caller, and a mock of its apply_async sees the call the app's code made."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from celery.result import AsyncResult

from renderstate import RenderRunner, Status
from renderstate.cli._store import Project
from renderstate.ledger import AttemptState
from renderstate.ledger._identity import parse_worker
from renderstate.runner.celery import CeleryExecutor, register, run_attempt
from runner.celery_app import (
    APP_TASK,
    APP_TASK_WITH_FORMAT,
    Settings,
    add_app_task,
    add_app_task_with_format,
    build_app,
    make_runner,
    store_for,
)
from runner.celery_workers import Workers, new_settings, redis_reachable, workers_for
from runner.test_celery import SCOPE, Web, complete_fake_video, digest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not redis_reachable(), reason="needs Redis at 127.0.0.1:6379"),
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return new_settings(tmp_path)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    with workers_for(settings, tmp_path / "logs") as started:
        yield started


def app_web(settings: Settings, **options: Any) -> tuple[Web, Any]:
    """The web side: the app's own task on the web's app, and a runner sending to it."""
    app = build_app(settings)
    task = add_app_task(app)
    web = Web(settings, CeleryExecutor(app, task=task, queue=settings.queue, **options))
    return web, task


def test_the_app_s_own_task_is_sent_and_its_run_attempt_renders_on_a_worker(
    settings: Settings, workers: Workers
) -> None:
    """submit() sends the app's task (its name, the project's id as its argument); the
    worker's run_attempt(self, id) renders the attempt: COMPLETED, the file complete, the
    task's Celery id on the attempt, the route naming the task for a resend."""
    workers.start("apptask")
    web, task = app_web(settings)
    try:
        project = web.project()
        job = web.runner.submit(project)
        (attempt,) = web.attempts(project)
        assert attempt.task_id is not None
        assert job.task_id == attempt.task_id
        assert attempt.executor == f"celery:{settings.queue}#{APP_TASK}"
        assert web.wait_ended(project) is Status.COMPLETED
        assert complete_fake_video(web.runner.file_path(project), settings.frames)
        assert task.AsyncResult(attempt.task_id).get(timeout=30) == "rendered"
        log = workers.started[0].output()
        assert f"Task {APP_TASK}[{attempt.task_id}] received" in log
        assert "renderstate.render[" not in log, "renderstate's own task never ran"
        # A project never started: the app's task finds no attempt and renders nothing.
        never = web.project("never")
        assert task.apply_async(args=(never.id,)).get(timeout=30) == "no attempt"
        assert web.status(never) is Status.DRAFT
    finally:
        web.close()


def test_a_mock_of_the_app_s_apply_async_sees_the_app_s_call_and_its_id_is_recorded(
    settings: Settings,
) -> None:
    """The executor calls task.apply_async(args=(id,), **options) exactly as the app's
    code did (no task_id of its own), so an app test's mock sees that call; the id the
    call returns is recorded on the attempt; the project waits PROCESSING, handed off."""
    web, task = app_web(settings, options={"countdown": 10})
    try:
        project = web.project()
        sent = AsyncResult(str(uuid.uuid4()))
        with mock.patch.object(task, "apply_async", return_value=sent) as apply_async:
            job = web.runner.submit(project)
        apply_async.assert_called_once_with(args=(project.id,), countdown=10, queue=settings.queue)
        (attempt,) = web.attempts(project)
        assert attempt.task_id == sent.id
        assert attempt.state is AttemptState.QUEUED
        assert web.status(project) is Status.PROCESSING
        assert not job.done()
    finally:
        web.close()


def test_in_eager_mode_the_app_s_task_runs_in_the_caller_and_renders_the_started_job(
    settings: Settings, tmp_path: Path
) -> None:
    """With task_always_eager, submit() calls the app's task, which Celery runs at once in
    the caller; its run_attempt renders the job the submitting runner started, there, before
    submit() returns (the worker's runner is never built)."""
    app = build_app(settings)
    app.conf.task_always_eager = True
    built: list[object] = []

    def factory() -> RenderRunner[Project]:
        built.append(1)
        return make_runner(settings)

    register(app, factory, sweep=False)
    bodies: list[int] = []

    @app.task(name="tests.eager_render", bind=True)
    def eager_render(self: Any, project_id: int) -> str:
        bodies.append(project_id)
        return run_attempt(self, project_id)

    store, ledger = store_for(settings)
    from renderstate.testing import FakeRenderer  # noqa: PLC0415

    runner = RenderRunner(
        store.adapter,
        FakeRenderer(frames=3),
        media_root=settings.media,
        executor=CeleryExecutor(app, task=eager_render),
        ledger=ledger,
        loader=store.loader,
    )
    try:
        project = store.create("eager", {"width": 64, "height": 36, "fps": 10})
        job = runner.submit(project)
        assert job.done()
        assert job.status is Status.COMPLETED
        assert bodies == [project.id]
        heartbeats = [t for t in threading.enumerate() if t.name == "renderstate-heartbeat"]
        assert heartbeats == [], "rendered in the caller: no thread writes beside its transaction"
        assert built == [], "the job rendered in the runner that started it"
        assert Status(store.get(project.id).status) is Status.COMPLETED
        (attempt,) = ledger.history(SCOPE, project.id)
        assert attempt.state is AttemptState.COMPLETED
    finally:
        runner.shutdown()
        store.close()


def test_the_app_s_args_are_sent_as_the_app_wrote_them(settings: Settings) -> None:
    """args= returns the app's own arguments, passed as they are: a list stays a list, as a
    test asserting the app's apply_async(args=[id]) expects."""
    web, task = app_web(settings, args=lambda project: [project.id, "hls"])
    try:
        project = web.project()
        with mock.patch.object(task, "apply_async", return_value=AsyncResult("id-1")) as sent:
            web.runner.submit(project)
        sent.assert_called_once_with(args=[project.id, "hls"], queue=settings.queue)
    finally:
        web.close()


def test_run_attempt_in_a_task_of_an_app_without_register_says_how_to_fix_it(
    settings: Settings,
) -> None:
    """run_attempt() needs the worker's runner that register() sets up on the task's app:
    without it, a RuntimeError naming the call to add."""
    app = build_app(settings)
    app.conf.task_always_eager = True

    @app.task(name="tests.unregistered", bind=True)
    def unregistered(self: Any, project_id: int) -> str:
        return run_attempt(self, project_id)

    with pytest.raises(RuntimeError, match=r"register\(app, make_runner\)"):
        unregistered.apply_async(args=(1,)).get()


def test_args_and_task_name_are_refused_where_they_cannot_apply(settings: Settings) -> None:
    """args= without the app's task, or task= with task_name=, is a TypeError at once."""
    app = build_app(settings)
    task = add_app_task(app)
    with pytest.raises(TypeError, match="give task= as well"):
        CeleryExecutor(app, args=lambda project: (project.id,))
    with pytest.raises(TypeError, match="not both"):
        CeleryExecutor(app, task=task, task_name="other")
    with pytest.raises(TypeError, match="the app's Celery task"):
        CeleryExecutor(app, task="tests.app_render")  # type: ignore[arg-type]


def test_a_sigkilled_worker_s_render_is_sent_again_through_the_app_s_task(
    settings: Settings, workers: Workers
) -> None:
    """Kill -9 mid-render: the sweep of the other worker takes the attempt back and sends
    it again through the app's own task (not renderstate's), which completes it; the
    previous video stays intact until then and nothing is left beside it."""
    settings = replace(settings, frames=60, frame_delay=0.05, lease=1.5, visibility_timeout=7200.0)
    workers.settings = settings
    first = workers.start("doomed")
    web, _ = app_web(settings)
    try:
        project = web.project()
        web.runner.submit(project)
        assert web.wait_ended(project) is Status.COMPLETED
        final = web.runner.file_path(project)
        previous = digest(final)
        job = web.runner.submit(project)
        web.wait_for(lambda: web.frames_done(job) > 10, 20, "the re-render to be under way")
        first.kill()
        assert digest(final) == previous
        second = workers.start("rescuer")
        assert web.wait_ended(project, timeout=60) is Status.COMPLETED, web.attempts(project)
        assert complete_fake_video(final, 60)
        redone = web.attempts(project)[0]
        assert redone.id == job.attempt_id
        assert parse_worker(redone.worker or "").pid == second.pid
        log = second.output()
        assert f"Task {APP_TASK}[" in log
        assert "renderstate.render[" not in log
        # The worker removes its backup just after the commit this process saw.
        web.wait_for(
            lambda: sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"],
            10,
            "the worker to remove its backup",
        )
    finally:
        web.close()


@pytest.mark.usefixtures("no_earlier_jobs")
@pytest.mark.parametrize("eager", [False, True], ids=["sent", "eager"])
def test_a_job_whose_mocked_task_never_runs_is_ended_by_stop_all_jobs(
    settings: Settings, eager: bool
) -> None:
    """An app's test that mocks its task's apply_async (eager or not) sends nothing to any
    broker, and leaves the started job to no worker: stop_all_jobs(), run after each test,
    ends it FAILED as cancelled, so the test leaves nothing PROCESSING."""
    from renderstate.testing import stop_all_jobs  # noqa: PLC0415

    web, task = app_web(replace(settings, broker="redis://127.0.0.1:1/0"))
    web.executor.app.conf.task_always_eager = eager
    try:
        project = web.project()
        with mock.patch.object(task, "apply_async", return_value=AsyncResult("id-1")) as sent:
            job = web.runner.submit(project)
        sent.assert_called_once()
        assert web.status(project) is Status.PROCESSING
        assert stop_all_jobs(timeout=10) == 1
        assert web.status(project) is Status.FAILED
        (attempt,) = web.attempts(project)
        assert attempt.state is AttemptState.FAILED
        assert job.done()
        assert "the test ended" in str(job.error)
    finally:
        web.close()


def test_a_sigkilled_worker_s_render_sent_with_the_app_s_args_is_not_resent_without_them(
    settings: Settings, workers: Workers
) -> None:
    """The app's task takes more than the key (args=lambda p: [p.id, "hls"]) and the
    worker's runner cannot make those arguments: after a kill -9 mid-render the sweep does
    not call the app's task with the key alone (its body would raise every lease, the
    project PROCESSING for good) but sends the attempt to the render task, which
    completes it; the previous video stays intact until then."""
    settings = replace(settings, frames=60, frame_delay=0.05, lease=1.5, visibility_timeout=7200.0)
    workers.settings = settings
    first = workers.start("doomed")
    app = build_app(settings)
    task = add_app_task_with_format(app)
    executor = CeleryExecutor(app, task=task, queue=settings.queue, args=lambda p: [p.id, "hls"])
    web = Web(settings, executor)
    try:
        project = web.project()
        web.runner.submit(project)
        assert web.wait_ended(project) is Status.COMPLETED
        final = web.runner.file_path(project)
        previous = digest(final)
        job = web.runner.submit(project)
        web.wait_for(lambda: web.frames_done(job) > 10, 20, "the re-render to be under way")
        first.kill()
        assert digest(final) == previous
        second = workers.start("rescuer")
        assert web.wait_ended(project, timeout=60) is Status.COMPLETED, web.attempts(project)
        assert complete_fake_video(final, 60)
        redone = web.attempts(project)[0]
        assert redone.id == job.attempt_id
        assert parse_worker(redone.worker or "").pid == second.pid
        log = second.output()
        assert "missing 1 required positional argument" not in log, log
        assert f"{APP_TASK_WITH_FORMAT}[" not in log, "not sent again without its arguments"
    finally:
        web.close()


def test_an_eager_app_task_that_does_not_render_the_job_says_so(settings: Settings) -> None:
    """Under task_always_eager, an app's task that ran but did not render the started job
    (args= that do not name the key, so its run_attempt finds no attempt; a body that
    raised first) is an error from submit() naming the fix, and the project is FAILED with
    it: nothing will ever render that job, and it no longer stays PROCESSING."""
    app = build_app(replace(settings, broker="redis://127.0.0.1:1/0"))
    app.conf.task_always_eager = True
    register(app, lambda: make_runner(settings), sweep=False)

    @app.task(name="tests.by_title", bind=True)
    def by_title(self: Any, title: str) -> str:
        return run_attempt(self, title)

    @app.task(name="tests.raises_first", bind=True)
    def raises_first(self: Any, project_id: str) -> str:
        msg = "the app's own check failed"
        raise LookupError(msg)

    store, ledger = store_for(settings)
    from renderstate.testing import FakeRenderer  # noqa: PLC0415

    def runner_for(executor: CeleryExecutor) -> RenderRunner[Project]:
        return RenderRunner(
            store.adapter,
            FakeRenderer(frames=2),
            media_root=settings.media,
            executor=executor,
            ledger=ledger,
            loader=store.loader,
        )

    titled = runner_for(CeleryExecutor(app, task=by_title, args=lambda p: [p.title]))
    raising = runner_for(CeleryExecutor(app, task=raises_first))
    try:
        project = store.create("by-title", {"width": 64, "height": 36, "fps": 10})
        with pytest.raises(RuntimeError, match=r"run_attempt\(self, key\)") as refused:
            titled.submit(project)
        assert "['by-title']" in str(refused.value)
        assert Status(store.get(project.id).status) is Status.FAILED
        assert "run_attempt(self, key)" in (titled.error(project) or "")
        other = store.create("raises", {"width": 64, "height": 36, "fps": 10})
        with pytest.raises(RuntimeError, match="the app's own check failed"):
            raising.submit(other)
        assert Status(store.get(other.id).status) is Status.FAILED
    finally:
        titled.shutdown()
        raising.shutdown()
        store.close()


def test_options_that_carry_the_task_s_arguments_are_refused_at_once(
    settings: Settings,
) -> None:
    """options= are apply_async's options; the arguments of the app's task come from args=.
    options={"args": ...} is a TypeError naming args= when the executor is made, not a
    failed render (apply_async's "multiple values for 'args'") at every submit()."""
    app = build_app(settings)
    task = add_app_task(app)
    with pytest.raises(TypeError, match=r"args=lambda project: \("):
        CeleryExecutor(app, task=task, options={"args": (1,)})
    with pytest.raises(TypeError, match=r"args=lambda project: \("):
        CeleryExecutor(app, options={"args": (1,)})


def test_a_runner_sending_to_the_app_s_task_without_a_ledger_is_refused_when_made(
    settings: Settings,
) -> None:
    """The app's task finds its attempt in the ledger: RenderRunner(executor=
    CeleryExecutor(app, task=...)) without one is a TypeError naming ledger= when the runner
    is made, where every submit() failed its project (a COMPLETED one too) after the start."""
    from renderstate.testing import FakeRenderer, MemoryAdapter  # noqa: PLC0415

    app = build_app(settings)
    task = add_app_task(app)
    with pytest.raises(TypeError, match=r"ledger=Ledger\(store\)"):
        RenderRunner(
            MemoryAdapter(),
            FakeRenderer(),
            media_root=settings.media,
            executor=CeleryExecutor(app, task=task),
        )


def test_a_task_class_instead_of_the_registered_task_is_refused_when_made(
    settings: Settings,
) -> None:
    """task= takes the app's registered task; a class-based task's class (the shape
    run_attempt's example has) has an apply_async too, which raised "missing 'self'" at
    every submit() after the start: a TypeError naming app.register_task when made."""
    from celery import Task  # noqa: PLC0415

    class Transcode(Task):  # type: ignore[type-arg]
        name = "tests.transcode_class"

        def run(self, project_id: str) -> str:
            return run_attempt(self, project_id)

    app = build_app(settings)
    with pytest.raises(TypeError, match=r"app\.register_task\(Transcode\(\)\)"):
        CeleryExecutor(app, task=Transcode)  # type: ignore[arg-type]


def test_run_attempt_names_the_registration_when_the_app_has_several(settings: Settings) -> None:
    """An app that registers twice (one runner per kind of project, each its own task
    name) must say which renders the task: a second register() silently took the place of
    the first, whose projects were then looked up with the wrong runner."""
    app = build_app(replace(settings, broker="redis://127.0.0.1:1/0"))
    app.conf.task_always_eager = True
    built: list[str] = []

    def other_kind() -> RenderRunner[Project]:
        built.append("other")
        return make_runner(settings)

    def videos() -> RenderRunner[Project]:
        built.append("videos")
        return make_runner(settings)

    register(app, other_kind, name="tests.renders.other", sweep=False)
    register(app, videos, name="tests.renders.videos", sweep=False)

    @app.task(name="tests.two_kinds", bind=True)
    def transcode(self: Any, project_id: int, registered: str | None = None) -> str:
        return run_attempt(self, project_id, registered=registered)

    with pytest.raises(ValueError, match=r"2 renderstate registrations .*registered="):
        transcode.apply_async(args=(1,)).get()
    with pytest.raises(ValueError, match=r"no such registration.*'tests.renders.other'"):
        transcode.apply_async(args=(1,), kwargs={"registered": "tests.render"}).get()
    assert built == [], "a runner was built for a task that names no registration"
    named = {"registered": "tests.renders.videos"}
    assert transcode.apply_async(args=(1,), kwargs=named).get() == "no attempt"
    assert built == ["videos"]
