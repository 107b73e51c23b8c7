"""The attempt ledger's contract, written once and run on every store and database.

A test module subclasses :class:`LedgerContract` with a ``harness_class``: an adapter
harness from ``tests/adapters`` (rows in, rows out, on SQLite, PostgreSQL and MariaDB) that
also builds the ORM's attempt store and project loader.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from adapters.contract import Harness
from renderstate import ProjectLifecycle, Status
from renderstate.exceptions import (
    AttemptOwnedError,
    AttemptSupersededError,
    InvalidTransitionError,
    RenderConflictError,
)
from renderstate.files import create_temporary, remove_temporary_files
from renderstate.ledger import Attempt, AttemptState, Ledger, Renewal, RenewalOutcome
from renderstate.typing import AttemptStore, ProjectLoader

THREADS = 16
PROCESSES = 16


class Clock:
    """A settable clock shared by the ledgers of one test (leases expire when told)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class LedgerHarness(Harness):
    """An adapter harness that also gives the ORM's attempt store and loader."""

    def store(self) -> AttemptStore:
        raise NotImplementedError

    def loader(self) -> ProjectLoader[Any]:
        raise NotImplementedError

    def attempts(self) -> int:
        """How many attempt records the store holds, for every project."""
        raise NotImplementedError

    def ledger(self, clock: Callable[[], float]) -> Ledger:
        """The ledger under test; an async store's harness gives its ledger, awaited."""
        return Ledger(
            self.store(),
            lease=LEASE,
            progress_interval=1.0,
            queue_timeout=QUEUE_TIMEOUT,
            clock=clock,
        )


LEASE = 10.0
QUEUE_TIMEOUT = 100.0


def ledger_for(harness: LedgerHarness, clock: Callable[[], float] | None = None) -> Ledger:
    return harness.ledger(clock or Clock())


def start_in_child(harness: LedgerHarness, key: object, barrier: Any, results: Any) -> None:
    """Child process body: load the project, wait for the others, start it with the ledger."""
    try:
        harness.prepare()
        ledger = ledger_for(harness)
        lifecycle = harness.lifecycle(harness.load(key))
    except Exception as exc:
        barrier.abort()
        results.put(f"error: {exc!r}")
        return
    barrier.wait()
    try:
        ledger.start(lifecycle, output_path="projects/x/final.mp4")
    except RenderConflictError:
        results.put("conflict")
    except Exception as exc:
        results.put(f"error: {exc!r}")
    else:
        results.put("won")
    harness.release()


def recover_and_restart_in_child(
    harness: LedgerHarness, key: object, now: float, results: Any
) -> None:
    """Child process body: recover the project's expired attempt, then start a new one."""
    try:
        harness.prepare()
        ledger = ledger_for(harness, Clock(now))
        recovered = ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)), actor="process 2")
        results.put(("ok", [r.attempt.id for r in recovered], attempt.id))
    except Exception as exc:
        results.put(("error", repr(exc), None))
    harness.release()


class RacingListing:
    """A store whose expired() also lists some live attempts, whatever their lease.

    What a listing sees when those workers renew their leases right after it read them:
    the attempts are listed, yet alive by the time recovery writes.
    """

    def __init__(self, inner: AttemptStore, live: list[int]) -> None:
        self.inner = inner
        self.live_ids = live

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def expired(self, now: float, *, scope: str | None = None) -> list[Attempt]:
        listed = self.inner.expired(now, scope=scope)
        extra = [a for a in map(self.inner.get, self.live_ids) if a is not None]
        return listed + [a for a in extra if a.id not in {b.id for b in listed}]


