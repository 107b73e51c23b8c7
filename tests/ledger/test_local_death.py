"""A dead owner on this machine is seen at once: recovery and a takeover end its attempt
without waiting out its lease, while a live process, a reused process id, another machine or
namespace, and a worker name without the process's identity are never taken for dead.

Every owner here is a real process: it begins the attempt itself (so the ledger records its
own worker name) and is SIGKILLed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from renderstate import ProjectLifecycle
from renderstate.cli._store import Store
from renderstate.exceptions import AttemptOwnedError
from renderstate.ledger import Attempt, AttemptState, Ledger, this_worker
from renderstate.ledger._identity import machine_id, parse_worker, process_gone, start_time
from renderstate.ledger._owners import dead_owner, owner_gone, worker_label

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process identity is read from /proc (Linux)"
)

LEASE = 60.0
"""Long: a recovery or takeover that waited for it would never happen within a test."""

_OWNER = textwrap.dedent(
    """
    import sys
    from renderstate import ProjectLifecycle
    from renderstate.cli._store import Store
    from renderstate.ledger import Ledger

    store = Store(sys.argv[1])
    ledger = Ledger(store.ledger.store, lease=float(sys.argv[3]))
    attempt = ledger.get(int(sys.argv[2]))
    begun = ledger.begin(attempt)
    print(begun.worker, flush=True)
    sys.stdin.read()  # hold it until killed
    """
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(f"sqlite:///{tmp_path / 'death.db'}")
    yield made
    made.close()


class Owner:
    """A real process that begins an attempt and holds it until it is killed."""

    def __init__(self, store: Store, attempt: Attempt) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _OWNER, store.url, str(attempt.id), str(LEASE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.worker = self.process.stdout.readline().strip()
        assert self.worker, "the owner could not begin the attempt"

    def kill(self, *, reap: bool = True) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        if reap:
            self.process.wait()
        else:
            # Dead, not collected: a zombie until the end of the test.
            while (_state(self.process.pid)) != "Z":
                os.sched_yield()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


def _state(pid: int) -> str:
    text = Path(f"/proc/{pid}/stat").read_bytes()
    return text[text.rfind(b")") + 2 :].split()[0].decode()


def _started(store: Store, title: str = "owned") -> tuple[object, Attempt]:
    project = store.create(title, {})
    _, attempt = Ledger(store.ledger.store, lease=LEASE).start(
        ProjectLifecycle(project, store.adapter)
    )
    return project, attempt


@pytest.fixture
def owners() -> Iterator[list[Owner]]:
    made: list[Owner] = []
    yield made
    for owner in made:
        owner.close()


def test_this_worker_names_the_process_its_start_and_its_machine() -> None:
    """The worker name reads ``host:pid`` first, then the start time from
    /proc/self/stat and the digest of this boot and PID namespace; people see ``host:pid``."""
    worker = this_worker()
    name = parse_worker(worker)
    assert (name.host, name.pid) == (socket.gethostname(), os.getpid())
    assert name.start == start_time(os.getpid())
    assert name.machine == machine_id()
    assert worker == f"{socket.gethostname()}:{os.getpid()}@{name.start}/{name.machine}"
    assert worker_label(worker) == f"{socket.gethostname()}:{os.getpid()}"
    assert worker_label("render-host:42") == "render-host:42"
    assert not process_gone(worker), "this very process is never gone"


def test_an_earlier_version_s_worker_name_parses_as_before() -> None:
    """``host:pid`` (written before the identity suffix, or an app's own name) still gives
    its host and pid, and nothing about identity."""
    assert parse_worker("render-host:42") == ("render-host", 42, None, None)
    assert parse_worker("a:b:7") == ("a:b", 7, None, None)
    assert parse_worker("no-pid") == ("no-pid", None, None, None)
    assert parse_worker("h:0") == ("h", None, None, None)


def test_a_killed_owner_is_gone_and_a_live_one_is_not(store: Store, owners: list[Owner]) -> None:
    """While the owner process runs, its attempt's owner is not gone; once SIGKILLed it
    is, whether its parent collected it yet (a zombie) or not."""
    _, first = _started(store, "reaped")
    _, second = _started(store, "zombie")
    owners += [Owner(store, first), Owner(store, second)]
    reaped, zombie = owners
    assert not process_gone(reaped.worker)
    assert not process_gone(zombie.worker)
    reaped.kill()
    zombie.kill(reap=False)
    assert process_gone(reaped.worker)
    assert process_gone(zombie.worker)


def test_a_reused_process_id_is_not_mistaken_for_the_owner(owners: list[Owner]) -> None:
    """A worker name naming a live process id with another start time names a process
    that ended (its id was reused): gone. With that process's own start time: not gone."""
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    try:
        start = start_time(live.pid)
        assert start is not None
        here = f"{socket.gethostname()}:{live.pid}"
        assert not process_gone(f"{here}@{start}/{machine_id()}")
        assert process_gone(f"{here}@{start - 1}/{machine_id()}")
        assert process_gone(f"{here}@{start + 1}/{machine_id()}")
    finally:
        live.kill()
        live.wait()
        assert live.stdin is not None
        live.stdin.close()


def test_another_machine_or_namespace_is_never_gone(store: Store, owners: list[Owner]) -> None:
    """A worker name whose machine digest is not this one's (another machine or
    container, even with this host name) is never gone, whatever its process id names
    here; neither is a name without the identity suffix, for recovery."""
    _, attempt = _started(store)
    owners.append(Owner(store, attempt))
    owners[0].kill()
    dead = parse_worker(owners[0].worker)
    assert dead.machine is not None
    other = "0" * 12 if dead.machine != "0" * 12 else "1" * 12
    assert not process_gone(f"{dead.host}:{dead.pid}@{dead.start}/{other}")
    assert not process_gone(f"{dead.host}:{os.getpid()}@1/{other}")
    assert not process_gone(f"{dead.host}:{dead.pid}")
    assert process_gone(owners[0].worker)


def test_recovery_fails_a_dead_local_owner_s_render_at_once(
    store: Store, owners: list[Owner]
) -> None:
    """With a 60 s lease, recovery right after the SIGKILL fails the dead owner's render
    (its lease still running), marks its attempt interrupted with the reason, and leaves
    alone a live owner's render and one whose worker is named without identity."""
    ledger = Ledger(store.ledger.store, lease=LEASE)
    dead_project, dead = _started(store, "dead")
    live_project, live = _started(store, "live")
    plain_project, plain = _started(store, "plain")
    owners += [Owner(store, dead), Owner(store, live)]
    ledger.begin(plain, worker=f"{socket.gethostname()}:{owners[0].process.pid}")
    owners[0].kill()
    found = ledger.recover(store.adapter, store.loader)
    assert [r.attempt.id for r in found] == [dead.id]
    assert found[0].local
    ended = ledger.get(dead.id)
    assert ended is not None
    assert ended.state is AttemptState.INTERRUPTED
    assert ended.lease_expires_at is not None
    assert ended.finished_at is not None
    assert ended.finished_at < ended.lease_expires_at, "failed before its lease ran out"
    assert ended.error is not None
    assert "is gone" in ended.error
    assert owners[0].worker in ended.error
    assert store.get(dead_project.id).status == "FAILED"  # type: ignore[attr-defined]
    for project, attempt in ((live_project, live), (plain_project, plain)):
        assert store.get(project.id).status == "PROCESSING"  # type: ignore[attr-defined]
        still = ledger.get(attempt.id)
        assert still is not None
        assert still.state is AttemptState.RENDERING


def test_a_takeover_of_a_dead_local_owner_s_attempt_needs_no_lease_wait(
    store: Store, owners: list[Owner]
) -> None:
    """begin() takes over at once an attempt whose owner, on this machine, was killed
    (its lease still running), and cleans up after it; a live owner's is refused."""
    ledger = Ledger(store.ledger.store, lease=LEASE)
    _, dead = _started(store, "dead")
    _, live = _started(store, "live")
    owners += [Owner(store, dead), Owner(store, live)]
    owners[0].kill()
    seen = ledger.get(dead.id)
    assert seen is not None
    assert dead_owner(seen)
    assert owner_gone(seen)
    cleaned: list[Attempt] = []
    taken = ledger.begin(dead, cleanup=cleaned.append)
    assert (taken.state, taken.worker) == (AttemptState.RENDERING, this_worker())
    assert taken.owner != seen.owner
    assert [a.owner for a in cleaned] == [seen.owner]
    held = ledger.get(live.id)
    assert held is not None
    assert not dead_owner(held)
    with pytest.raises(AttemptOwnedError):
        ledger.begin(live)
    after = ledger.get(live.id)
    assert after is not None
    assert (after.owner, after.worker) == (held.owner, held.worker)
