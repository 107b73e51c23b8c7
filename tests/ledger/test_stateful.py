"""A Hypothesis state machine drives the ledger from two processes against a reference model.

Starts, begins, heartbeats, completions, failures, recoveries and late workers are issued
at random by this process or by a child process working on the same database (each with its
own connections and objects, each loading the project afresh), with a shared clock sent with
every command. After every step the database must hold exactly what the model predicts.

Each start and each begin makes its side an *owner* of the attempt, holding it as the
ledger returned it (with its owner token). Any owner, current or long since replaced, may
act again: only the attempt's current owner renews or ends it; an earlier one, in either
process, is refused and changes nothing.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from adapters.conftest import BACKEND_PARAMS, db_targets, target_for
from renderstate import ProjectLifecycle, RenderConflictError
from renderstate.cli._store import Project, Store
from renderstate.exceptions import AttemptOwnedError, AttemptSupersededError
from renderstate.ledger import AttemptState, Ledger

__all__ = ["db_targets"]

LEASE = 10.0
LIVE = {"queued", "rendering"}


REFUSALS = {
    RenderConflictError: "conflict",
    AttemptSupersededError: "superseded",
    AttemptOwnedError: "owned",
}
"""What the model calls each refusal."""


class Side:
    """One process's view: its own store (connections) and ledger, on a settable clock."""

    def __init__(self, url: str) -> None:
        self.store = Store(url)
        self.now = 0.0
        self.ledger = Ledger(self.store.ledger.store, lease=LEASE, clock=lambda: self.now)
        self.held: dict[str, Any] = {}
        """The attempts as this side's starts and begins returned them, by owner token."""

    def lifecycle(self, key: str) -> ProjectLifecycle[Project]:
        return ProjectLifecycle(self.store.get(key), self.store.adapter)

    def attempt(self, attempt_id: int) -> Any:
        return self.store.ledger.get(attempt_id)

    def do(
        self, op: str, key: str, now: float, attempt_id: int | None, owner: str | None = None
    ) -> object:
        """Run one command; return what happened as plain data.

        With ``owner``, act as that owner (the attempt as its start or begin returned it);
        without, as whoever holds the attempt now (read afresh).
        """
        self.now = now
        try:
            if op == "start":
                _, attempt = self.ledger.start(self.lifecycle(key))
                self.held[attempt.owner] = attempt
                return ("ok", (attempt.id, attempt.owner))
            if op == "recover":
                found = self.ledger.recover(self.store.adapter, self.store.loader)
                return ("ok", sorted(r.attempt.id for r in found if r.attempt.project_key == key))
            assert attempt_id is not None
            attempt = self.attempt(attempt_id) if owner is None else self.held[owner]
            if op == "begin":
                attempt = self.ledger.begin(attempt)
                self.held[attempt.owner] = attempt
                return ("ok", attempt.owner)
            if op == "heartbeat":
                return ("ok", self.ledger.heartbeat(attempt, {"fraction": 0.5, "done": 1}))
            if op == "complete":
                self.ledger.complete(self.lifecycle(key), attempt, f"projects/{key}/final.mp4")
            elif op == "fail":
                self.ledger.fail(self.lifecycle(key), attempt, "boom")
        except (RenderConflictError, AttemptSupersededError, AttemptOwnedError) as refused:
            return (REFUSALS[type(refused)], None)
        return ("ok", None)


def serve(url: str, connection: Any) -> None:
    """Child process: run the commands it receives until told to stop."""
    side = Side(url)
    while True:
        message = connection.recv()
        if message is None:
            break
        try:
            connection.send(side.do(*message))
        except Exception as exc:
            connection.send(("error", repr(exc)))
    side.store.close()


