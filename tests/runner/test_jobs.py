"""Jobs as data: JobSpec, RenderJob.spec/run(), executors that hand jobs off by id, and
RenderRunner.execute() in another thread and in a real child process."""

from __future__ import annotations

import hashlib
import itertools
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from renderstate import RenderRunner, Status
from renderstate.cli._store import Project, Store
from renderstate.exceptions import AttemptSupersededError, ProjectNotFoundError
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger._identity import parse_worker
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.runner import JobSpec, Phase, RenderJob
from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject
from renderstate.typing import Job

CHILD = Path(__file__).with_name("execute_child.py")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class TaskQueue:
    """A task system of its own: jobs by id in a queue, their specs stored as JSON text.

    It never sees a closure: schedule() keeps ``job.spec`` as JSON under a new id, queues
    the id and hands the job off. A worker thread takes ids from the queue and runs each
    spec through ``worker.execute()``.
    """

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.specs: dict[int, str] = {}
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.executed: list[RenderJob[Any]] = []
        self.closed = False

    def schedule(self, job: Job, /) -> None:
        if self.closed:
            msg = "the task queue is closed"
            raise RuntimeError(msg)
        task_id = next(self.ids)
        self.specs[task_id] = json.dumps(job.spec.to_dict())
        self.queue.put(task_id)
        job.hand_off()  # type: ignore[attr-defined]  # a RenderJob: this process lets go

    def shutdown(self, wait: bool = True) -> None:
        self.closed = True

    def work(self, worker: RenderRunner[Any]) -> threading.Thread:
        def loop() -> None:
            while (task_id := self.queue.get()) is not None:
                spec = JobSpec.from_dict(json.loads(self.specs[task_id]))
                self.executed.append(worker.execute(spec))

        thread = threading.Thread(target=loop, name="task-worker")
        thread.start()
        return thread


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db.sqlite3'}"


@pytest.fixture
def web(url: str) -> Iterator[Store]:
    made = Store(url)
    yield made
    made.close()


@pytest.fixture
def worker_store(url: str) -> Iterator[Store]:
    made = Store(url)  # its own engine: the worker shares only the database file
    yield made
    made.close()


def test_job_spec_round_trips_through_json() -> None:
    """to_dict() is plain JSON and from_dict() rebuilds an equal, frozen, hashable spec."""
    spec = JobSpec(
        project_key="42", output_path="projects/42/final.mp4", scope="Project", attempt_id=7
    )
    data = json.loads(json.dumps(spec.to_dict()))
    assert data == {
        "version": 1,
        "project_key": "42",
        "output_path": "projects/42/final.mp4",
        "scope": "Project",
        "attempt_id": 7,
        "actor": None,
    }
    assert JobSpec.from_dict(data) == spec
    assert hash(JobSpec.from_dict(data)) == hash(spec)
    with pytest.raises(AttributeError):
        spec.attempt_id = 8  # type: ignore[misc]


def spec_data(**changes: object) -> dict[str, object]:
    """A spec as to_dict() writes it (with a ledger), with ``changes`` applied."""
    data: dict[str, object] = {
        "version": 1,
        "project_key": "1",
        "output_path": "a.mp4",
        "scope": "P",
        "attempt_id": 3,
        "actor": None,
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"output_path": "a.mp4"}, r"missing the fields \['version', 'project_key'"),
        (spec_data(project_key=""), "project_key must be a non-empty"),
        (spec_data(project_key=42), "project_key must be"),
        (spec_data(output_path="/etc/passwd"), "output_path is unusable"),
        (spec_data(scope=None), "scope and attempt_id"),
        (spec_data(attempt_id=True), "attempt_id must be a positive integer"),
        (spec_data(attempt_id=0), "attempt_id must be a positive integer"),
        (spec_data(colour="red"), r"unknown fields"),
        (spec_data(version=2), "version 2"),
    ],
)
def test_job_spec_refuses_bad_data(data: dict[str, object], match: str) -> None:
    """A spec from the wire is checked field by field; the message names the field."""
    with pytest.raises(ValueError, match=match):
        JobSpec.from_dict(data)


