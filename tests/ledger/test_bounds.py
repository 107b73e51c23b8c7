"""Values no store holds: the ledger options, and progress the heartbeat thread cannot record."""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from renderstate import RenderRunner, Status
from renderstate.cli._store import Store
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.typing import ProgressSink


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"lease": True}, r"lease must be a number of seconds in \(0, 3600\], got True"),
        ({"lease": "30"}, r"lease must be a number of seconds in \(0, 3600\], got '30'"),
        ({"lease": float("nan")}, "lease must be a number of seconds"),
        ({"progress_interval": False}, "progress_interval must be at least 0 .* got False"),
        ({"progress_interval": "1"}, "progress_interval must be at least 0 .* got '1'"),
        ({"progress_interval": float("nan")}, "progress_interval must be at least 0"),
        ({"queue_timeout": True, "lease": 1.0}, "queue_timeout must be a number .* got True"),
        ({"queue_timeout": "3600"}, "queue_timeout must be a number .* got '3600'"),
        ({"queue_timeout": None}, "queue_timeout must be a number .* got None"),
    ],
)
def test_a_ledger_option_that_is_not_a_number_of_seconds_is_a_value_error(
    options: dict[str, Any], match: str
) -> None:
    """Ledger(lease=True) (a bool is an int to Python: a one-second lease) or a string where
    seconds belong is a ValueError naming the option, not a lease nobody meant nor a
    TypeError from a comparison."""
    with pytest.raises(ValueError, match=match):
        Ledger(MemoryAttemptStore(), **options)


def test_numbers_of_any_real_kind_are_seconds() -> None:
    """An int, a float or a Fraction is accepted and kept as float seconds."""
    ledger = Ledger(
        MemoryAttemptStore(), lease=60, progress_interval=Fraction(1, 2), queue_timeout=600
    )
    assert (ledger.lease, ledger.progress_interval, ledger.queue_timeout) == (60.0, 0.5, 600.0)


class HugeCounts:
    """A renderer whose frame counts no ledger column holds, reported for a while."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = threading.Event()

    def __call__(self, project: object, target: Path, progress: ProgressSink) -> None:
        target.write_bytes(b"VIDEO")
        deadline = time.monotonic() + self.seconds
        frame = 2**40
        self.started.set()
        while time.monotonic() < deadline:
            frame += 1
            progress("rendering", frame, 2**41)
            time.sleep(0.01)


def test_progress_the_ledger_refuses_does_not_stop_the_lease(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A renderer reporting done=2**40 (beyond the 32-bit column): the heartbeat thread logs
    the refused progress once and keeps renewing the lease without it, so recovery spares
    the render (it used to retry the failing write every tick until the lease expired) and
    the render completes."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    lease = 0.6
    ledger = Ledger(store.ledger.store, lease=lease, progress_interval=0.05)
    renderer = HugeCounts(seconds=4 * lease)
    runner = RenderRunner(store.adapter, renderer, media_root=tmp_path, ledger=ledger)
    try:
        project = store.create("p", {})
        caplog.set_level(logging.WARNING, logger="renderstate.runner")
        job = runner.submit(project)
        assert renderer.started.wait(10)
        assert job.attempt_id is not None
        leases = []
        for _ in range(3):  # three leases long: it lives only if renewed
            time.sleep(lease)
            seen = ledger.get(job.attempt_id)
            assert seen is not None
            assert seen.state is AttemptState.RENDERING
            assert seen.lease_expires_at is not None
            assert seen.lease_expires_at > time.time(), "the lease ran out under a live render"
            leases.append(seen.lease_expires_at)
            assert ledger.recover(store.adapter, store.loader) == []
        assert leases == sorted(leases)
        assert len(set(leases)) == 3, "the lease was not renewed"
        assert job.wait(30) is Status.COMPLETED
        assert store.get(project.id).status == "COMPLETED"
        ended = ledger.get(job.attempt_id)
        assert ended is not None
        assert ended.state is AttemptState.COMPLETED
        refused = [r for r in caplog.records if "cannot record its progress" in r.getMessage()]
        assert len(refused) == 1, [r.getMessage() for r in caplog.records]
    finally:
        runner.shutdown()
        store.close()


@pytest.mark.parametrize("attempt_id", [0, -1, 2**63, 2**70])
def test_a_bare_attempt_id_no_store_holds_is_refused(attempt_id: int) -> None:
    """heartbeat() by a bare id outside a signed 64-bit id is a ValueError, not the
    store's DataError (or an OverflowError from the driver)."""
    ledger = Ledger(MemoryAttemptStore())
    with pytest.raises(ValueError, match="positive 64-bit integer"):
        ledger.heartbeat(attempt_id)
