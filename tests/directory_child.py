"""Child process of the directory-output tests: a re-render of an HLS-like folder, and after.

Usage:
    python directory_child.py runner URL MEDIA KEY MODE
    python directory_child.py recover URL MEDIA KEY MODE
    python directory_child.py standalone URL MEDIA KEY MODE
    python directory_child.py takeover URL MEDIA KEY
    python directory_child.py reader MEDIA KEY STOP

``runner`` re-renders project KEY through a ``RenderRunner`` (inline executor) whose
renderer is ``own_path(..., output="directory")``: it writes a new playlist and segments
(and a scratch file beside them) into the directory it is given. MODE is ``ledger`` (an
attempt ledger on the database), ``plain`` (none), or ``fallback`` (none, on a system that
cannot exchange two directories: the swap is two renames). The crash-point tests kill it at
every file and sync system call in turn.

``recover`` is what the app runs after a crash, in a fresh process, through the public
API alone: ``RenderRunner.recover_interrupted()`` (with a ledger, with a clock past every
lease; without one, given the project); it prints the row and the output as JSON.

``standalone`` is the same for an app with no runner: ``renderstate.recovery.recover_interrupted``
(with MODE ``ledger``: the ledger and its loader, with a clock past every lease; otherwise
given the project), told where the output is by ``final_file``.

``takeover`` is a redelivered task (Celery's ``acks_late``) in a fresh process: with a
clock past the lease, ``runner.execute(spec)`` of the dead attempt takes it over and
renders it again; the render function records what the output path held when it began
and where it was told to write. It prints that and the state as JSON.

``reader`` polls the output directory from another process, as a web server serving it
would, until the file STOP exists, and prints every distinct thing it saw as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from sqlalchemy import select

from crash_store import ChildStore
from renderstate import RenderRunner, Status, _directories
from renderstate.cli._store import ATTEMPTS, Project
from renderstate.ledger import Ledger
from renderstate.recovery import recover_interrupted
from renderstate.runner import JobSpec, OnProgress, own_path
from renderstate.testing import InlineExecutor

OLD = {
    "playlist.m3u8": b"#EXTM3U\n#EXT-X-VERSION:3\nold000.ts\nold001.ts\n#EXT-X-ENDLIST\n",
    "old000.ts": b"old segment 0 " * 400,
    "old001.ts": b"old segment 1 " * 400,
}
NEW = {
    "playlist.m3u8": b"#EXTM3U\n#EXT-X-VERSION:3\nnew000.ts\nnew001.ts\n#EXT-X-ENDLIST\n",
    "new000.ts": b"new segment 0 " * 300,
    "new001.ts": b"new segment 1 " * 300,
    "poster/frame.jpg": b"a poster frame",
}


def tree_digest(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}


def output_dir(media: str, key: str) -> Path:
    return Path(media) / "projects" / key / "hls"


def output_path(key: str) -> str:
    return f"projects/{key}/hls"


def read_tree(directory: Path) -> dict[str, str] | None:
    """Every file below ``directory`` by relative path, with its digest (``None``: absent)."""
    if not directory.exists():
        return None
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            found[path.relative_to(directory).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return found


def write_new(project_id: str, on_progress: OnProgress, out_dir: Path) -> None:
    """The app's render function: an HLS folder written where it is told."""
    on_progress(0, len(NEW))
    for done, (name, data) in enumerate(NEW.items(), start=1):
        path = out_dir / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        on_progress(done, len(NEW))
    (out_dir.parent / "ffmpeg2pass-0.log").write_bytes(b"scratch beside the output")


def runner_for(
    store: ChildStore, media: str, mode: str, renderer: object, *, clock: float = 0.0
) -> RenderRunner[Project]:
    options: dict[str, object] = {}
    if mode == "ledger":
        # A long lease: the heartbeat thread stays idle; recovery runs with a later clock.
        options = {
            "ledger": Ledger(store.attempts, lease=60, clock=lambda: time.time() + clock),
            "loader": store.loader,
        }
    return RenderRunner(
        store.adapter,
        renderer,  # type: ignore[arg-type]
        media_root=media,
        executor=InlineExecutor(),
        output_path_for=lambda p: output_path(p.id),
        **options,  # type: ignore[arg-type]
    )


def renderer() -> object:
    return own_path(write_new, argument=lambda p: p.id, target="out_dir", output="directory")