@pytest.mark.parametrize(
    "field", ["version", "project_key", "output_path", "scope", "attempt_id", "actor"]
)
def test_job_spec_from_dict_needs_every_field_to_dict_writes(field: str) -> None:
    """A spec that lacks a field to_dict() writes (even one that may be None, like actor) is
    refused with a message naming it: a default must not stand in for what the sender meant."""
    data = spec_data()
    del data[field]
    with pytest.raises(ValueError, match=rf"missing the fields \['{field}'\]"):
        JobSpec.from_dict(data)
    assert JobSpec.from_dict(spec_data()).actor is None  # None given is fine


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"attempt_id": 2**63}, r"attempt_id must be a positive integer up to 9223372036854775807"),
        ({"attempt_id": 2**70}, "attempt_id must be a positive integer up to"),
        (
            {"project_key": "k" * 256},
            "project_key is 256 characters; the ledger stores at most 255",
        ),
        ({"scope": "s" * 101}, "scope is 101 characters; the ledger stores at most 100"),
        ({"actor": "a" * 256}, "actor is 256 characters; the ledger stores at most 255"),
        (
            {"output_path": "projects/" + "p" * 482 + "/final.mp4"},
            "output_path is 501 characters; the ledger stores at most 500",
        ),
        ({"project_key": "4\x002"}, "project_key contains a NUL character"),
        ({"scope": "P\x00"}, "scope contains a NUL character"),
        ({"actor": "ann\x00"}, "actor contains a NUL character"),
    ],
)
def test_job_spec_refuses_values_no_ledger_store_holds(
    changes: dict[str, object], match: str
) -> None:
    """An attempt id beyond a signed 64-bit BIGINT, a text wider than its ledger column or
    holding a NUL is refused when the spec is built (here or from the wire), naming the
    field, not by a driver's DataError in the worker."""
    with pytest.raises(ValueError, match=match):
        JobSpec.from_dict(spec_data(**changes))
    with pytest.raises(ValueError, match=match):
        JobSpec(**{k: v for k, v in spec_data(**changes).items() if k != "version"})  # type: ignore[arg-type]


def test_job_spec_accepts_the_widest_values_every_store_holds() -> None:
    """The bounds are inclusive: the largest id and the full column widths are a spec."""
    spec = JobSpec.from_dict(
        spec_data(
            attempt_id=2**63 - 1,
            project_key="k" * 255,
            scope="s" * 100,
            actor="a" * 255,
            output_path="projects/" + "p" * 481 + "/final.mp4",
        )
    )
    assert spec.attempt_id == 2**63 - 1
    assert len(spec.output_path) == 500


def test_job_spec_from_something_else_than_a_mapping() -> None:
    """A JSON list (or anything not a mapping) is a TypeError that says what is needed."""
    with pytest.raises(TypeError, match="needs a mapping, got list"):
        JobSpec.from_dict([1, 2])  # type: ignore[arg-type]


def test_the_spec_names_the_attempt_with_a_ledger(tmp_path: Path) -> None:
    """With a ledger the spec carries scope and attempt id; without one, neither."""
    attempts = MemoryAttemptStore()
    project = MemoryProject()
    seen: list[JobSpec] = []

    class Recording(InlineExecutor):
        def schedule(self, job: Job, /) -> None:
            seen.append(job.spec)
            super().schedule(job)

    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=2),
        media_root=tmp_path,
        executor=Recording(),
        ledger=Ledger(attempts),
        loader=attempts.loader([project]),
    )
    job = runner.submit(project, actor="ann")
    assert seen == [
        JobSpec(
            project_key=str(project.id),
            output_path=f"projects/{project.id}/final.mp4",
            scope="MemoryProject",
            attempt_id=job.attempt_id,
            actor="ann",
        )
    ]
    plain = RenderRunner(
        MemoryAdapter(), FakeRenderer(frames=2), media_root=tmp_path, executor=InlineExecutor()
    )
    other = MemoryProject()
    assert plain.submit(other).spec == JobSpec(
        project_key=str(other.id), output_path=f"projects/{other.id}/final.mp4"
    )


def test_an_executor_that_calls_what_it_gets_keeps_working(tmp_path: Path) -> None:
    """A job is callable (the same as run()), so an executor written for closures works;
    a job runs at most once, however often it is called."""
    calls: list[object] = []

    class CallingExecutor:
        def schedule(self, fn: Any, /) -> None:
            calls.append(fn)
            fn()
            fn()  # a duplicate delivery of the same job object

        def shutdown(self, wait: bool = True) -> None:
            pass

    renderer = FakeRenderer(frames=2)
    runner = RenderRunner(
        MemoryAdapter(), renderer, media_root=tmp_path, executor=CallingExecutor()
    )
    job = runner.submit(MemoryProject())
    assert job.done()
    assert job.status is Status.COMPLETED
    assert calls == [job]
    assert len(renderer.targets) == 1


