"""The command line's progress bar: an ETA that never claims the end before it comes."""

from __future__ import annotations

import io
import re
import time
from typing import Any

import pytest
from rich.console import Console

from renderstate import Progress, Status
from renderstate.cli._progress import Eta, show_progress
from renderstate.runner import Phase


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_estimate_before_the_frames_have_moved_for_a_while() -> None:
    """A burst to 38 % in the first second gives no ETA (the runner's said 0 s then)."""
    clock = Clock()
    eta = Eta(clock)
    assert eta(0.01, done=False) == ""
    clock.now += 0.3
    assert eta(0.38, done=False) == ""
    clock.now += 1.0
    assert eta(0.39, done=False) == ""


def test_the_estimate_follows_the_recent_rate() -> None:
    """At a steady 1 % a second, half-way reads about 50 s; after a slowdown, longer."""
    clock = Clock()
    eta = Eta(clock)
    for second in range(1, 51):
        clock.now += 1.0
        text = eta(second / 100, done=False)
    assert text == "eta 50s"
    for step in range(1, 21):  # ten times slower for 20 s: the last 10 s decide
        clock.now += 1.0
        text = eta(0.50 + step / 1000, done=False)
    assert text == "eta 8m 00s"


@pytest.mark.parametrize("fraction", [0.9, 0.99, 0.9999])
def test_never_below_the_floor_while_not_done(fraction: float) -> None:
    """However close to the end, an unfinished render has at least a second left."""
    clock = Clock()
    eta = Eta(clock)
    for step in range(1, 11):
        clock.now += 1.0
        eta(fraction * step / 10, done=False)
    assert eta(fraction, done=False) in {"eta 1s", "eta 2s"}


def test_every_frame_in_but_not_done_is_finishing_then_done_is_nothing() -> None:
    """All frames encoded while the soundtrack is still encoded: "finishing", not "0s"."""
    clock = Clock()
    eta = Eta(clock)
    for step in range(1, 11):
        clock.now += 1.0
        eta(step / 10, done=False)
    assert eta(1.0, done=False) == "finishing"
    assert eta(1.0, done=True) == ""


def test_a_stall_has_no_estimate() -> None:
    """No frame for the whole window: no estimate rather than a made-up one."""
    clock = Clock()
    eta = Eta(clock)
    for step in range(1, 11):
        clock.now += 1.0
        eta(step / 20, done=False)
    for _ in range(12):
        clock.now += 1.0
        text = eta(0.5, done=False)
    assert text == ""


class ScriptedJob:
    """A job whose progress follows a script, one snapshot per wait, then completes."""

    def __init__(self, script: list[Progress]) -> None:
        self.script = script
        self.step = 0

    @property
    def progress(self) -> Progress:
        return self.script[min(self.step, len(self.script) - 1)]

    def done(self) -> bool:
        return self.step >= len(self.script)

    def wait(self, timeout: float | None = None) -> Status:
        if timeout is None:
            return Status.COMPLETED
        time.sleep(0.15)  # the bar redraws ten times a second: each snapshot is drawn
        self.step += 1
        raise TimeoutError


def frames(done: int, total: int, eta: float | None) -> Progress:
    return Progress(Phase.RENDERING, done / total, done, total, 1.0, eta, "rendering")


def test_the_bar_never_says_0s_before_the_end() -> None:
    """Snapshots whose runner ETA is 0 s (a burst, all frames in but not done) show no 0 s."""
    script = [frames(38, 100, 0.4), frames(100, 100, 0.0), frames(100, 100, 0.0)]
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    job: Any = ScriptedJob(script)
    assert show_progress(console, job, "render") is Status.COMPLETED
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "100/100 frames" in drawn
    assert "finishing" in drawn
    assert "eta 0s" not in drawn