def state(store: ChildStore, media: str, key: str) -> dict[str, object]:
    project = store.get(key)
    folder = output_dir(media, key).parent
    return {
        "status": project.status,
        "updated_at": project.updated_at.isoformat(),
        "output_path": project.output_path,
        "tree": read_tree(output_dir(media, key)),
        "listing": sorted(p.name for p in folder.iterdir()) if folder.exists() else [],
    }


def without_exchange(mode: str) -> str:
    """``fallback`` is ``plain`` on a system that cannot exchange two directories."""
    if mode != "fallback":
        return mode
    # As where renameat2() is missing (not Linux) or refused (EINVAL): two renames instead.
    _directories._renameat2 = None
    return "plain"


def render(url: str, media: str, key: str, mode: str) -> None:
    mode = without_exchange(mode)
    store = ChildStore(url)
    runner = runner_for(store, media, mode, renderer())
    status = runner.submit(store.get(key)).wait(60)
    runner.shutdown()
    store.close()
    print("done", status.value, flush=True)
    assert status is Status.COMPLETED


def recover(url: str, media: str, key: str, mode: str) -> None:
    mode = without_exchange(mode)
    store = ChildStore(url)
    runner = runner_for(store, media, mode, renderer(), clock=3600.0)
    if mode == "plain":
        runner.recover_interrupted([store.get(key)])  # whatever its status
    else:
        runner.recover_interrupted()
    runner.shutdown()
    print(json.dumps(state(store, media, key)), flush=True)
    store.close()


def standalone(url: str, media: str, key: str, mode: str) -> None:
    store = ChildStore(url)
    where = {"final_file": lambda p: output_dir(media, p.id), "media_root": media}
    if mode == "ledger":
        ledger = Ledger(store.attempts, lease=60, clock=lambda: time.time() + 3600.0)
        recover_interrupted(store.adapter, ledger=ledger, loader=store.loader, **where)  # type: ignore[arg-type]
    else:
        recover_interrupted(store.adapter, [store.get(key)], **where)  # type: ignore[arg-type]
    print(json.dumps(state(store, media, key)), flush=True)
    store.close()


def takeover(url: str, media: str, key: str) -> None:
    store = ChildStore(url)
    seen: dict[str, object] = {}
    live = output_dir(media, key)

    def render_again(project_id: str, on_progress: OnProgress, out_dir: Path) -> None:
        seen["at_begin"] = read_tree(live)
        seen["target_is_live"] = out_dir.resolve() == live.resolve()
        seen["live_inode"] = live.stat().st_ino if live.exists() else None
        write_new(project_id, on_progress, out_dir)
        seen["live_after_writing"] = read_tree(live)

    wrapped = own_path(render_again, argument=lambda p: p.id, target="out_dir", output="directory")
    runner = runner_for(store, media, "ledger", wrapped, clock=3600.0)
    with store.sessions() as session:
        newest = session.execute(
            select(ATTEMPTS.c.id, ATTEMPTS.c.scope).order_by(ATTEMPTS.c.id.desc())
        ).first()
    assert newest is not None
    spec = JobSpec(
        project_key=key, output_path=output_path(key), scope=newest.scope, attempt_id=newest.id
    )
    job = runner.execute(spec)
    runner.shutdown()
    print(
        json.dumps({"job": job.status.value, "seen": seen, **state(store, media, key)}), flush=True
    )
    store.close()


def reader(media: str, key: str, stop: str) -> None:
    """Poll the output as a web server would until the file ``stop`` exists.

    Each look opens the output path, lists the directory it opened and reads every file
    listed, through its descriptor; then checks that the path still leads to that
    directory. A look that a swap overtook is counted as such; every other one is what
    the output path held, from the first read to the last.
    """
    live = output_dir(media, key)
    seen: dict[str, int] = {}
    print("reading", flush=True)
    while not Path(stop).exists():
        try:
            fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            seen["missing"] = seen.get("missing", 0) + 1
            continue
        try:
            files = {}
            for name in sorted(os.listdir(fd)):  # noqa: PTH208 - by descriptor
                try:
                    child = os.open(name, os.O_RDONLY, dir_fd=fd)
                except FileNotFoundError:
                    files[name] = "vanished"
                    continue
                with os.fdopen(child, "rb") as reading:
                    files[name] = hashlib.sha256(reading.read()).hexdigest()
            still = live.stat().st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            still = False
        finally:
            os.close(fd)
        label = json.dumps(files, sort_keys=True) if still else "overtaken by a swap"
        seen[label] = seen.get(label, 0) + 1
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    commands = {
        "runner": render,
        "recover": recover,
        "standalone": standalone,
        "takeover": takeover,
        "reader": reader,
    }
    commands[command](*args)