def test_a_task_system_runs_jobs_by_id_in_another_thread(
    web: Store, worker_store: Store, tmp_path: Path
) -> None:
    """Submit hands each job to the task queue as JSON; a worker runner with its own
    database connection executes them by id; the submitting runner follows the ledger."""
    media = tmp_path / "media"
    tasks = TaskQueue()
    sender: RenderRunner[Project] = RenderRunner(
        web.adapter,
        FakeRenderer(frames=3),
        media_root=media,
        executor=tasks,
        ledger=web.ledger,
        loader=web.loader,
    )
    worker: RenderRunner[Project] = RenderRunner(
        worker_store.adapter,
        FakeRenderer(frames=4),
        media_root=media,
        ledger=worker_store.ledger,
        loader=worker_store.loader,
    )
    projects = [web.create(f"p{i}", {}) for i in range(3)]
    jobs = [sender.submit(p, actor="web") for p in projects]
    assert all(p.status == "PROCESSING" for p in projects)
    assert tasks.specs.keys() == {1, 2, 3}
    thread = tasks.work(worker)
    try:
        assert [job.wait(timeout=60) for job in jobs] == [Status.COMPLETED] * 3
    finally:
        tasks.queue.put(None)
        thread.join(60)
    for project, job in zip(projects, jobs, strict=True):
        assert job.error is None
        assert job.progress.phase is Phase.DONE
        assert sender.progress(project) == job.progress
        assert web.get(project.id).status == "COMPLETED"
        video = media / "projects" / project.id / "final.mp4"
        assert video.read_bytes().count(b"frame ") == 4  # the worker's renderer wrote it
        attempt = web.ledger.get(job.attempt_id)  # type: ignore[arg-type]
        assert attempt is not None
        assert attempt.state is AttemptState.COMPLETED
        assert attempt.actor == "web"
    assert [j.status for j in tasks.executed] == [Status.COMPLETED] * 3
    assert not list(media.rglob(".*partial*"))
    sender.shutdown()
    worker.shutdown()


def test_a_redelivered_spec_of_an_ended_attempt_does_nothing(
    web: Store, worker_store: Store, tmp_path: Path
) -> None:
    """A task delivered twice: the second execute() renders nothing and saves nothing."""
    media = tmp_path / "media"
    tasks = TaskQueue()
    sender: RenderRunner[Project] = RenderRunner(
        web.adapter,
        FakeRenderer(),
        media_root=media,
        executor=tasks,
        ledger=web.ledger,
        loader=web.loader,
    )
    renderer = FakeRenderer(frames=2)
    worker: RenderRunner[Project] = RenderRunner(
        worker_store.adapter,
        renderer,
        media_root=media,
        ledger=worker_store.ledger,
        loader=worker_store.loader,
    )
    project = web.create("p", {})
    job = sender.submit(project)
    spec = JobSpec.from_dict(json.loads(tasks.specs[1]))
    first = worker.execute(spec)
    assert first.status is Status.COMPLETED
    video = media / "projects" / project.id / "final.mp4"
    before = digest(video)
    again = worker.execute(spec)
    assert again.done()
    assert again.status is Status.COMPLETED  # what the project holds: the first delivery's
    assert isinstance(again.error, AttemptSupersededError)
    assert again.error.state == "completed"
    assert len(renderer.targets) == 1
    assert digest(video) == before
    assert job.wait(timeout=10) is Status.COMPLETED


def test_a_spec_of_a_recovered_attempt_does_nothing(tmp_path: Path) -> None:
    """A handed-off spec that waited longer than its lease is spared by recovery (it waits
    in a queue, where nobody renews it); one that waited longer than the queue timeout
    was recovered (FAILED, retryable), and running it afterwards renders nothing and
    leaves the project FAILED."""
    now = [1_800_000_000.0]
    attempts = MemoryAttemptStore()
    ledger = Ledger(attempts, lease=5, queue_timeout=60, clock=lambda: now[0])
    project = MemoryProject()
    adapter = MemoryAdapter()
    loader = attempts.loader([project])
    tasks = TaskQueue()
    sender = RenderRunner(
        adapter, FakeRenderer(), media_root=tmp_path, executor=tasks, ledger=ledger, loader=loader
    )
    renderer = FakeRenderer(frames=2)
    worker = RenderRunner(adapter, renderer, media_root=tmp_path, ledger=ledger, loader=loader)
    job = sender.submit(project)
    now[0] += 6  # longer than the lease, in the queue: spared
    assert sender.recover_interrupted() == []
    assert project.status == "PROCESSING"
    now[0] += 55  # longer than the queue timeout: lost on the way
    assert [r.target for r in sender.recover_interrupted()] == [Status.FAILED]
    late = worker.execute(JobSpec.from_dict(json.loads(tasks.specs[1])))
    assert late.done()
    assert isinstance(late.error, AttemptSupersededError)
    assert late.status is Status.FAILED
    assert renderer.targets == []
    assert project.status == "FAILED"
    assert job.wait(timeout=5) is Status.FAILED
    assert "interrupted" in str(job.error)


