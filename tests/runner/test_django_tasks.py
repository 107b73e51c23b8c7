"""Renders on real `db_worker` processes (django-tasks-db's database backend), on SQLite,
PostgreSQL and MariaDB: a Django project configured by its settings module alone submits
from a web process of its own; workers render, one is SIGKILLed mid-render and another takes
the attempt over; a duplicate delivery is refused and a late one does nothing."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django_tasks_db", reason="needs the django-tasks extra")

from adapters.conftest import BACKEND_PARAMS
from adapters.databases import Target, create, drop
from adapters.test_django import database_settings, use_database
from renderstate.ledger import Attempt, AttemptState, Ledger
from renderstate.ledger._identity import parse_worker
from renderstate.ledger.django import DjangoAttemptStore

pytestmark = [pytest.mark.slow]

TESTS = Path(__file__).resolve().parents[1]
ENV = "RENDERSTATE_TEST_DJANGO_TASKS"
FRAMES = 30


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def complete_fake_video(path: Path, frames: int) -> bool:
    lines = path.read_bytes().decode().splitlines()
    return lines[0].startswith("FAKE VIDEO") and lines[1:] == [f"frame {i}" for i in range(frames)]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout} s waiting for {what}"
            raise AssertionError(msg)
        time.sleep(0.05)


class Process:
    """A child process of the site (a `db_worker`, a web process), in a session of its own."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=TESTS,
            stdout=subprocess.PIPE if log.suffix == ".jsonl" else self._out,
            stderr=self._out,
            start_new_session=True,
        )
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        if self.process.stdout is not None:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(json.loads(line))

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def line(self, timeout: float = 60.0) -> dict[str, Any]:
        """The next JSON line the process printed (a web process)."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            msg = f"no line from the process within {timeout} s:\n{self.output()}"
            raise AssertionError(msg) from None

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a `db_worker` finishes its task and exits), then SIGKILL if it hangs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._out.close()


class Site:
    """One Django project on one fresh database: its settings, its processes, its rows."""

    def __init__(self, target: Target, tmp_path: Path, **overrides: object) -> None:
        self.target = target
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.media = tmp_path / "media"
        self.test: dict[str, object] = {
            "database": database_settings(target),
            "media": str(self.media),
            "queue": f"rs-{uuid.uuid4().hex[:16]}",  # this test's tasks only
            "lease": 1.5,
            "frames": FRAMES,
            "frame_delay": 0.05,
            **overrides,
        }
        self.started: list[Process] = []
        self.alias = ""

    def env(self, **overrides: object) -> dict[str, str]:
        env = {**os.environ, ENV: json.dumps({**self.test, **overrides})}
        env["DJANGO_SETTINGS_MODULE"] = "runner.django_tasks_settings"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
        return env

    def prepare(self) -> None:
        """Create every table as `manage.py migrate` does, then open the rows from here."""
        done = subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--run-syncdb", "-v", "0"],
            env=self.env(),
            cwd=TESTS,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        self.alias = use_database(self.target)
        self.store = DjangoAttemptStore(using=self.alias)
        self.ledger = Ledger(self.store)

    def start(self, command: list[str], name: str, **overrides: object) -> Process:
        process = Process(command, self.env(**overrides), self.logs / name)
        self.started.append(process)
        return process

    def worker(self, name: str) -> Process:
        """A `db_worker` on this test's queue, polling every 0.1 s; returns once it runs."""
        command = [
            *(sys.executable, "-m", "django", "db_worker", "--queue-name", str(self.test["queue"])),
            *("--interval", "0.1", "--no-startup-delay", "--no-reload", "--worker-id", name),
        ]
        process = self.start(command, f"{name}-{len(self.started)}.log")
        wait_for(lambda: "Starting worker" in process.output(), 60, f"{name} to start")
        return process

    def web(self, *args: str, **overrides: object) -> Process:
        command = [sys.executable, "-m", "runner.django_tasks_web", *args]
        return self.start(command, f"web-{len(self.started)}.jsonl", **overrides)

    def deliver(self, spec: dict[str, Any], delivery: int = 1) -> dict[str, Any]:
        """Enqueue one more delivery of ``spec`` from a web process; what the task returned."""
        web = self.web("deliver", json.dumps(spec), str(delivery))
        answer = web.line()
        web.stop()
        return answer

    def project(self, title: str = "clip") -> str:
        from djangoapp.models import Project  # noqa: PLC0415 - needs django.setup()

        return str(Project.objects.using(self.alias).create(title=title).pk)

    def status(self, key: str) -> str:
        from djangoapp.models import Project  # noqa: PLC0415 - needs django.setup()

        return str(Project.objects.using(self.alias).get(pk=key).status)

    def attempts(self, key: str) -> list[Attempt]:
        return self.ledger.history("djangoapp.project", key)

    def final(self, key: str) -> Path:
        return self.media / "projects" / key / "final.mp4"

    def close(self) -> None:
        for process in self.started:
            process.stop()
        if self.alias:
            from django.db import connections  # noqa: PLC0415

            connections[self.alias].close()


