"""Start an example app's ``serve.py`` as a real server process, and talk HTTP to it.

Every app starts with the same command line, so one harness serves all three:
``python examples/<name>/serve.py --port PORT --database-url URL --media-root DIR``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class AppServer:
    """A running example app: its URL, its media directory and its log."""

    name: str
    port: int
    media_root: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | dict[str, Any] | None = None,
        *,
        content_type: str = "application/json",
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One request on a fresh connection (as concurrent clients would)."""
        if isinstance(body, dict):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {
                **({} if data is None else {"Content-Type": content_type}),
                **(headers or {}),
            }
            conn.request(method, path, body=data, headers=headers)
            raw = conn.getresponse()
            payload = raw.read()
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, payload)
        finally:
            conn.close()

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, body: bytes | str | dict[str, Any] | None = None) -> Response:
        return self.request("POST", path, body)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM the server's process group; SIGKILL it if it has not exited in 15 s."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(15)


@contextlib.contextmanager
def serve(
    name: str, database_url: str, workdir: Path, options: Sequence[str] = ()
) -> Iterator[AppServer]:
    """Run ``examples/<name>/serve.py`` (with ``options``) until the block ends; fail with its
    log if it dies."""
    media_root = workdir / "media"
    log = workdir / f"{name}.log"
    last_error: Exception | None = None
    for _attempt in range(3):  # another process may take the free port before the server
        port = free_port()
        with log.open("ab") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(EXAMPLES / name / "serve.py"),
                    "--port",
                    str(port),
                    "--database-url",
                    database_url,
                    "--media-root",
                    str(media_root),
                    *options,
                ],
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches its workers
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        server = AppServer(name, port, media_root, log, process)
        try:
            _wait_until_ready(server)
        except Exception as exc:
            server.stop()
            last_error = exc
            continue
        try:
            yield server
        finally:
            server.stop()
        return
    msg = f"{name} did not start: {last_error}\n--- its log ---\n{log.read_text(errors='replace')}"
    raise RuntimeError(msg)


def _wait_until_ready(server: AppServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            msg = f"the server exited with code {server.process.returncode}"
            raise RuntimeError(msg)
        try:
            # Any project URL answers once the app is up: 404 for this one.
            if server.get("/projects/00000000-0000-0000-0000-000000000000").status == 404:
                return
        except OSError:
            pass
        time.sleep(0.1)
    msg = f"no answer on port {server.port} after {STARTUP_TIMEOUT} s"
    raise TimeoutError(msg)