class LedgerContract:
    """Behaviour every attempt store must show, through :class:`Ledger`."""

    harness_class: type[LedgerHarness]

    def test_start_records_one_queued_attempt(self, harness: LedgerHarness) -> None:
        """A start and its queued attempt are written together; the attempt has the lease."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        record, attempt = ledger.start(lifecycle, output_path="projects/a/final.mp4", actor="ann")
        assert record.target is Status.PROCESSING
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)
        assert attempt.id > 0
        assert attempt.state is AttemptState.QUEUED
        assert attempt.actor == "ann"
        assert attempt.lease_expires_at == clock.now + 10.0
        scope, text = ledger.key(lifecycle)
        assert ledger.current(scope, text) == attempt
        assert ledger.get(attempt.id) == attempt

    def test_refused_start_writes_nothing(self, harness: LedgerHarness) -> None:
        """A start refused with 409 writes no attempt and leaves the row as it was."""
        ledger = ledger_for(harness)
        key = harness.insert(Status.PROCESSING)
        before = harness.attempts()
        with pytest.raises(RenderConflictError):
            ledger.start(harness.lifecycle(harness.load(key)))
        assert harness.attempts() == before
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_recovery_removes_files_before_a_new_attempt_can_start(
        self, harness: LedgerHarness, tmp_path: Path
    ) -> None:
        """Recovery's clean-up of a dead attempt's temporary files happens while the
        project is still locked PROCESSING: a new attempt started as soon as the project
        is FAILED keeps its own temporary file (the clean-up cannot delete a live render's
        file)."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        final = tmp_path / "final.mp4"
        _, dead = ledger.start(harness.lifecycle(harness.load(key)), output_path="x/final.mp4")
        dead = ledger.begin(dead)  # on this machine: recovery cleans up after it
        dead_file = create_temporary(final)
        clock.now += 11
        other = ledger_for(harness, clock)  # another process, racing the recovery
        started: list[Path] = []

        class StartWhenFailed(logging.Handler):
            # The first moment after recovery's transaction at which another process
            # can start the project: the recovery says it interrupted the attempt.
            def emit(self, record: logging.LogRecord) -> None:
                said = record.getMessage()
                if f"attempt {dead.id} " in said and "was interrupted" in said and not started:
                    other.start(harness.lifecycle(harness.load(key)), output_path="x/final.mp4")
                    started.append(create_temporary(final))

        def clean_up(attempt: Attempt) -> None:
            if attempt.id == dead.id:  # not another test's expired attempt
                remove_temporary_files(final)

        handler = StartWhenFailed(level=logging.WARNING)
        logging.getLogger("renderstate.ledger").addHandler(handler)
        try:
            recovered = ledger.recover(
                harness.adapter(),
                harness.loader(),
                cleanup=clean_up,
                **harness.options,
            )
        finally:
            logging.getLogger("renderstate.ledger").removeHandler(handler)
        assert dead.id in [r.attempt.id for r in recovered]
        assert started, "the racing start never ran"
        assert not dead_file.exists()
        assert started[0].exists(), "recovery deleted the new attempt's temporary file"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("actor", "a" * 256),
            ("output_path", "projects/" + "p" * 482 + "/final.mp4"),  # 501 characters
        ],
    )
    def test_overlong_start_values_are_refused_and_change_nothing(
        self, harness: LedgerHarness, field: str, value: str
    ) -> None:
        """A value wider than its ledger column is a ValueError naming it, on every
        database (not a driver's truncation error, nor silent truncation), and nothing is
        written: no attempt, the project still DRAFT, in the row and on the object."""
        ledger = ledger_for(harness)
        key = harness.insert()
        before = harness.attempts()
        lifecycle = harness.lifecycle(harness.load(key))
        with pytest.raises(ValueError, match=f"{field} is {len(value)} characters"):
            ledger.start(lifecycle, **{field: value})
        assert harness.attempts() == before
        assert harness.row(key)["status"] == harness.literal(Status.DRAFT)
        assert lifecycle.status is Status.DRAFT
        # The column's width itself is accepted, and stored whole.
        _, attempt = ledger.start(
            lifecycle, **{field: value[:-1] if field == "actor" else value[1:]}
        )
        stored = ledger.get(attempt.id)
        assert stored is not None
        assert len(getattr(stored, field)) == len(value) - 1

    @pytest.mark.parametrize(
        "text",
        ["ffmpeg said \x00\x01 and stopped", "frame error " * 6000],
        ids=["nul", "72k"],
    )
    def test_any_error_text_is_saved(self, harness: LedgerHarness, text: str) -> None:
        """fail() saves the failure whatever its exception says. A NUL character
        (PostgreSQL refuses it in text) or a message longer than a MySQL TEXT column
        (64 KiB, an encoder's whole log) used to make the failure unsavable, leaving
        the project PROCESSING until its lease expired."""
        ledger = ledger_for(harness)
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        _, attempt = ledger.start(lifecycle)
        attempt = ledger.begin(attempt)
        record = ledger.fail(lifecycle, attempt, RuntimeError(text))
        assert record.target is Status.FAILED
        assert harness.row(key)["status"] == harness.literal(Status.FAILED)
        ended = ledger.get(attempt.id)
        assert ended is not None
        assert ended.state is AttemptState.FAILED
        assert ended.error is not None
        assert ended.error.startswith("RuntimeError: ")
        assert "\x00" not in ended.error
        if len(text) > 10_000:
            assert len(ended.error) < 10_000
            assert ended.error.endswith("more characters cut)")
        else:
            assert ended.error == "RuntimeError: ffmpeg said \\x00\x01 and stopped"

    @pytest.mark.parametrize(
        "progress",
        [
            {"fraction": float("nan")},
            {"fraction": 1.5},
            {"fraction": -0.25},
            {"done": -1},
            {"eta_seconds": float("inf")},
            {"phase": "p" * 33},
        ],
        ids=["nan", "above-1", "negative", "negative-done", "infinite-eta", "long-phase"],
    )
    def test_bad_progress_is_refused_and_writes_nothing(
        self, harness: LedgerHarness, progress: dict[str, object]
    ) -> None:
        """A heartbeat's progress out of range is a ValueError and writes nothing: a
        reader never sees a fraction outside 0..1 (nor the lease renewed by it)."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
        attempt = ledger.begin(attempt)
        assert ledger.heartbeat(
            attempt, {"phase": "rendering", "done": 3, "total": 10, "fraction": 0.3}
        )
        before = ledger.get(attempt.id)
        clock.now += 1
        with pytest.raises(ValueError, match="heartbeat progress"):
            ledger.heartbeat(attempt, progress)
        assert ledger.get(attempt.id) == before

    @pytest.mark.parametrize(
        ("progress", "match"),
        [
            ({"done": 10**30}, "done must be a count from 0 to 2147483647"),
            ({"total": 2**63}, "total must be a count from 0 to 2147483647"),
            ({"done": 2**31}, "done must be a count from 0 to 2147483647"),
            ({"phase": "render\x00ing"}, "phase contains a NUL character"),
        ],
        ids=["done-10**30", "total-2**63", "done-2**31", "nul-phase"],
    )
    def test_progress_no_store_holds_is_refused_and_writes_nothing(
        self, harness: LedgerHarness, progress: dict[str, object], match: str
    ) -> None:
        """A count beyond a 32-bit INTEGER column or a NUL in the phase (PostgreSQL refuses
        it in text) is the documented ValueError naming the field, on every store, not a
        driver's DataError; nothing is written, not even the lease."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
        attempt = ledger.begin(attempt)
        assert ledger.heartbeat(attempt, {"phase": "rendering", "done": 3, "total": 10})
        before = ledger.get(attempt.id)
        clock.now += 1
        with pytest.raises(ValueError, match=match):
            ledger.heartbeat(attempt, {"phase": "rendering", **progress})
        assert ledger.get(attempt.id) == before

    def test_the_largest_counts_every_store_holds_are_recorded(
        self, harness: LedgerHarness
    ) -> None:
        """The bound is the column's: 2**31 - 1 frames done and in all are stored as such."""
        ledger = ledger_for(harness)
        key = harness.insert()
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
        attempt = ledger.begin(attempt)
        assert ledger.heartbeat(attempt, {"done": 2**31 - 1, "total": 2**31 - 1})
        seen = ledger.get(attempt.id)
        assert seen is not None
        assert (seen.done, seen.total) == (2**31 - 1, 2**31 - 1)

    def test_attempt_ids_increase_per_project(self, harness: LedgerHarness) -> None:
        """Each new attempt of a project gets a larger id than the one before."""
        ledger = ledger_for(harness)
        key = harness.insert()
        ids = []
        for _ in range(3):
            lifecycle = harness.lifecycle(harness.load(key))
            _, attempt = ledger.start(lifecycle)
            attempt = ledger.begin(attempt)
            ledger.fail(lifecycle, attempt, "boom")
            ids.append(attempt.id)
        assert ids == sorted(ids)
        assert len(set(ids)) == 3

    def test_sixteen_threads_one_attempt(self, harness: LedgerHarness) -> None:
        """Of 16 threads starting one project, one wins and one attempt is recorded."""
        ledger = ledger_for(harness)
        key = harness.insert()
        before = harness.attempts()
        barrier = threading.Barrier(THREADS)

        def start(_: int) -> str:
            lifecycle = harness.lifecycle(harness.load(key))
            barrier.wait()
            try:
                ledger.start(lifecycle)
            except RenderConflictError:
                return "conflict"
            except Exception as exc:
                return f"error: {exc!r}"
            finally:
                harness.release()  # thread-bound connections (Peewee, Django) end with it
            return "won"

        with ThreadPoolExecutor(THREADS) as pool:
            results = sorted(pool.map(start, range(THREADS)))
        assert results == ["conflict"] * (THREADS - 1) + ["won"], results
        assert harness.attempts() == before + 1

    def test_sixteen_threads_with_stale_objects_one_attempt(self, harness: LedgerHarness) -> None:
        """As above, but every thread's object was loaded while another render ran, which
        then failed (the object reads PROCESSING, the row says FAILED), so each start
        re-reads the row inside its transaction and tries again: one wins and fifteen get
        409, with no database deadlock (MariaDB: shared row locks that both upgrade)."""
        ledger = ledger_for(harness)
        key = harness.insert(Status.COMPLETED, output="projects/1/final.mp4")
        before = harness.attempts()
        loaded = threading.Barrier(THREADS + 1)
        go = threading.Barrier(THREADS + 1)

        def start(_: int) -> str:
            lifecycle = harness.lifecycle(harness.load(key))
            loaded.wait()
            go.wait()
            try:
                ledger.start(lifecycle)
            except RenderConflictError:
                return "conflict"
            except Exception as exc:
                return f"error: {exc!r}"
            finally:
                harness.release()
            return "won"

        elsewhere = harness.lifecycle(harness.load(key))
        _, attempt = ledger.start(elsewhere)
        with ThreadPoolExecutor(THREADS) as pool:
            outcomes = pool.map(start, range(THREADS))
            loaded.wait()
            ledger.fail(elsewhere, attempt, "failed elsewhere")
            go.wait()
            results = sorted(outcomes)
        assert results == ["conflict"] * (THREADS - 1) + ["won"], results
        assert harness.attempts() == before + 2

    def test_sixteen_processes_one_attempt(self, harness: LedgerHarness) -> None:
        """Of 16 processes starting one project, one wins, 15 get 409, one attempt is written
        (4 processes for the variant model: the race is the same, the processes are slow)."""
        processes = 4 if harness.variant else PROCESSES
        key = harness.insert(Status.COMPLETED, output="projects/1/final.mp4")
        before = harness.attempts()
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(processes)
        results = context.Queue()
        workers = [
            context.Process(target=start_in_child, args=(harness, key, barrier, results))
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        outcomes = sorted(results.get(timeout=180) for _ in workers)
        for worker in workers:
            worker.join(timeout=60)
        assert outcomes == ["conflict"] * (processes - 1) + ["won"], outcomes
        assert harness.attempts() == before + 1
        row = harness.row(key)
        assert row["status"] == harness.literal(Status.PROCESSING)
        assert row["output"] == "projects/1/final.mp4"

    def test_begin_heartbeat_and_progress(self, harness: LedgerHarness) -> None:
        """A begun attempt is rendering on a named worker; heartbeats renew it and record
        progress; any process reads it back."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
        clock.now += 5
        begun = ledger.begin(attempt, worker="render-host:42")
        assert begun.state is AttemptState.RENDERING
        assert begun.worker == "render-host:42"
        assert begun.started_at == clock.now
        clock.now += 3
        progress = {"phase": "rendering", "done": 12, "total": 48, "fraction": 0.25}
        assert ledger.heartbeat(begun, {**progress, "eta_seconds": 9.0})
        assert not ledger.heartbeat(attempt), "the queued attempt's token no longer holds it"
        reader = ledger_for(harness)  # another ledger object: nothing shared in memory
        seen = reader.get(attempt.id)
        assert seen is not None
        assert (seen.phase, seen.done, seen.total, seen.fraction) == ("rendering", 12, 48, 0.25)
        assert seen.eta_seconds == 9.0
        assert seen.lease_expires_at == clock.now + 10.0
        with pytest.raises(ValueError, match="unknown fields"):
            ledger.heartbeat(begun, {"frames": 3})

    def test_a_progress_label_is_written_with_the_heartbeat_and_read_back(
        self, harness: LedgerHarness
    ) -> None:
        """The renderer's description of its step (``label``) is written by the heartbeat
        and by a batch renewal with the other figures, read back by another ledger object
        as given (255 characters, accents, an emoji), and cleared by ``None``."""
        ledger = ledger_for(harness)
        _, first = ledger.start(harness.lifecycle(harness.load(harness.insert())))
        _, second = ledger.start(harness.lifecycle(harness.load(harness.insert())))
        first, second = ledger.begin(first), ledger.begin(second)
        encoding = "Encodage de la vid\u00e9o \U0001f3ac"
        widest = "w" * 254 + "\u00e9"
        first_beat = {"phase": "encode", "done": 1, "total": 4, "label": encoding}
        assert ledger.heartbeat(first, first_beat)
        reader = ledger_for(harness)  # another ledger object: nothing shared in memory
        seen = reader.get(first.id)
        assert seen is not None
        assert (seen.phase, seen.done, seen.label) == ("encode", 1, encoding)
        renewed = ledger.renew(
            [Renewal(first, {"done": 2, "label": None}), Renewal(second, {"label": widest})]
        )
        assert [r.outcome for r in renewed] == [RenewalOutcome.RENEWED] * 2
        one, two = reader.get(first.id), reader.get(second.id)
        assert one is not None
        assert two is not None
        assert (one.done, one.label) == (2, None)
        assert two.label == widest
        assert ledger.heartbeat(second, {"done": 5})
        kept = reader.get(second.id)
        assert kept is not None
        assert kept.label == widest, "a heartbeat without a label keeps the last one"

    @pytest.mark.parametrize(
        ("label", "match"),
        [
            ("x" * 256, "label must be None or a text of at most 255 characters, got 256"),
            ("x" * 10_000_000, "got 10000000 characters"),
            (b"Encoding", "got bytes"),
            (42, "got int"),
            ("Enc\x00oding", "label contains a NUL character"),
            ("video-\udcff.mp4", "label is no UTF-8 text"),
        ],
        ids=["256-characters", "ten-million", "bytes", "int", "nul", "lone-surrogate"],
    )
    def test_a_label_no_store_holds_is_refused_and_writes_nothing(
        self, harness: LedgerHarness, label: object, match: str
    ) -> None:
        """A label too long for its column, not text, or holding what no database stores
        in text is the documented ValueError (not a driver's error), through a heartbeat and
        a batch renewal alike; nothing is written, not even the lease."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        _, attempt = ledger.start(harness.lifecycle(harness.load(harness.insert())))
        attempt = ledger.begin(attempt)
        assert ledger.heartbeat(attempt, {"done": 3, "label": "Encoding"})
        before = ledger.get(attempt.id)
        clock.now += 1
        with pytest.raises(ValueError, match=match):
            ledger.heartbeat(attempt, {"done": 4, "label": label})
        with pytest.raises(ValueError, match=match):
            ledger.renew([Renewal(attempt, {"done": 4, "label": label})])
        assert ledger.get(attempt.id) == before

    def test_a_second_begin_of_a_live_attempt_is_refused_and_changes_nothing(
        self, harness: LedgerHarness
    ) -> None:
        """A duplicate delivery while the first worker renders and renews: the second
        begin is refused with AttemptOwnedError (who owns it, when its lease runs out) and
        the record is untouched: same worker, same start, the progress not reset."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
        first = ledger.begin(attempt, worker="host-a:1")
        progress = {"phase": "rendering", "done": 40, "total": 50, "fraction": 0.8}
        clock.now += 4
        assert ledger.heartbeat(first, progress)
        clock.now += 3
        before = ledger.get(attempt.id)
        with pytest.raises(AttemptOwnedError) as caught:
            ledger.begin(attempt, worker="host-b:2")
        assert caught.value.attempt_id == attempt.id
        assert caught.value.worker == "host-a:1"
        assert caught.value.retry_after == pytest.approx(7.0)
        assert caught.value.status_code == 409
        assert "host-a:1" in str(caught.value)
        assert ledger.get(attempt.id) == before
        assert before is not None
        assert (before.worker, before.started_at) == ("host-a:1", first.started_at)
        assert (before.fraction, before.done) == (0.8, 40)
        with pytest.raises(AttemptOwnedError):
            ledger.begin(attempt, worker="host-a:1")  # a second begin by its own worker too
        assert ledger.get(attempt.id) == before
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_begin_takes_over_a_dead_worker_s_attempt_once_its_lease_expired(
        self, harness: LedgerHarness
    ) -> None:
        """The worker died (no renewal for a lease): a redelivery begins the attempt again,
        here, and the dead worker's files on this machine are cleaned up first; the
        dead worker's ghost cannot begin it back while the new owner renews. Only an
        owner that is really gone loses its files: a live process of this machine, a job
        of this very process that still holds its attempt, or another machine's worker
        keeps them."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        here = socket.gethostname()
        dead_pid = _a_dead_pid()
        names = ["gone", "alive", "mine", "remote"]
        keys = {name: harness.insert() for name in names}
        workers = {
            "gone": f"{here}:{dead_pid}",
            "alive": f"{here}:{os.getppid()}",  # the test runner's parent: alive
            "mine": None,  # this process, whose job still holds the attempt
            "remote": "elsewhere:1",
        }
        begun = {}
        for name in names:
            _, queued = ledger.start(harness.lifecycle(harness.load(keys[name])))
            begun[name] = ledger.begin(queued, worker=workers[name])
        clock.now += 10.5
        cleaned: list[Attempt] = []
        taken = {
            name: ledger.begin(begun[name], worker=f"{here}:2", cleanup=cleaned.append)
            for name in names
        }
        assert (taken["gone"].state, taken["gone"].worker) == (
            AttemptState.RENDERING,
            f"{here}:2",
        )
        assert taken["gone"].started_at == clock.now
        assert taken["gone"].lease_expires_at == clock.now + 10.0
        assert {t.owner for t in taken.values()}.isdisjoint({b.owner for b in begun.values()})
        assert [a.worker for a in cleaned] == [workers["gone"]], "only a gone owner's files"
        with pytest.raises(AttemptOwnedError):
            ledger.begin(begun["gone"], worker=workers["gone"])
        again = ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        assert not {b.id for b in begun.values()} & {r.attempt.id for r in again}
        assert harness.row(keys["gone"])["status"] == harness.literal(Status.PROCESSING)

    def test_an_update_fenced_by_a_column_it_also_sets_writes_the_new_value(
        self, harness: LedgerHarness
    ) -> None:
        """A takeover is fenced by the old owner and worker and writes new ones in the same
        UPDATE: the store writes the new values, matches only the old ones, and a second
        update fenced by the old owner finds nothing."""
        ledger = ledger_for(harness, Clock())
        key = harness.insert()
        _, queued = ledger.start(harness.lifecycle(harness.load(key)))
        begun = ledger.begin(queued, worker="here:1")
        assert begun.owner is not None
        store = ledger.store
        states = {AttemptState.RENDERING}
        new = {"owner": "b" * 32, "worker": "here:2"}
        assert store.update(begun.id, new, states=states, owner=begun.owner, worker="here:1")
        stored = store.get(begun.id)
        assert stored is not None
        assert (stored.owner, stored.worker) == ("b" * 32, "here:2")
        again = {"owner": "c" * 32, "worker": "here:3"}
        assert not store.update(begun.id, again, states=states, owner=begun.owner)
        assert not store.update(begun.id, again, states=states, worker="here:1")
        stored = store.get(begun.id)
        assert stored is not None
        assert (stored.owner, stored.worker) == ("b" * 32, "here:2")

    def test_a_worker_whose_attempt_was_taken_over_is_fenced(self, harness: LedgerHarness) -> None:
        """Worker A stalls past its lease (a long GC pause, a stopped VM) and B takes the
        attempt over. When A wakes, it no longer owns the attempt: its heartbeat answers
        False and writes nothing (it used to renew the lease and overwrite B's progress),
        and its fail or complete raise AttemptSupersededError and change nothing (A's fail
        used to turn the project FAILED while B rendered, and B's complete was refused)."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        _, queued = ledger.start(lifecycle)
        a = ledger.begin(queued, worker="host-a:1")
        clock.now += 10.5
        b = ledger.begin(queued, worker="host-b:2")
        clock.now += 1
        assert ledger.heartbeat(b, {"phase": "rendering", "done": 5, "total": 50})
        before = ledger.get(b.id)
        row = harness.row(key)
        assert not ledger.heartbeat(a, {"phase": "rendering", "done": 49, "total": 50})
        assert not ledger.heartbeat(a)
        published: list[str] = []
        with pytest.raises(AttemptSupersededError):
            ledger.fail(harness.lifecycle(harness.load(key)), a, "A's late failure")
        with pytest.raises(AttemptSupersededError):
            ledger.complete(
                harness.lifecycle(harness.load(key)),
                a,
                "projects/a/final.mp4",
                publish=lambda: published.append("a"),
            )
        assert published == []
        assert ledger.get(b.id) == before
        assert harness.row(key) == row
        ledger.complete(harness.lifecycle(harness.load(key)), b, "projects/b/final.mp4")
        assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)

    def test_begin_of_an_ended_attempt_is_refused(self, harness: LedgerHarness) -> None:
        """An attempt that completed, or was recovered, never begins again."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        _, attempt = ledger.start(lifecycle)
        attempt = ledger.begin(attempt)
        ledger.complete(lifecycle, attempt, "projects/a/final.mp4")
        row = harness.row(key)
        with pytest.raises(AttemptSupersededError) as caught:
            ledger.begin(attempt)
        assert caught.value.state == "completed"
        assert harness.row(key) == row

    def test_a_handed_off_attempt_waits_the_queue_timeout_not_the_lease(
        self, harness: LedgerHarness
    ) -> None:
        """Handed to a task queue, a queued attempt is spared by recovery after its lease
        (nobody renews it there) and recovered only after the queue timeout; one that was
        not handed off (its process renews it) still expires after the lease."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        sent_key, held_key, begun_key = harness.insert(), harness.insert(), harness.insert()
        _, sent = ledger.start(harness.lifecycle(harness.load(sent_key)))
        _, held = ledger.start(harness.lifecycle(harness.load(held_key)))
        _, begun = ledger.start(harness.lifecycle(harness.load(begun_key)))
        assert ledger.hand_off(sent)
        seen = ledger.get(sent.id)
        assert seen is not None
        assert seen.state is AttemptState.QUEUED
        assert seen.lease_expires_at == clock.now + 100.0
        begun = ledger.begin(begun)
        assert not ledger.hand_off(begun), "a begun attempt keeps its lease"
        clock.now += 50  # longer than the lease, shorter than the queue timeout
        mine = {sent.id, held.id, begun.id}
        recovered = ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        assert {r.attempt.id for r in recovered} & mine == {held.id, begun.id}
        assert harness.row(sent_key)["status"] == harness.literal(Status.PROCESSING)
        clock.now += 51  # past the queue timeout: the job was lost on the way
        recovered = ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        assert {r.attempt.id for r in recovered} & mine == {sent.id}
        assert harness.row(sent_key)["status"] == harness.literal(Status.FAILED)
        ended = ledger.get(sent.id)
        assert ended is not None
        assert ended.state is AttemptState.INTERRUPTED

    def test_a_handed_off_attempt_begins_with_the_usual_lease(self, harness: LedgerHarness) -> None:
        """Once a worker begins a handed-off attempt, the lease (not the queue timeout)
        applies: a worker that dies is recovered a lease later."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
        ledger.hand_off(attempt)
        clock.now += 30
        begun = ledger.begin(attempt)
        assert begun.lease_expires_at == clock.now + 10.0
        clock.now += 11
        recovered = ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        assert attempt.id in {r.attempt.id for r in recovered}

    def test_repeated_heartbeat_still_matches(self, harness: LedgerHarness) -> None:
        """A heartbeat that writes the values already stored still finds its live attempt:
        MySQL and MariaDB report changed rows unless the client asks for matched ones
        (Django and SQLAlchemy do, Peewee does not)."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
        progress = {"phase": "rendering", "done": 1, "total": 2, "fraction": 0.5}
        assert ledger.heartbeat(attempt, progress)
        assert ledger.heartbeat(attempt, progress), "the same values again: still live"
        clock.now += 11
        assert ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        assert not ledger.heartbeat(attempt, progress), "an interrupted attempt is not live"

    def test_renew_renews_many_leases_each_fenced(self, harness: LedgerHarness) -> None:
        """One renew() renews every lease still held, writes each one's own progress, and
        refuses (writing nothing) a token that no longer holds its attempt."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        _, first = ledger.start(harness.lifecycle(harness.load(key)))
        begun = ledger.begin(first, worker="render-host:42")
        other = harness.insert()
        _, second = ledger.start(harness.lifecycle(harness.load(other)))
        clock.now += 3
        results = ledger.renew(
            [
                Renewal(begun, {"phase": "rendering", "done": 4}, unless_cancelled=True),
                Renewal(first, {"done": 99}),
                Renewal(second, {"phase": "waiting", "fraction": 0.0}),
            ]
        )
        assert [r.outcome.value for r in results] == ["renewed", "lost", "renewed"]
        now = ledger.get(begun.id)
        assert now is not None
        assert (now.phase, now.done, now.lease_expires_at) == ("rendering", 4, clock.now + LEASE)
        queued = ledger.get(second.id)
        assert queued is not None
        assert (queued.phase, queued.lease_expires_at) == ("waiting", clock.now + LEASE)

    def test_complete_for_the_live_attempt(self, harness: LedgerHarness) -> None:
        """Completing the live attempt completes the project, runs publish, ends the record."""
        ledger = ledger_for(harness)
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        _, attempt = ledger.start(lifecycle)
        attempt = ledger.begin(attempt)
        published: list[str] = []
        record = ledger.complete(
            lifecycle, attempt, "projects/a/final.mp4", publish=lambda: published.append("x")
        )
        assert record.target is Status.COMPLETED
        assert published == ["x"]
        row = harness.row(key)
        assert row["status"] == harness.literal(Status.COMPLETED)
        assert row["output"] == "projects/a/final.mp4"
        done = ledger.get(attempt.id)
        assert done is not None
        assert done.state is AttemptState.COMPLETED
        assert done.fraction == 1.0
        assert done.finished_at is not None
        assert not ledger.heartbeat(attempt), "an ended attempt has no lease to renew"

    def test_a_completion_writes_the_app_s_fields_only_for_the_live_attempt(
        self, harness: LedgerHarness
    ) -> None:
        """A superseded attempt's completion writes none of its extra fields (A's
        duration, say); the live attempt's completion writes its own with the status."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        title = harness.columns["title"]
        key = harness.insert()
        worker_a = harness.lifecycle(harness.load(key))
        _, a = ledger.start(worker_a)
        a = ledger.begin(a)
        clock.now += 11  # A's lease expires: its worker hung; B takes the project over
        ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        worker_b = harness.lifecycle(harness.load(key))
        _, b = ledger.start(worker_b)
        b = ledger.begin(b)
        before = harness.row(key)
        with pytest.raises(AttemptSupersededError):
            ledger.complete(worker_a, a, "projects/a/final.mp4", fields={title: "A: 9.0 s"})
        assert harness.row(key) == before
        record = ledger.complete(worker_b, b, "projects/b/final.mp4", fields={title: "B: 12.5 s"})
        assert record.changes[title] == "B: 12.5 s"
        row = harness.row(key)
        assert (row["status"], row["output"], row["title"]) == (
            harness.literal(Status.COMPLETED),
            "projects/b/final.mp4",
            "B: 12.5 s",
        )

    def test_a_completion_with_a_field_the_model_lacks_writes_nothing(
        self, harness: LedgerHarness
    ) -> None:
        """complete(fields=) naming no column is refused before the attempt's row or the
        project's is touched: the attempt stays live, publish does not run."""
        ledger = ledger_for(harness)
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        _, attempt = ledger.start(lifecycle)
        attempt = ledger.begin(attempt)
        before = harness.row(key)
        stored = ledger.get(attempt.id)
        published: list[str] = []
        with pytest.raises(ValueError, match="durration"):
            ledger.complete(
                lifecycle,
                attempt,
                "projects/a/final.mp4",
                publish=lambda: published.append("x"),
                fields={"durration": 12.5},
            )
        assert published == []
        assert harness.row(key) == before
        assert ledger.get(attempt.id) == stored
        ledger.complete(lifecycle, attempt, "projects/a/final.mp4")
        assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)

    def test_a_start_records_its_task_id_on_the_attempt_and_the_app_s_column(
        self, harness: LedgerHarness
    ) -> None:
        """Ledger.start(task_id=) keeps the task system's id on the attempt as stored, and
        writes it to the app's task_id_field in the start's guarded UPDATE; a refused
        start records nothing."""
        ledger = ledger_for(harness)
        title = harness.columns["title"]
        harness.more_options = {"task_id_field": title}
        key = harness.insert()
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)), task_id="task-1")
        assert attempt.task_id == "task-1"
        stored = ledger.get(attempt.id)
        assert stored is not None
        assert stored.task_id == "task-1"
        assert harness.row(key)["title"] == "task-1"
        before = harness.attempts()
        with pytest.raises(RenderConflictError):
            ledger.start(harness.lifecycle(harness.load(key)), task_id="task-2")
        assert harness.row(key)["title"] == "task-1"
        assert harness.attempts() == before
        with pytest.raises(ValueError, match="task_id"):
            ledger.start(harness.lifecycle(harness.load(key)), task_id="t" * 256)

    def test_a_hand_off_writes_the_task_id_the_queue_made_to_the_app_s_column(
        self, harness: LedgerHarness
    ) -> None:
        """hand_off(task_id=, lifecycle=): a task system that names the render once it is
        queued, after the start (Django's tasks), gets its id on the attempt and in the
        app's task_id_field while the attempt is live, begun or not; an attempt that
        ended meanwhile writes nothing over the id a newer start wrote."""
        ledger = ledger_for(harness)
        title = harness.columns["title"]
        harness.more_options = {"task_id_field": title}
        key = harness.insert()
        _, a = ledger.start(harness.lifecycle(harness.load(key)))
        assert harness.row(key)["title"] in ("", None)
        lifecycle = harness.lifecycle(harness.load(key))
        assert ledger.hand_off(a, executor="django-tasks", task_id="task-a", lifecycle=lifecycle)
        assert harness.row(key)["title"] == "task-a"
        assert (ledger.get(a.id) or a).task_id == "task-a"
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)
        a = ledger.begin(a)
        ledger.fail(harness.lifecycle(harness.load(key)), a, RuntimeError("boom"))
        _, b = ledger.start(harness.lifecycle(harness.load(key)), task_id="task-b")
        b = ledger.begin(b)  # a fast worker began it before its sender's hand_off
        late = harness.lifecycle(harness.load(key))
        assert not ledger.hand_off(a, task_id="task-a-late", lifecycle=late)
        assert harness.row(key)["title"] == "task-b", "an ended attempt writes nothing"
        assert not ledger.hand_off(b, task_id="task-b2", lifecycle=late)
        assert harness.row(key)["title"] == "task-b2", "a begun attempt is live"
        with pytest.raises(ValueError, match="task_id"):
            ledger.hand_off(b, task_id="t" * 256, lifecycle=late)
        assert harness.row(key)["title"] == "task-b2"
        assert (ledger.get(b.id) or b).task_id == "task-b2"

    def test_failures_write_their_reason_to_the_app_s_error_field(
        self, harness: LedgerHarness
    ) -> None:
        """error_field: the live attempt's fail and a recovery write the reason with the
        FAILED status; a superseded attempt's fail writes none."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        title = harness.columns["title"]
        harness.more_options = {"error_field": title}
        key = harness.insert()
        _, a = ledger.start(harness.lifecycle(harness.load(key)))
        a = ledger.begin(a)
        ledger.fail(harness.lifecycle(harness.load(key)), a, RuntimeError("disk full"))
        assert harness.row(key)["title"] == "RuntimeError: disk full"
        _, b = ledger.start(harness.lifecycle(harness.load(key)))
        assert harness.row(key)["title"] in ("", None), "a start empties the reason"
        b = ledger.begin(b)
        clock.now += 11  # B's worker hangs past its lease
        recovered = ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        assert b.id in {r.attempt.id for r in recovered}
        reason = harness.row(key)["title"]
        assert reason
        assert reason == (ledger.get(b.id) or b).error
        _, c = ledger.start(harness.lifecycle(harness.load(key)))
        c = ledger.begin(c)
        with pytest.raises(AttemptSupersededError):
            ledger.fail(harness.lifecycle(harness.load(key)), b, "B's late failure")
        assert harness.row(key)["title"] in ("", None)
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)

    def test_failing_publish_undoes_both_writes(self, harness: LedgerHarness) -> None:
        """If moving the file fails, neither the project nor the attempt is finished, and
        the object reads back what the row holds."""
        ledger = ledger_for(harness)
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        _, attempt = ledger.start(lifecycle)

        def publish() -> None:
            raise OSError("disk full")

        with pytest.raises(OSError, match="disk full"):
            ledger.complete(lifecycle, attempt, "projects/a/final.mp4", publish=publish)
        row = harness.row(key)
        assert row["status"] == harness.literal(Status.PROCESSING)
        assert row["output"] == harness.no_output
        assert lifecycle.status is Status.PROCESSING
        live = ledger.get(attempt.id)
        assert live is not None
        assert live.state is AttemptState.QUEUED

    def test_late_worker_is_fenced(self, harness: LedgerHarness) -> None:
        """A recovers, B starts; A's late complete and fail change nothing and say so."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        worker_a = harness.lifecycle(harness.load(key))
        _, a = ledger.start(worker_a)
        a = ledger.begin(a)
        clock.now += 11  # A's lease expires: its worker hung
        recovered = ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        assert a.id in {r.attempt.id for r in recovered}
        assert harness.row(key)["status"] == harness.literal(Status.FAILED)
        _, b = ledger.start(harness.lifecycle(harness.load(key)))
        row_b = harness.row(key)
        published: list[str] = []
        with pytest.raises(AttemptSupersededError) as caught:
            ledger.complete(
                worker_a, a, "projects/a/late.mp4", publish=lambda: published.append("x")
            )
        assert caught.value.attempt_id == a.id
        assert caught.value.state == "interrupted"
        with pytest.raises(AttemptSupersededError):
            ledger.fail(worker_a, a, "late failure")
        assert published == []
        assert harness.row(key) == row_b
        assert ledger.get(b.id) == b
        ended_a = ledger.get(a.id)
        assert ended_a is not None
        assert ended_a.state is AttemptState.INTERRUPTED

    def test_fencing_across_processes(self, harness: LedgerHarness) -> None:
        """Attempt A starts here; another process recovers it and starts B; A's complete
        here changes nothing: B's status, path and record are unchanged."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert(Status.COMPLETED, output="projects/1/final.mp4")
        worker_a = harness.lifecycle(harness.load(key))
        _, a = ledger.start(worker_a)
        a = ledger.begin(a)
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        child = context.Process(
            target=recover_and_restart_in_child, args=(harness, key, clock.now + 60, results)
        )
        child.start()
        outcome, recovered, b_id = results.get(timeout=120)
        child.join(timeout=60)
        assert outcome == "ok", recovered
        assert a.id in recovered
        row_b = harness.row(key)
        assert row_b["status"] == harness.literal(Status.PROCESSING)
        b = ledger.get(b_id)
        with pytest.raises(AttemptSupersededError):
            ledger.complete(worker_a, a, "projects/1/final.mp4")
        assert harness.row(key) == row_b
        assert ledger.get(b_id) == b

    def test_recover_spares_live_attempts(self, harness: LedgerHarness) -> None:
        """Recovery touches only attempts whose lease expired; a renewed one is alive."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        live_key, dead_key = harness.insert(), harness.insert()
        _, live = ledger.start(harness.lifecycle(harness.load(live_key)))
        _, dead = ledger.start(harness.lifecycle(harness.load(dead_key)))
        live = ledger.begin(live)
        dead = ledger.begin(dead)
        clock.now += 8
        assert ledger.heartbeat(live)
        clock.now += 8  # dead's lease (10 s) has expired, live's was renewed 8 s ago
        cleaned: list[int] = []
        recovered = ledger.recover(
            harness.adapter(),
            harness.loader(),
            cleanup=lambda attempt: cleaned.append(attempt.id),
            **harness.options,
        )
        ids = [r.attempt.id for r in recovered]
        assert dead.id in ids
        assert live.id not in ids
        mine = recovered[ids.index(dead.id)]
        assert mine.record is not None
        assert mine.record.target is Status.FAILED
        assert mine.local
        assert dead.id in cleaned
        assert live.id not in cleaned
        assert harness.row(dead_key)["status"] == harness.literal(Status.FAILED)
        assert harness.row(live_key)["status"] == harness.literal(Status.PROCESSING)
        still = ledger.get(live.id)
        assert still is not None
        assert still.state is AttemptState.RENDERING
        again = ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        assert not {dead.id, live.id} & {r.attempt.id for r in again}

    def test_expired_lists_only_attempts_whose_lease_ran_out(self, harness: LedgerHarness) -> None:
        """expired() lists a live attempt once its lease is over, never one whose lease
        still runs; a lease that ends exactly now is not over yet (``lease < now``), the
        same boundary on every store."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        old_key, new_key = harness.insert(), harness.insert()
        _, old = ledger.start(harness.lifecycle(harness.load(old_key)))
        old = ledger.begin(old)
        clock.now += 5
        _, new = ledger.start(harness.lifecycle(harness.load(new_key)))
        new = ledger.begin(new)
        clock.now += 5  # old's lease ends exactly now; new's in 5 s

        def listed() -> set[int]:
            return {a.id for a in ledger.expired()} & {old.id, new.id}

        assert listed() == set()
        clock.now += 0.5
        assert listed() == {old.id}
        assert old.id in {a.id for a in ledger.expired(scope=old.scope)}
        assert old.id not in {a.id for a in ledger.expired(scope=old.scope + "-other")}
        clock.now += 5
        assert listed() == {old.id, new.id}
        assert ledger.heartbeat(new)
        assert listed() == {old.id}

    def test_a_lease_that_ends_exactly_now_is_still_held(self, harness: LedgerHarness) -> None:
        """At the instant its lease ends an attempt is still its worker's: another begin is
        refused, as expired() does not list it; a moment later it can be taken over."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
        attempt = ledger.begin(attempt, worker="first:1")
        clock.now += 10
        with pytest.raises(AttemptOwnedError):
            ledger.begin(attempt, worker="second:2")
        clock.now += 0.5
        assert ledger.begin(attempt, worker="second:2").worker == "second:2"

    def test_recover_re_checks_the_lease_of_what_it_listed(self, harness: LedgerHarness) -> None:
        """A worker that renews its lease between recovery's listing and its write is
        spared: the write re-checks the lease. Here the listing itself names live
        attempts (of a project, and of a deleted project), as a listing that raced with
        their renewal would; recovery leaves both alone."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key, gone_key = harness.insert(), harness.insert()
        _, live = ledger.start(harness.lifecycle(harness.load(key)))
        _, orphan = ledger.start(harness.lifecycle(harness.load(gone_key)))
        live = ledger.begin(live)
        orphan = ledger.begin(orphan)
        harness.delete(gone_key)
        clock.now += 5  # both leases run 5 s more
        racing = Ledger(
            RacingListing(ledger.store, [live.id, orphan.id]),
            lease=10.0,
            progress_interval=1.0,
            queue_timeout=100.0,
            clock=clock,
        )
        recovered = racing.recover(harness.adapter(), harness.loader(), **harness.options)
        assert not {live.id, orphan.id} & {r.attempt.id for r in recovered}
        assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)
        for attempt in (live, orphan):
            still = ledger.get(attempt.id)
            assert still is not None
            assert still.state is AttemptState.RENDERING
            assert still.error is None

    def test_history_in_order_with_errors(self, harness: LedgerHarness) -> None:
        """Render, fail, retry, re-render: four records, newest first, with their outcomes."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        outcomes = ["complete", "fail", "complete", "complete"]
        for n, outcome in enumerate(outcomes):
            lifecycle = harness.lifecycle(harness.load(key))
            _, attempt = ledger.start(lifecycle, actor=f"user{n}")
            clock.now += 1
            attempt = ledger.begin(attempt)
            clock.now += 2
            if outcome == "complete":
                ledger.complete(lifecycle, attempt, "projects/k/final.mp4")
            else:
                ledger.fail(lifecycle, attempt, ValueError("bad scene"))
        scope, text = ledger.key(harness.lifecycle(harness.load(key)))
        # Only this test's attempts: SQLite reuses the key of a project another test
        # deleted (no AUTOINCREMENT), and that project's attempts stay in the ledger.
        history = [
            a
            for a in ledger.history(scope, text)
            if a.actor in {"user0", "user1", "user2", "user3"}
        ]
        assert [a.state for a in history] == [
            AttemptState.COMPLETED,
            AttemptState.COMPLETED,
            AttemptState.FAILED,
            AttemptState.COMPLETED,
        ]
        assert [a.actor for a in history] == ["user3", "user2", "user1", "user0"]
        assert history[2].error == "ValueError: bad scene"
        assert all(a.queued_seconds == 1.0 and a.rendering_seconds == 2.0 for a in history)
        assert ledger.rendering_seconds(scope, text) == 8.0
        assert ledger.history(scope, text, limit=1) == history[:1]

    def test_transition_outside_the_ledger_is_cleaned_up(self, harness: LedgerHarness) -> None:
        """A project failed without the ledger: its attempt cannot complete it, is marked
        interrupted, and the next start is a fresh attempt."""
        ledger = ledger_for(harness)
        key = harness.insert()
        lifecycle = harness.lifecycle(harness.load(key))
        _, stale = ledger.start(lifecycle)
        harness.lifecycle(harness.load(key)).fail("by hand")
        with pytest.raises(InvalidTransitionError):
            ledger.complete(lifecycle, stale, "projects/a/final.mp4")
        ended = ledger.get(stale.id)
        assert ended is not None
        assert ended.state is AttemptState.INTERRUPTED
        _, fresh = ledger.start(harness.lifecycle(harness.load(key)))
        assert fresh.id > stale.id

    def test_start_supersedes_an_attempt_left_live(self, harness: LedgerHarness) -> None:
        """A live attempt whose project was moved on outside the ledger is superseded by
        the next start, so at most one attempt per project is live."""
        ledger = ledger_for(harness)
        key = harness.insert()
        _, stale = ledger.start(harness.lifecycle(harness.load(key)))
        harness.lifecycle(harness.load(key)).fail("by hand")
        _, fresh = ledger.start(harness.lifecycle(harness.load(key)))
        old = ledger.get(stale.id)
        assert old is not None
        assert old.state is AttemptState.SUPERSEDED
        assert old.error == f"superseded by attempt {fresh.id}"
        scope, text = ledger.key(harness.lifecycle(harness.load(key)))
        assert [a.id for a in harness.store().live(scope, text)] == [fresh.id]

    def test_recover_project_deleted(self, harness: LedgerHarness) -> None:
        """An expired attempt of a deleted project is marked interrupted, nothing else."""
        clock = Clock()
        ledger = ledger_for(harness, clock)
        key = harness.insert()
        _, attempt = ledger.start(harness.lifecycle(harness.load(key)))
        harness.delete(key)
        clock.now += 11
        recovered = ledger.recover(harness.adapter(), harness.loader(), **harness.options)
        assert (attempt.id, None) in [(r.attempt.id, r.record) for r in recovered]
        ended = ledger.get(attempt.id)
        assert ended is not None
        assert ended.state is AttemptState.INTERRUPTED


def attempt_of(ledger: Ledger, lifecycle: ProjectLifecycle[Any]) -> Attempt | None:
    scope, key = ledger.key(lifecycle)
    return ledger.current(scope, key)


def _a_dead_pid() -> int:
    """The pid of a process of this machine that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
