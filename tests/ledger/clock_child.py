"""A render in a process whose clock is off: the body of ``test_clocks``' child processes.

Only the standard library is imported at the top: the child offsets its time source
(``time.time``, what ``faketime`` offsets for a whole process) before anything imports
renderstate, as a machine whose clock runs ahead or behind would.
"""

from __future__ import annotations

import os
import pickle
import time
from typing import Any


def render_with_skewed_clock(
    pickled: bytes, key: object, timing: tuple[float, float, float], results: Any
) -> None:
    """Start and begin the project's render, renew its lease for ``alive`` s, then die.

    ``timing`` is ``(offset, lease, alive)``: how far this process's clock is off, the
    lease, and how long the render stays alive.

    Puts ``("began", key, attempt id)`` on ``results``, then ``("stopped", key, every
    heartbeat matched, monotonic times at which the last one was called and returned)``;
    any error as ``("error", key, repr)``. The attempt is left rendering, as a killed
    worker leaves it.
    """
    offset, lease, alive = timing
    real = time.time
    time.time = lambda: real() + offset  # before renderstate is imported, like faketime
    try:
        from renderstate.ledger import Ledger  # noqa: PLC0415 - after the clock is off

        harness = pickle.loads(pickled)
        harness.prepare()
        ledger = Ledger(harness.store(), lease=lease, progress_interval=lease / 10)
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
        # A skewed clock stands for another machine's: named as one, so its death is
        # told by its lease alone (a process of this machine is recovered once gone).
        attempt = ledger.begin(attempt, worker=f"skewed-clock-host:{os.getpid()}")
        results.put(("began", key, attempt.id))
        renewed = []
        sent = time.monotonic()
        deadline = sent + alive
        while time.monotonic() < deadline:
            time.sleep(lease / 8)
            # The lease it writes counts from the database's time during this call (on
            # PostgreSQL, now() is its transaction's start): from no later than here.
            sent = time.monotonic()
            renewed.append(ledger.heartbeat(attempt, {"phase": "rendering"}))
        last = time.monotonic()
        results.put(("stopped", key, all(renewed), sent, last))
        harness.release()
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(("error", key, repr(exc)))
