"""A RenderRunner on worker threads over an ORM's attempt store: the end-to-end check that the
store serves the runner (submit in one thread, render, heartbeat and finish in others)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from renderstate import RenderConflictError, RenderRunner, Status
from renderstate.ledger import AttemptState, Ledger
from renderstate.runner import Phase
from renderstate.typing import ProgressSink

from .contract import LedgerHarness


class Held:
    """A renderer that writes its file, reports frame 1, waits until released, then ends."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, project: object, target: Path, progress: ProgressSink) -> None:
        target.write_bytes(b"VIDEO")
        progress("rendering", 1, self.frames)
        self.started.set()
        assert self.release.wait(30)
        for frame in range(2, self.frames + 1):
            progress("rendering", frame, self.frames)


def render_through_the_runner(harness: LedgerHarness, media_root: Path) -> None:
    """Submit, read progress from a second runner, finish; the attempt tells the story."""
    ledger = Ledger(harness.store(), lease=5.0, progress_interval=0.05)
    renderer = Held(frames=4)
    runner = RenderRunner(
        harness.adapter(), renderer, media_root=media_root, ledger=ledger, **harness.options
    )
    other = RenderRunner(
        harness.adapter(),
        renderer,
        media_root=media_root,
        ledger=Ledger(harness.store()),
        loader=harness.loader(),
        **harness.options,
    )
    try:
        key = harness.insert()
        job = runner.submit(harness.load(key), actor="ann")
        assert renderer.started.wait(30)
        try:
            with_conflict = False
            other.submit(harness.load(key))
        except RenderConflictError:
            with_conflict = True
        assert with_conflict, "a second start while rendering must be refused"
        deadline = time.monotonic() + 10
        seen = other.progress(harness.load(key))
        while (seen is None or seen.frames_done < 1) and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = other.progress(harness.load(key))
        assert seen is not None
        assert (seen.phase, seen.frames_done, seen.frames_total) == (Phase.RENDERING, 1, 4)
        assert other.recover_interrupted() == [], "a live render is never recovered"
        renderer.release.set()
        assert job.wait(30) is Status.COMPLETED, job.error
        row = harness.row(key)
        assert row["status"] == harness.literal(Status.COMPLETED)
        assert row["output"] == f"projects/{key}/final.mp4"
        assert (media_root / "projects" / str(key) / "final.mp4").is_file()
        assert job.attempt_id is not None
        attempt = ledger.get(job.attempt_id)
        assert attempt is not None
        assert attempt.state is AttemptState.COMPLETED
        assert attempt.actor == "ann"
        assert attempt.worker is not None
        assert attempt.rendering_seconds is not None
        done = other.progress(harness.load(key))
        assert done is not None
        assert done.phase is Phase.DONE
    finally:
        renderer.release.set()
        runner.shutdown()
        other.shutdown()
