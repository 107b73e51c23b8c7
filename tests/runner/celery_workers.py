"""Real `celery worker` subprocesses for the tests, started and stopped reliably.

Each test gets its own :class:`~celery_app.Settings`: a Redis key prefix and a queue of its
own (parallel runs never see each other's messages or unacknowledged deliveries), a SQLite
file both sides share, a media root. Workers run in their own session so a SIGKILL takes the
whole worker (pool children included), as a machine that dies would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from runner.celery_app import Settings

TESTS = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def new_settings(tmp_path: Path, **overrides: object) -> Settings:
    token = uuid.uuid4().hex[:12]
    values: dict[str, object] = {
        "broker": REDIS_URL,
        "prefix": f"renderstate-test-{token}:",
        "queue": f"renderstate-test-{token}",
        "db": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        "media": str(tmp_path / "media"),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def forget_keys(settings: Settings) -> None:
    """Remove every Redis key of this test's prefix."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.prefix}*", count=500))
    if keys:
        client.delete(*keys)


def queued(settings: Settings) -> int:
    """How many messages wait in the test's queue."""
    return int(redis.Redis.from_url(REDIS_URL).llen(f"{settings.prefix}{settings.queue}"))


def closed_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Worker:
    """One `celery worker` process (in a session of its own), logging to a file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=TESTS,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        msg = f"celery worker {self.name} did not start:\n{self.output()[-4000:]}"
        raise AssertionError(msg)

    def kill(self) -> None:
        """SIGKILL the worker and its pool children: no clean-up, no acknowledgement."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown (SIGTERM: finish the current task), then SIGKILL if it hangs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            self.process.wait()


class Workers:
    """Starts workers for one test's settings; stops them all at the end of the test."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.started: list[Worker] = []

    def start(
        self,
        name: str,
        *,
        pool: str = "solo",
        concurrency: int = 1,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Worker:
        env = {**os.environ, **self.settings.to_env(), **(env or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
        if command is None:
            command = [
                sys.executable,
                "-m",
                "celery",
                "--app",
                "runner.celery_app",
                "worker",
                "--hostname",
                f"{name}-{self.settings.queue}@%h",
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--queues",
                self.settings.queue,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ]
        worker = Worker(name, command, env, self.logs / f"{name}-{len(self.started)}.log")
        self.started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@contextmanager
def workers_for(settings: Settings, logs: Path) -> Iterator[Workers]:
    logs.mkdir(parents=True, exist_ok=True)
    workers = Workers(settings, logs)
    try:
        yield workers
    finally:
        workers.stop_all()
        forget_keys(settings)
