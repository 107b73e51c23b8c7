"""Child process of the ledger's cross-process tests, on the command line's SQLAlchemy store.

Usage:
    python ledger_child.py render URL MEDIA KEY LEASE INTERVAL FRAMES DELAY [TIMES [HOLD]]
    python ledger_child.py recover URL MEDIA LEASE SECONDS
    python ledger_child.py poll URL KEY SECONDS

``render`` renders project KEY TIMES times in a row (default 1) with a slow FakeRenderer,
printing ``rendering`` once frame 3 of the first render is reported, then the final status
of each render; each render holds its first frame for HOLD seconds (default 0), so readers
see every attempt at 0 before it moves.

``recover`` calls ``recover_interrupted()`` every 100 ms for SECONDS and prints the
recovered keys as JSON.

``poll`` reads the project's current attempt every 20 ms for SECONDS and prints the
observations ``[attempt id, state, phase, fraction]`` as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from renderstate import RenderRunner
from renderstate.cli._store import Project, Store
from renderstate.ledger import Ledger
from renderstate.testing import FakeRenderer
from renderstate.typing import ProgressSink


def _ledger(store: Store, lease: float, interval: float = 0.2) -> Ledger:
    return Ledger(store.ledger.store, lease=lease, progress_interval=interval)


def render(url: str, media: str, key: str, lease: str, interval: str, *rest: str) -> None:
    frames, delay, *times = rest
    hold = float(times[1]) if len(times) > 1 else 0.0
    store = Store(url)
    slow = FakeRenderer(frames=int(frames), frame_delay=float(delay))
    told = []

    # The description the renderer gives with its frames, when the test asks for one.
    label = os.environ.get("RENDER_LABEL")

    def renderer(project: object, target: Path, progress: ProgressSink) -> None:
        def sink(phase: str, done: int, total: int) -> None:
            if done == 1 and hold:
                time.sleep(hold)
            if label is None:
                progress(phase, done, total)
            else:
                progress(phase, done, total, label=label)  # type: ignore[call-arg]
            if done == 3 and not told:
                told.append(True)
                print("rendering", target, flush=True)

        slow(project, target, sink)

    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        renderer,
        media_root=media,
        ledger=_ledger(store, float(lease), float(interval)),
        loader=store.loader,
    )
    for _ in range(int(times[0]) if times else 1):
        status = runner.submit(store.get(key), actor="child").wait()
        print("status", status.value, flush=True)
    runner.shutdown()
    store.close()


def recover(url: str, media: str, lease: str, seconds: str) -> None:
    store = Store(url)
    runner: RenderRunner[Project] = RenderRunner(
        store.adapter,
        FakeRenderer(),
        media_root=media,
        ledger=_ledger(store, float(lease)),
        loader=store.loader,
    )
    recovered: list[str] = []
    calls = 0
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        recovered += [str(r.project_key) for r in runner.recover_interrupted()]
        calls += 1
        time.sleep(0.1)
    print(json.dumps({"recovered": recovered, "calls": calls}), flush=True)
    store.close()


def poll(url: str, key: str, seconds: str) -> None:
    store = Store(url)
    seen: list[tuple[int, str, str, float]] = []
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        attempt = store.ledger.current(Project.__tablename__, key)
        if attempt is not None:
            seen.append((attempt.id, attempt.state.value, attempt.phase, attempt.fraction))
        time.sleep(0.02)
    print(json.dumps(seen), flush=True)
    store.close()


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    {"render": render, "recover": recover, "poll": poll}[command](*arguments)