class LedgerModel(RuleBasedStateMachine):
    """The reference model: the project's status and each attempt's state and lease."""

    url: str
    child: Any

    def __init__(self) -> None:
        super().__init__()
        self.local = Side(self.url)
        self.now = 1_800_000_000.0
        self.status = "DRAFT"
        self.states: dict[int, str] = {}
        self.leases: dict[int, float] = {}
        self.owners: dict[int, str] = {}
        """Each attempt's current owner token."""
        self.holders: list[tuple[str, int, bool]] = []
        """Every owner there has been: (token, attempt, whether the child holds it)."""
        self.key = ""

    @initialize()
    def create(self) -> None:
        self.key = self.local.store.create("stateful", {}).id

    def run(
        self, remote: bool, op: str, attempt_id: int | None = None, owner: str | None = None
    ) -> tuple[str, Any]:
        message = (op, self.key, self.now, attempt_id, owner)
        if remote:
            self.child.send(message)
            result = self.child.recv()
        else:
            result = self.local.do(*message)
        assert result[0] != "error", result
        return result  # type: ignore[no-any-return]

    def live(self) -> list[int]:
        return [a for a, s in self.states.items() if s in LIVE]

    @rule(remote=st.booleans())
    def start(self, remote: bool) -> None:
        outcome, made = self.run(remote, "start")
        if self.status == "PROCESSING":
            assert outcome == "conflict"
            return
        assert outcome == "ok"
        new_id, token = made
        self.owners[new_id] = token
        self.holders.append((token, new_id, remote))
        assert all(new_id > a for a in self.states)
        for a in self.live():
            self.states[a] = "superseded"
        self.states[new_id] = "queued"
        self.leases[new_id] = self.now + LEASE
        self.status = "PROCESSING"

    def pick(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from(sorted(self.states)))

    @precondition(lambda self: self.states)
    @rule(remote=st.booleans(), data=st.data())
    def begin(self, remote: bool, data: st.DataObject) -> None:
        attempt = self.pick(data)
        outcome, token = self.run(remote, "begin", attempt)
        if self.states[attempt] == "rendering" and self.leases[attempt] >= self.now:
            # One owner per attempt: a worker renders it and its lease is live.
            assert outcome == "owned"
        elif self.states[attempt] in LIVE:
            # Queued, or rendering on a worker whose lease ran out: taken over, under a
            # fresh owner token.
            assert outcome == "ok"
            assert token not in {t for t, _, _ in self.holders}
            self.owners[attempt] = token
            self.holders.append((token, attempt, remote))
            self.states[attempt] = "rendering"
            self.leases[attempt] = self.now + LEASE
        else:
            assert outcome == "superseded"

    @precondition(lambda self: self.states)
    @rule(remote=st.booleans(), data=st.data())
    def heartbeat(self, remote: bool, data: st.DataObject) -> None:
        attempt = self.pick(data)
        _, alive = self.run(remote, "heartbeat", attempt)
        assert alive is (self.states[attempt] in LIVE)
        if alive:
            self.leases[attempt] = self.now + LEASE

    @precondition(lambda self: self.states)
    @rule(remote=st.booleans(), data=st.data(), succeed=st.booleans())
    def finish(self, remote: bool, data: st.DataObject, succeed: bool) -> None:
        """A worker, current or late, completes or fails its attempt."""
        attempt = self.pick(data)
        outcome, _ = self.run(remote, "complete" if succeed else "fail", attempt)
        if self.states[attempt] in LIVE:
            assert self.status == "PROCESSING"
            assert outcome == "ok"
            self.states[attempt] = "completed" if succeed else "failed"
            self.status = "COMPLETED" if succeed else "FAILED"
        else:
            assert outcome == "superseded"

    @precondition(lambda self: self.holders)
    @rule(data=st.data(), op=st.sampled_from(["heartbeat", "complete", "fail"]))
    def an_owner_acts(self, data: st.DataObject, op: str) -> None:
        """An owner, the current one or one replaced since, renews or ends its attempt as
        its own start or begin returned it: only the current owner of a live attempt is
        heard."""
        token, attempt, remote = data.draw(st.sampled_from(self.holders))
        outcome, alive = self.run(remote, op, attempt, token)
        heard = self.owners[attempt] == token and self.states[attempt] in LIVE
        if op == "heartbeat":
            assert alive is heard
            if heard:
                self.leases[attempt] = self.now + LEASE
            return
        if not heard:
            assert outcome == "superseded"
            return
        assert outcome == "ok"
        self.states[attempt] = "completed" if op == "complete" else "failed"
        self.status = "COMPLETED" if op == "complete" else "FAILED"

    @rule(seconds=st.sampled_from([0.5, 4.0, 11.0]))
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @rule(remote=st.booleans())
    def recover(self, remote: bool) -> None:
        _, recovered = self.run(remote, "recover")
        expected = sorted(a for a in self.live() if self.leases[a] < self.now)
        assert recovered == expected
        for a in expected:
            self.states[a] = "interrupted"
            self.status = "FAILED"

    @invariant()
    def database_matches_the_model(self) -> None:
        if not self.key:
            return
        assert self.local.store.get(self.key).status == self.status
        history = self.local.store.ledger.history(Project.__tablename__, self.key)
        assert {a.id: a.state.value for a in history} == self.states
        live = [a for a in history if a.state in (AttemptState.QUEUED, AttemptState.RENDERING)]
        assert len(live) <= 1
        assert (self.status == "PROCESSING") is bool(live)
        if live:
            assert live[0].id == max(self.states)

    def teardown(self) -> None:
        self.local.store.close()


@pytest.fixture(params=[p for p in BACKEND_PARAMS if p.id in ("sqlite", "postgres")])
def url(request: pytest.FixtureRequest, db_targets: dict[str, object]) -> str:
    return target_for(db_targets, request.param).sqlalchemy_url()  # type: ignore[arg-type]


@pytest.fixture
def child(url: str) -> Iterator[Any]:
    Store(url).close()  # the tables exist before both sides open the database
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    process = context.Process(target=serve, args=(url, there))
    process.start()
    yield here
    here.send(None)
    process.join(timeout=30)


@pytest.mark.slow
def test_ledger_from_two_processes_matches_the_model(url: str, child: Any) -> None:
    """Random starts, begins, heartbeats, finishes (current and late), waits and recoveries,
    each issued by this process or the child, leave exactly what the model predicts."""
    LedgerModel.url = url
    LedgerModel.child = child
    run_state_machine_as_test(
        LedgerModel, settings=settings(max_examples=25, stateful_step_count=25, deadline=None)
    )