def test_execute_refuses_what_it_cannot_fence(tmp_path: Path) -> None:
    """No ledger, a spec without an attempt, another kind of project, a foreign attempt
    or a deleted project: each is a clear error and nothing runs."""
    plain = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path)
    spec = JobSpec(project_key="1", output_path="a.mp4", scope="MemoryProject", attempt_id=1)
    with pytest.raises(TypeError, match="needs a runner with a ledger and a loader"):
        plain.execute(spec)
    attempts = MemoryAttemptStore()
    project = MemoryProject()
    # A foreign attempt is waited for up to a lease (it may not have committed yet):
    # a short lease keeps that wait to a second.
    ledger = Ledger(attempts, lease=1.0)
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(),
        media_root=tmp_path,
        executor=InlineExecutor(),
        ledger=ledger,
        loader=attempts.loader([project]),
    )
    with pytest.raises(ValueError, match="names no attempt"):
        runner.execute(JobSpec(project_key="1", output_path="a.mp4"))
    with pytest.raises(ValueError, match="for 'Other' projects but the runner's loader loads"):
        runner.execute(JobSpec(project_key="1", output_path="a.mp4", scope="Other", attempt_id=1))
    with pytest.raises(ValueError, match="attempt 99 is not an attempt of MemoryProject"):
        runner.execute(
            JobSpec(project_key="1", output_path="a.mp4", scope="MemoryProject", attempt_id=99)
        )
    job = runner.submit(project)
    gone = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(),
        media_root=tmp_path,
        ledger=ledger,
        loader=attempts.loader([]),
    )
    object.__setattr__(gone._loader, "scope", "MemoryProject")
    with pytest.raises(ProjectNotFoundError):
        gone.execute(job.spec)


def test_hand_off_needs_a_ledger_and_an_unstarted_job(tmp_path: Path) -> None:
    """A job without an attempt cannot run elsewhere; a job that ran here cannot either."""
    runner = RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, executor=InlineExecutor()
    )
    job = runner.submit(MemoryProject())
    with pytest.raises(TypeError, match="only a job recorded in a ledger"):
        job.hand_off()
    attempts = MemoryAttemptStore()
    project = MemoryProject()
    with_ledger = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(),
        media_root=tmp_path,
        executor=InlineExecutor(),
        ledger=Ledger(attempts),
        loader=attempts.loader([project]),
    )
    ran = with_ledger.submit(project)
    with pytest.raises(RuntimeError, match="already started or ended"):
        ran.hand_off()


@pytest.mark.slow
def test_execute_in_a_real_child_process(web: Store, url: str, tmp_path: Path) -> None:
    """The spec crosses a process boundary as JSON text; the child renders the attempt on
    the SQLite file and the parent sees COMPLETED; a second child given the same spec
    changes nothing."""
    media = tmp_path / "media"
    tasks = TaskQueue()
    sender: RenderRunner[Project] = RenderRunner(
        web.adapter,
        FakeRenderer(),
        media_root=media,
        executor=tasks,
        ledger=web.ledger,
        loader=web.loader,
    )
    project = web.create("child", {})
    job = sender.submit(project)

    def child() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, str(CHILD), url, str(media), tasks.specs[1]],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    first = child()
    assert first == {"status": "COMPLETED", "error": None, "pid": first["pid"]}
    assert job.wait(timeout=30) is Status.COMPLETED
    video = media / "projects" / project.id / "final.mp4"
    before = digest(video)
    attempt = web.ledger.get(job.attempt_id)  # type: ignore[arg-type]
    assert attempt is not None
    assert attempt.worker is not None
    assert parse_worker(attempt.worker).pid == first["pid"]
    second = child()
    assert second["status"] == "COMPLETED"
    assert second["error"] == "AttemptSupersededError"
    assert digest(video) == before
    sender.shutdown()
