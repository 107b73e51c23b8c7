"""Leases on the database's clock: processes whose clocks differ share one time.

Two real child processes render, one with its clock a few leases behind, one a few leases
ahead; this process (its clock right) runs recovery the whole time. Their live renders must
not be failed by it, and once they die their attempts must be recovered one lease after
their last heartbeat, not sooner and not a skew later. Run on every store and database.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import time
from typing import Any

from renderstate import Status
from renderstate.ledger import Ledger

from .clock_child import render_with_skewed_clock
from .contract import LedgerHarness

LEASE = 3.0
SKEW = 4.0 * LEASE
"""How far the children's clocks are off: four leases, so that a recovery on the
child's clock would come at least SKEW - LATE (9 s) after the bound below."""
ALIVE = 1.5 * LEASE
"""How long the children renew their leases before they die."""
LATE = LEASE
"""How much later than one lease after the last heartbeat recovery may come (it polls
every 0.1 s on a shared, loaded machine: 2 s proved too tight at load 20). A recovery on
the skewed clock would come SKEW (12 s) late, so the bound still tells the two apart."""


def test_processes_with_different_clocks_share_the_databases(sql_harness: LedgerHarness) -> None:
    """A worker whose clock is 4 leases behind, and one 4 leases ahead, render while a
    process with the right clock recovers: neither live render is failed, and each dead
    one is recovered one lease after its last heartbeat (within one more lease)."""
    harness = sql_harness
    ledger = Ledger(harness.store(), lease=LEASE)
    keys = {-SKEW: harness.insert(Status.COMPLETED), SKEW: harness.insert(Status.COMPLETED)}
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    pickled = pickle.dumps(harness)
    children = [
        context.Process(
            target=render_with_skewed_clock,
            args=(pickled, key, (offset, LEASE, ALIVE), results),
        )
        for offset, key in keys.items()
    ]
    for child in children:
        child.start()
    began: dict[object, int] = {}
    stopped: dict[object, tuple[bool, float, float]] = {}
    recovered: dict[int, float] = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(recovered) < len(keys):
        for found in ledger.recover(harness.adapter(), harness.loader(), **harness.options):
            recovered[found.attempt.id] = time.monotonic()
        try:
            while True:
                message = results.get_nowait()
                assert message[0] != "error", message
                if message[0] == "began":
                    began[message[1]] = message[2]
                else:
                    stopped[message[1]] = (message[2], message[3], message[4])
        except queue.Empty:
            time.sleep(0.1)
    for child in children:
        child.join(timeout=30)
    harness.release()
    outcome: dict[str, Any] = {}
    for offset, key in keys.items():
        name = "behind" if offset < 0 else "ahead"
        assert key in stopped, (name, began, stopped, recovered)
        alive, last_sent, last_done = stopped[key]
        at = recovered.get(began[key], float("inf"))
        outcome[name] = (alive, round(at - last_sent, 2), round(at - last_done, 2))
        assert harness.row(key)["status"] == harness.literal(Status.FAILED)
    # Every heartbeat of both live renders matched (none was failed by the recovery),
    # and each was recovered a lease after its last one, not a skew sooner or later: no
    # sooner than a lease after that heartbeat was sent (its lease counts from then or
    # later: a loaded machine may take a while to commit it), at most LATE after the lease
    # that followed its commit.
    assert all(alive for alive, _, _ in outcome.values()), outcome
    assert all(since_sent >= LEASE - 0.2 for _, since_sent, _ in outcome.values()), outcome
    assert all(since_done <= LEASE + LATE for _, _, since_done in outcome.values()), outcome
