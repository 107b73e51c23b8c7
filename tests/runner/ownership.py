"""The pieces of the ownership tests: a worker's store with a short lock timeout, a store that
can go down, a renderer held mid-render, an executor that sends its jobs away.

Also run as a child process (``python ownership.py URL MEDIA SPEC_JSON LOCK_TIMEOUT``): a
worker in another process that received a job spec and runs it, with its database
statements giving up on a row lock after ``LOCK_TIMEOUT`` seconds; it prints the job's
status and error type as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from renderstate import RenderJob, RenderRunner
from renderstate.adapters.sqlalchemy import SQLAlchemyAdapter
from renderstate.cli._store import ATTEMPTS, Project
from renderstate.ledger import Attempt, AttemptState, Ledger
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore, SQLAlchemyLoader
from renderstate.runner import JobSpec
from renderstate.testing import FakeRenderer
from renderstate.typing import ProgressSink


def lock_timeout_args(url: str, seconds: float) -> dict[str, object]:
    """Connection arguments that make a statement give up on a row lock after ``seconds``."""
    if url.startswith("sqlite"):
        return {"timeout": seconds}
    if url.startswith("postgresql"):
        return {"options": f"-c lock_timeout={int(seconds * 1000)}"}
    return {"init_command": f"SET SESSION innodb_lock_wait_timeout={max(1, round(seconds))}"}


class Worker:
    """One worker's own connections to the project's database: adapter, ledger, loader."""

    def __init__(self, url: str, *, lock_timeout: float | None = None) -> None:
        args = {} if lock_timeout is None else lock_timeout_args(url, lock_timeout)
        self.engine = create_engine(url, connect_args=args)
        sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.adapter = SQLAlchemyAdapter(sessions)
        self.attempts = SQLAlchemyAttemptStore(sessions, table=ATTEMPTS)
        self.loader: SQLAlchemyLoader[Project] = self.attempts.loader(Project)

    def runner(
        self,
        renderer: Any,
        media: Path,
        *,
        lease: float,
        store: Any = None,
        **options: Any,
    ) -> RenderRunner[Project]:
        ledger = Ledger(
            self.attempts if store is None else store, lease=lease, progress_interval=lease / 10
        )
        return RenderRunner(
            self.adapter, renderer, media_root=media, ledger=ledger, loader=self.loader, **options
        )

    def close(self) -> None:
        self.engine.dispose()


class Held:
    """A renderer that writes ``content``, reports frame 1, and waits to be released."""

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.started = threading.Event()
        self.release = threading.Event()
        self.targets: list[Path] = []

    def __call__(self, project: object, target: Path, progress: ProgressSink) -> None:
        self.targets.append(target)
        target.write_bytes(self.content)
        progress("rendering", 1, 3)
        self.started.set()
        assert self.release.wait(60), "never released"
        progress("rendering", 2, 3)
        progress("rendering", 3, 3)


class Sending:
    """An executor that sends each job away (as Celery's does) and keeps its spec."""

    def __init__(self) -> None:
        self.specs: list[JobSpec] = []

    def schedule(self, job: RenderJob[Any]) -> None:
        self.specs.append(job.spec)
        job.hand_off()

    def shutdown(self, wait: bool = True) -> None:
        pass


class Flaky:
    """An attempt store whose database can be cut off: while ``down`` is set every call
    fails as a lost connection does."""

    def __init__(self, store: SQLAlchemyAttemptStore) -> None:
        self._store = store
        self.down = threading.Event()

    def _check(self) -> None:
        if self.down.is_set():
            raise OperationalError("UPDATE renderstate_attempt", {}, Exception("server gone"))

    def atomic(self, project: Any) -> Any:
        self._check()
        return self._store.atomic(project)

    def scope(self, project: Any) -> str:
        return self._store.scope(project)

    def insert(self, attempt: Attempt) -> Attempt:
        self._check()
        return self._store.insert(attempt)

    def update(
        self,
        attempt_id: int,
        values: Mapping[str, object],
        *,
        states: Collection[AttemptState],
        lease_before: float | None = None,
        worker: str | None = None,
        owner: str | None = None,
    ) -> bool:
        self._check()
        fences: dict[str, Any] = {"lease_before": lease_before, "worker": worker}
        if owner is not None:
            fences["owner"] = owner
        return self._store.update(attempt_id, values, states=states, **fences)

    def get(self, attempt_id: int) -> Attempt | None:
        self._check()
        return self._store.get(attempt_id)

    def history(self, scope: str, key: str, *, limit: int | None = None) -> list[Attempt]:
        self._check()
        return self._store.history(scope, key, limit=limit)

    def live(self, scope: str, key: str) -> list[Attempt]:
        self._check()
        return self._store.live(scope, key)

    def expired(self, now: float, *, scope: str | None = None) -> list[Attempt]:
        self._check()
        return self._store.expired(now, scope=scope)


def in_thread(call: Callable[[], RenderJob[Project]]) -> tuple[threading.Thread, list[Any]]:
    """Run ``call`` in a new thread; its job (or exception) lands in the returned list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def main(url: str, media: str, spec: str, lock_timeout: str) -> None:
    timeout = float(lock_timeout)
    worker = Worker(url, lock_timeout=timeout if timeout > 0 else None)
    runner = worker.runner(FakeRenderer(frames=5), Path(media), lease=30.0, persist_timeout=5.0)
    job = runner.execute(JobSpec.from_dict(json.loads(spec)))
    runner.shutdown()
    worker.close()
    error = None if job.error is None else type(job.error).__name__
    status = None if job.status is None else job.status.value
    print(json.dumps({"status": status, "error": error, "pid": os.getpid()}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