@pytest.fixture(params=BACKEND_PARAMS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """A fresh database of its own on each server (parallel runs never share a queue)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        target = create(request.param, tmp_path, worker)
    except Exception as exc:
        pytest.skip(f"{request.param} is not reachable: {exc}")
    made = Site(target, tmp_path)
    try:
        made.prepare()
        yield made
    finally:
        made.close()
        drop(target)


class Watch:
    """Samples, from its own thread, what any user could see: the ledger and final.mp4."""

    def __init__(self, site: Site, key: str) -> None:
        self.site = site
        self.key = key
        self.samples: list[tuple[float, list[Attempt], str | None]] = []
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
        from django.db import connections  # noqa: PLC0415

        final = self.site.final(self.key)
        try:
            while not self._stop.is_set():
                try:
                    content: str | None = digest(final)
                except FileNotFoundError:
                    content = None
                live = self.site.store.live("djangoapp.project", self.key)
                self.samples.append((self.site.ledger.now(), live, content))
                time.sleep(0.02)
        except BaseException as exc:  # reported by __exit__
            self.errors.append(exc)
        finally:
            connections[self.site.alias].close()

    def handover(self, dead_pid: int, taker_pid: int, *, dead_at: float) -> float:
        """Check one owner at a time: the taker began only after the dead worker was killed
        (a dead process of this machine is seen gone at once, without waiting out its
        lease). Both must have been seen rendering; returns when the taker began."""
        owners = [
            (t, live[0].worker, live[0].lease_expires_at)
            for t, live, _ in self.samples
            if live and live[0].worker is not None
        ]
        dead = [o for o in owners if parse_worker(o[1]).pid == dead_pid]
        taken = [o for o in owners if parse_worker(o[1]).pid == taker_pid]
        assert dead, "the first worker was seen rendering"
        assert taken, "the second worker was seen rendering"
        taken_at = min(t for t, _, _ in taken)
        assert taken_at >= dead_at, "two owners at once"
        return taken_at


def only_final(final: Path) -> None:
    """Wait until the worker has cleaned up after its end: nothing but the final video."""
    wait_for(
        lambda: sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"],
        20,
        f"only final.mp4 in {final.parent}: {sorted(p.name for p in final.parent.iterdir())}",
    )


def pid_of(attempt: Attempt | None) -> int:
    assert attempt is not None
    assert attempt.worker is not None
    pid = parse_worker(attempt.worker).pid
    assert pid is not None, attempt.worker
    return pid


def test_db_workers_render_and_take_over_the_render_of_a_sigkilled_one(site: Site) -> None:
    """A submit renders on a `db_worker`, the web process following its progress; then a
    re-render's worker is SIGKILLed: the other takes the attempt over (at once: the dead
    process is on this machine) and completes it, one completed attempt, the old video
    intact until replaced."""
    workers = [site.worker("w1"), site.worker("w2")]
    key = site.project()

    web = site.web("submit", key)
    started = web.line()
    assert started["done"] is False, "handed to the queue, not rendered in the web process"
    ended = web.line()
    assert ended == {**ended, "status": "COMPLETED", "error": None}
    fractions = ended["fractions"]
    assert fractions == sorted(fractions), "progress never went back"
    assert any(0.0 < f < 1.0 for f in fractions), f"the web process saw no progress: {fractions}"
    final = site.final(key)
    assert complete_fake_video(final, FRAMES)
    previous = digest(final)
    (first,) = site.attempts(key)
    assert (first.state, first.actor) == (AttemptState.COMPLETED, "ann")
    assert pid_of(first) in {w.pid for w in workers}

    rerender = site.web("submit", key)  # the re-render a worker will die in
    attempt_id = rerender.line()["attempt"]
    with Watch(site, key) as watch:
        wait_for(
            lambda: (site.ledger.get(attempt_id) or first).done > 8,
            30,
            "the re-render to be well under way",
        )
        doomed_pid = pid_of(site.ledger.get(attempt_id))
        (doomed,) = [w for w in workers if w.pid == doomed_pid]
        (survivor,) = [w for w in workers if w is not doomed]
        killed_at = site.ledger.now()  # before the kill: nobody may take over earlier
        doomed.kill()
        assert digest(final) == previous, "the previous video is intact after the kill"
        assert site.status(key) == "PROCESSING"
        ended = rerender.line()
        assert ended == {**ended, "status": "COMPLETED", "error": None}, survivor.output()
    assert complete_fake_video(final, FRAMES)
    # Never a partial file: every sample saw the old video or the complete new one.
    assert {content for *_, content in watch.samples} <= {previous, digest(final)}
    attempts = site.attempts(key)
    assert [a.state for a in attempts] == [AttemptState.COMPLETED, AttemptState.COMPLETED]
    redone = attempts[0]
    assert redone.id == attempt_id
    assert pid_of(redone) == survivor.pid
    assert watch.handover(doomed.pid, survivor.pid, dead_at=killed_at) >= killed_at
    # The publish journal's backup of the previous video goes once the end has committed.
    only_final(final)


@pytest.mark.parametrize("site", BACKEND_PARAMS[:1], indirect=True)
def test_a_duplicate_delivery_is_refused_and_a_late_one_does_nothing(site: Site) -> None:
    """The same spec enqueued again while a worker renders it: the other worker's begin is
    refused (``"owned"``) and the record is untouched; after the end, ``"not live"``."""
    site.test["frames"] = 100  # 5 s: time for a web process to enqueue the duplicate
    site.worker("w1")
    site.worker("w2")
    key = site.project()
    web = site.web("submit", key)
    started = web.line()
    attempt_id = started["attempt"]
    wait_for(lambda: getattr(site.ledger.get(attempt_id), "done", 0) > 0, 30, "the render")
    owner = site.ledger.get(attempt_id)
    assert owner is not None
    duplicate = site.deliver(started["spec"])
    assert duplicate == {**duplicate, "status": "SUCCESSFUL", "returned": "owned"}
    assert web.line()["status"] == "COMPLETED"
    (attempt,) = site.attempts(key)
    assert (attempt.worker, attempt.started_at, attempt.owner) == (
        owner.worker,
        owner.started_at,
        owner.owner,
    ), "the first worker rendered it alone, begun once"
    rendered = digest(site.final(key))
    late = site.deliver(started["spec"])
    assert late == {**late, "status": "SUCCESSFUL", "returned": "not live"}
    assert site.attempts(key) == [attempt]
    assert digest(site.final(key)) == rendered


@pytest.mark.parametrize("site", BACKEND_PARAMS[:1], indirect=True)
def test_the_render_task_s_id_is_recorded_on_its_attempt(site: Site) -> None:
    """The backend names the render task as it queues it: the attempt records that id (not
    the deferred look's), which the worker then renders under, and so does the app's
    task_id_field (written after the start, while the attempt is live)."""
    from django.db import connections  # noqa: PLC0415

    from djangoapp.models import Project  # noqa: PLC0415 - needs django.setup()

    site.test["task_id_field"] = "title"
    site.worker("w1")
    key = site.project()
    web = site.web("submit", key)
    started = web.line()
    assert started["task_id"] is not None
    assert web.line()["status"] == "COMPLETED"
    (attempt,) = site.attempts(key)
    assert attempt.task_id == started["task_id"]
    assert Project.objects.using(site.alias).get(pk=key).title == attempt.task_id
    with connections[site.alias].cursor() as cursor:
        cursor.execute("SELECT id, run_after FROM django_tasks_database_dbtaskresult")
        rows = {uuid.UUID(str(found)).hex: str(after) for found, after in cursor.fetchall()}
    assert rows[uuid.UUID(attempt.task_id).hex].startswith("9999"), "the render, run at once"
    assert len(rows) >= 2, "the look a lease later is another task"


@pytest.mark.parametrize("site", BACKEND_PARAMS[:1], indirect=True)
def test_with_the_immediate_backend_the_render_runs_in_the_submitting_process(
    site: Site,
) -> None:
    """Django's default backend runs a task at once: the executor renders in the caller's
    thread before ``submit()`` returns, as an app's test suite wants."""
    key = site.project()
    web = site.web("submit", key, backend="immediate")
    started = web.line()
    assert started["done"] is True
    assert web.line()["status"] == "COMPLETED"
    (attempt,) = site.attempts(key)
    assert attempt.state is AttemptState.COMPLETED
    assert pid_of(attempt) == web.pid


@pytest.mark.parametrize("site", BACKEND_PARAMS[:1], indirect=True)
def test_a_worker_without_the_runner_setting_fails_the_task_naming_the_setting(
    site: Site,
) -> None:
    """A `db_worker` whose settings lack ``RENDERSTATE_RUNNER`` fails each delivery it
    takes with an error that names the setting and what to put in it, and begins
    nothing."""
    site.start(
        [
            *(sys.executable, "-m", "django", "db_worker", "--queue-name", str(site.test["queue"])),
            *("--interval", "0.1", "--no-startup-delay", "--no-reload"),
        ],
        "unconfigured.log",
        runner=False,
    )
    key = site.project()
    web = site.web("submit", key)
    spec = web.line()["spec"]
    answer = site.deliver(spec)
    assert answer["status"] == "FAILED"
    assert "ImproperlyConfigured" in answer["error"]
    assert 'set RENDERSTATE_RUNNER = "yourproject.renders.make_runner"' in answer["error"]
    (attempt,) = site.attempts(key)
    assert attempt.state is AttemptState.QUEUED, "nothing began it"


@pytest.mark.parametrize("site", BACKEND_PARAMS[:1], indirect=True)
def test_a_db_worker_stopped_twice_mid_render_fails_it_and_keeps_the_previous_video(
    site: Site,
) -> None:
    """The first SIGTERM lets a `db_worker` finish its render; a second stops it at once:
    the render ends FAILED with its reason, its temporary file removed, the video as it
    was."""
    worker = site.worker("w1")
    key = site.project()
    web = site.web("submit", key)
    web.line()
    assert web.line()["status"] == "COMPLETED"
    final = site.final(key)
    previous = digest(final)
    site.test["frames"] = 200  # 10 s: stopped long before its end
    stopped = site.worker("w2")
    worker.stop()
    rerender = site.web("submit", key)
    attempt_id = rerender.line()["attempt"]
    wait_for(
        lambda: (site.ledger.get(attempt_id) or Attempt(0, "", "", AttemptState.QUEUED)).done > 5,
        30,
        "the render",
    )
    os.killpg(stopped.pid, signal.SIGTERM)
    time.sleep(0.2)
    assert stopped.process.poll() is None, "the first signal lets the render go on"
    os.killpg(stopped.pid, signal.SIGTERM)
    stopped.process.wait(timeout=20)
    ended = rerender.line()
    assert ended["status"] == "FAILED", ended
    (attempt, _) = site.attempts(key)
    assert attempt.state is AttemptState.FAILED
    assert attempt.error is not None
    assert "SystemExit" in attempt.error, attempt.error
    assert digest(final) == previous
    only_final(final)


def test_a_render_on_a_db_worker_is_cancelled_from_another_web_process(site: Site) -> None:
    """A re-render runs on a `db_worker`; a web process with no job of it cancels it through
    the ledger: the worker stops at its next heartbeat, the render ends FAILED as cancelled
    with the reason given, the previous video byte-identical and nothing else beside it; a
    second cancel finds nothing to cancel."""
    first = site.worker("w1")
    key = site.project()
    web = site.web("submit", key)
    web.line()
    assert web.line()["status"] == "COMPLETED"
    final = site.final(key)
    previous = digest(final)
    site.test["frames"] = 400  # 20 s: cancelled long before its end
    site.worker("w2")  # renders with the new setting
    first.stop()
    rerender = site.web("submit", key)
    attempt_id = rerender.line()["attempt"]
    wait_for(
        lambda: (site.ledger.get(attempt_id) or Attempt(0, "", "", AttemptState.QUEUED)).done > 5,
        30,
        "the render",
    )
    other = site.web("cancel", key, "the editor changed the timeline")
    assert other.line() == {"cancelled": True}
    ended = rerender.line()
    assert ended["status"] == "FAILED", ended
    attempt = site.ledger.get(attempt_id)
    assert attempt is not None
    assert attempt.state is AttemptState.FAILED
    assert "cancelled: the editor changed the timeline" in (attempt.error or ""), attempt.error
    assert attempt.done < 400
    assert site.status(key) == "FAILED"
    assert digest(final) == previous
    only_final(final)
    again = site.web("cancel", key, "twice")
    assert again.line() == {"cancelled": False}


@pytest.mark.parametrize("site", BACKEND_PARAMS[:1], indirect=True)
def test_a_backend_that_cannot_defer_is_refused_before_anything_starts(site: Site) -> None:
    """The takeover of a dead worker's render needs ``run_after``: an executor on a backend
    without it is refused where it is built, naming the backend and what to use instead."""
    key = site.project()
    web = site.web("submit", key, backend="no defer")
    assert web.process.wait(timeout=60) == 1
    error = web.output()
    assert "ValueError: the tasks backend 'default' (NoDeferBackend) cannot defer a task" in error
    assert "use django_tasks_db.DatabaseBackend" in error
    assert site.status(key) == "DRAFT"
    assert site.attempts(key) == []


@pytest.mark.parametrize("site", BACKEND_PARAMS[:1], indirect=True)
def test_a_look_at_an_attempt_that_never_committed_ends_its_chain(site: Site) -> None:
    """The first delivery of a spec may arrive before its start committed, so it queues its
    look; a later look that finds no such attempt queues nothing more, and fails naming
    the attempt."""
    site.test["lease"] = 0.5  # how long a delivery waits for the attempt to appear
    site.worker("w1")
    key = site.project()
    spec = {
        "version": 1,
        "project_key": key,
        "output_path": f"projects/{key}/final.mp4",
        "scope": "djangoapp.project",
        "attempt_id": 999999,
        "actor": None,
    }
    first = site.deliver(spec, 1)
    assert first["status"] == "FAILED"
    assert "attempt 999999 is not an attempt of djangoapp.project" in first["error"]
    assert first["tasks"] == 2, "the first delivery queued its look"
    later = site.deliver(spec, 2)
    assert later["status"] == "FAILED"
    # That look (if it ran) and this delivery queued nothing: the chain has ended.
    assert later["tasks"] == 3
