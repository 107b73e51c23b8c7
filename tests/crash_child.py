"""Child process of the crash-point tests: a journaled re-render, and the recovery after it.

Usage:
    python crash_child.py publishing URL MEDIA KEY
    python crash_child.py recover URL MEDIA KEY
    python crash_child.py runner URL MEDIA KEY MODE
    python crash_child.py runner-recover URL MEDIA KEY MODE
    python crash_child.py standalone URL MEDIA KEY

``runner`` re-renders project KEY through a ``RenderRunner`` (inline executor), MODE
``ledger`` (an attempt ledger), ``own-path`` (a ledger and an ``own_path`` renderer) or
``plain`` (no ledger). ``runner-recover`` recovers in a fresh process through the public
API alone: ``RenderRunner.recover_interrupted()`` (with a ledger, with a clock past every
lease; without one, given the project whatever its status), and prints the state as JSON.

``publishing`` re-renders project KEY the way an app without a runner does: it starts the
render (``claim_render``), writes a small new video (and scratch files) inside
``renderstate.files.publishing(final, commit=...)`` whose commit is
``lifecycle.complete()``, and prints ``done``. The crash-point tests kill it at every file
and sync system call in turn.

``standalone`` is the same with the attempt ledger (a clock past every lease), as an app
with no runner but a ledger runs it, told where the video is by ``final_file``.

``recover`` is what the app runs after a crash, in a fresh process:
``renderstate.recovery.recover_interrupted`` with the project (whatever its status) and its
final file; then it prints the project's row and the final file's state as JSON.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from crash_store import ChildStore
from renderstate import ProjectLifecycle, RenderRunner, Status, claim_render
from renderstate.cli._store import Project
from renderstate.files import publishing, scratch_path
from renderstate.ledger import Ledger
from renderstate.recovery import recover_interrupted
from renderstate.runner import own_path
from renderstate.testing import InlineExecutor
from renderstate.typing import ProgressSink

NEW = b"the new video, " * 300  # a few KB, like a tiny render


def final_file(media: str, key: str) -> Path:
    return Path(media) / "projects" / key / "final.mp4"


def output_path(key: str) -> str:
    return f"projects/{key}/final.mp4"


def publish_alone(url: str, media: str, key: str) -> None:
    store = ChildStore(url)
    lifecycle = ProjectLifecycle(store.get(key), store.adapter)

    def commit() -> None:
        lifecycle.complete(output_path(key))

    with claim_render(lifecycle), publishing(final_file(media, key), commit=commit) as target:
        target.write_bytes(NEW)
        scratch_path(target, "soundtrack.wav").write_bytes(b"scratch")
        target.with_name(target.name + ".pieces.txt").write_bytes(b"scratch")
    store.close()
    print("done", flush=True)


def recover(url: str, media: str, key: str) -> None:
    store = ChildStore(url)
    final = final_file(media, key)
    recover_interrupted(store.adapter, [store.get(key)], final_file=lambda _: final)
    print(json.dumps(state(store, final, key)), flush=True)
    store.close()


def state(store: ChildStore, final: Path, key: str) -> dict[str, object]:
    project = store.get(key)
    return {
        "status": project.status,
        "updated_at": project.updated_at.isoformat(),
        "output_path": project.output_path,
        "final": hashlib.sha256(final.read_bytes()).hexdigest() if final.exists() else None,
        "listing": sorted(p.name for p in final.parent.iterdir()) if final.parent.exists() else [],
    }


def write_new(project: object, target: Path, progress: ProgressSink) -> None:
    progress("rendering", 0, 1)
    target.write_bytes(NEW)
    scratch_path(target, "soundtrack.wav").write_bytes(b"scratch")
    progress("rendering", 1, 1)


def runner_for(
    store: ChildStore, media: str, mode: str, *, clock: float = 0.0
) -> RenderRunner[Project]:
    if mode == "plain":
        return RenderRunner(store.adapter, write_new, media_root=media, executor=InlineExecutor())

    def render_elsewhere(project: Project, on_progress: object) -> Path:
        out = Path(media) / "renders" / f"{project.id}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(NEW)
        return out

    renderer = own_path(render_elsewhere) if mode == "own-path" else write_new
    # A long lease: the heartbeat thread stays idle during the render; recovery runs with
    # a clock past it instead.
    ledger = Ledger(store.attempts, lease=60, clock=lambda: time.time() + clock)
    return RenderRunner(
        store.adapter,
        renderer,  # type: ignore[arg-type]
        media_root=media,
        ledger=ledger,
        loader=store.loader,
        executor=InlineExecutor(),
    )


def render(url: str, media: str, key: str, mode: str) -> None:
    store = ChildStore(url)
    runner = runner_for(store, media, mode)
    status = runner.submit(store.get(key)).wait(60)
    runner.shutdown()
    store.close()
    print("done", status.value, flush=True)
    assert status is Status.COMPLETED


def runner_recover(url: str, media: str, key: str, mode: str) -> None:
    store = ChildStore(url)
    final = final_file(media, key)
    # With a ledger: a clock past every lease, as a recovery after the lease would run.
    runner = runner_for(store, media, mode, clock=3600.0)
    if mode == "plain":
        runner.recover_interrupted([store.get(key)])  # whatever its status
    else:
        runner.recover_interrupted()
    runner.shutdown()
    print(json.dumps(state(store, final, key)), flush=True)
    store.close()


def standalone(url: str, media: str, key: str) -> None:
    """``renderstate.recovery.recover_interrupted`` with the ledger, as an app with no runner."""
    store = ChildStore(url)
    final = final_file(media, key)
    ledger = Ledger(store.attempts, lease=60, clock=lambda: time.time() + 3600.0)
    recover_interrupted(
        store.adapter,
        ledger=ledger,
        loader=store.loader,
        final_file=lambda p: final_file(media, p.id),
        media_root=media,
    )
    print(json.dumps(state(store, final, key)), flush=True)
    store.close()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    commands = {
        "publishing": publish_alone,
        "recover": recover,
        "runner": render,
        "runner-recover": runner_recover,
        "standalone": standalone,
    }
    commands[command](*args)
