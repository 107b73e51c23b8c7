"""The ledger's writes folded into the project's guarded UPDATE: the guard and the fence hold.

With the SQLAlchemy store and adapter, a start on PostgreSQL and a completion on PostgreSQL
and MariaDB are one statement writing both rows; a start on MariaDB through connections
opened with multi-statements is the guarded UPDATE and the attempt's INSERT in one round
trip. Each test here fails if that lost the project's guard (a second render, a completion
of a project no longer PROCESSING) or the attempt's fence (a superseded owner's
completion): racing real threads and a second connection that holds the project's row,
on the real databases.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pymysql.constants import CLIENT
from sqlalchemy import Engine, create_engine, event, update
from sqlalchemy.orm import sessionmaker

from adapters.databases import Target
from renderstate import (
    AttemptSupersededError,
    InvalidTransitionError,
    ProjectLifecycle,
    RenderConflictError,
    Status,
)
from renderstate.cli._store import Store
from renderstate.ledger import AttemptState, Ledger
from renderstate.ledger._sa_folds import MULTI_STATEMENTS

from .conftest import target_for
from .contract import ledger_for
from .test_sqlalchemy import SQLAlchemyLedgerHarness

FOLDING = ["postgres", "mariadb", "mariadb-multi"]
THREADS = 12
_ENGINES: dict[Target, Engine] = {}


class MultiStatementHarness(SQLAlchemyLedgerHarness):
    """The reference model on MariaDB through connections opened with multi-statements."""

    def prepare(self) -> None:
        super().prepare()
        if self.target not in _ENGINES:
            url = f"{self.target.sqlalchemy_url()}&client_flag={MULTI_STATEMENTS}"
            _ENGINES[self.target] = create_engine(url, pool_size=20)
        self.engine = _ENGINES[self.target]
        self.factory = sessionmaker(self.engine, expire_on_commit=False)


@pytest.fixture(params=FOLDING)
def harness(request: pytest.FixtureRequest, db_targets: Any) -> Iterator[SQLAlchemyLedgerHarness]:
    """The SQLAlchemy store and adapter (the reference model) on a database that folds."""
    backend, _, multi = request.param.partition("-")
    kind = MultiStatementHarness if multi else SQLAlchemyLedgerHarness
    made = kind(target_for(db_targets, backend), variant=False)
    made.prepare()
    yield made
    made.release()


def first_words(statements: list[str]) -> list[str]:
    return [s.lstrip().split(None, 1)[0].upper() for s in statements]


def test_a_start_and_a_completion_are_one_round_trip_each(
    harness: SQLAlchemyLedgerHarness,
) -> None:
    """PostgreSQL: a start is one statement (the INSERT around the guarded UPDATE), a
    completion one. MariaDB: a completion is one multi-table UPDATE; a start the guarded
    UPDATE and the INSERT, sent together where the connection takes multi-statements."""
    ledger = ledger_for(harness)
    ledger.start(harness.lifecycle(harness.load(harness.insert())))  # first use: the hooks
    lifecycle = harness.lifecycle(harness.load(harness.insert(Status.COMPLETED)))
    with harness.capture() as started:
        _, attempt = ledger.start(lifecycle)
    attempt = ledger.begin(attempt)
    with harness.capture() as completed:
        ledger.complete(lifecycle, attempt, "projects/1/final.mp4")
    backend = harness.target.backend
    if backend == "postgres":
        assert first_words(started) == ["WITH"], started
        assert "INSERT INTO" in started[0]
        assert first_words(completed) == ["WITH"], completed
    else:
        multi = isinstance(harness, MultiStatementHarness)
        assert first_words(started) == ["UPDATE"] if multi else ["UPDATE", "INSERT"], started
        assert ("; INSERT INTO" in started[0]) is multi
        assert first_words(completed) == ["UPDATE"], completed
    assert ledger.get(attempt.id) is not None
    assert harness.row(lifecycle.project_key)["status"] == harness.literal(Status.COMPLETED)


def holding(harness: SQLAlchemyLedgerHarness, key: object, status: Status) -> Any:
    """A second connection's open transaction that moved the project to ``status``: it
    holds the project's row until it commits."""
    connection = harness.engine.connect()
    transaction = connection.begin()
    table = harness.model.__table__
    connection.execute(
        update(table).where(table.c.id == key).values(status=harness.literal(status))
    )
    return connection, transaction


def after_it_waits(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """``call`` in a thread, started; its result or error lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_racing_starts_one_wins_one_attempt(harness: SQLAlchemyLedgerHarness) -> None:
    """Of 12 threads starting one COMPLETED project at once with one statement each, one
    wins, 11 get 409, exactly one attempt is written and the old video stays."""
    ledger = ledger_for(harness)
    key = harness.insert(Status.COMPLETED, output="projects/1/final.mp4")
    before = harness.attempts()
    barrier = threading.Barrier(THREADS)

    def start(_: int) -> str:
        lifecycle = harness.lifecycle(harness.load(key))
        barrier.wait()
        try:
            ledger.start(lifecycle)
        except RenderConflictError:
            return "conflict"
        return "won"

    with ThreadPoolExecutor(THREADS) as pool:
        results = sorted(pool.map(start, range(THREADS)))
    assert results == ["conflict"] * (THREADS - 1) + ["won"]
    assert harness.attempts() == before + 1
    assert harness.row(key)["status"] == harness.literal(Status.PROCESSING)
    assert harness.row(key)["output"] == "projects/1/final.mp4"


def test_a_start_that_waited_for_another_start_is_refused(
    harness: SQLAlchemyLedgerHarness,
) -> None:
    """A start blocked on the project's row while another transaction moves it to
    PROCESSING is refused once that commits, and inserts no attempt."""
    ledger = ledger_for(harness)
    key = harness.insert(Status.FAILED)
    lifecycle = harness.lifecycle(harness.load(key))  # reads FAILED: it will try
    before = harness.attempts()
    connection, transaction = holding(harness, key, Status.PROCESSING)
    try:
        thread, outcome = after_it_waits(lambda: ledger.start(lifecycle))
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting for the row
        transaction.commit()
    finally:
        connection.close()
    thread.join(timeout=60)
    assert len(outcome) == 1
    assert isinstance(outcome[0], RenderConflictError), outcome
    assert harness.attempts() == before


def test_a_superseded_owner_s_completion_changes_nothing(
    harness: SQLAlchemyLedgerHarness,
) -> None:
    """An attempt whose owner token is no longer current (another worker took it over)
    cannot complete the project: the project and both attempts keep what they held."""
    ledger = ledger_for(harness)
    key = harness.insert()
    lifecycle = harness.lifecycle(harness.load(key))
    _, queued = ledger.start(lifecycle)
    first = ledger.begin(queued)
    # Its lease ends (the worker stalled) and a second worker takes the attempt over.
    harness.store().update(first.id, {"lease_expires_at": 0.0}, states=[AttemptState.RENDERING])
    second = ledger.begin(first)
    row = harness.row(key)
    with pytest.raises(AttemptSupersededError):
        ledger.complete(lifecycle, first, "projects/late/final.mp4", fields={"title": "late"})
    assert harness.row(key) == row
    assert ledger.get(first.id) == second
    ledger.complete(harness.lifecycle(harness.load(key)), second, "projects/1/final.mp4")
    assert harness.row(key)["status"] == harness.literal(Status.COMPLETED)


def test_a_late_finish_of_an_ended_attempt_is_superseded_not_a_transition_error(
    harness: SQLAlchemyLedgerHarness,
) -> None:
    """An attempt its owner already completed, finished again (a duplicate delivery's
    fail): the ride plans the project's UPDATE before the attempt's fence is tried and
    meets COMPLETED, but the caller learns what the unfolded write tells it, that the
    attempt is no longer its own (AttemptSupersededError), and nothing changes. The
    stateful two-process test found it on PostgreSQL."""
    ledger = ledger_for(harness)
    key = harness.insert()
    _, queued = ledger.start(harness.lifecycle(harness.load(key)))
    owner = ledger.begin(queued)
    ledger.complete(harness.lifecycle(harness.load(key)), owner, "projects/1/final.mp4")
    row, attempt = harness.row(key), ledger.get(owner.id)
    for finish in (
        lambda: ledger.fail(harness.lifecycle(harness.load(key)), owner, "boom"),
        lambda: ledger.complete(harness.lifecycle(harness.load(key)), owner, "projects/2.mp4"),
    ):
        with pytest.raises(AttemptSupersededError):
            finish()
        assert harness.row(key) == row
        assert ledger.get(owner.id) == attempt


def test_a_completion_of_a_project_moved_out_of_processing_changes_nothing(
    harness: SQLAlchemyLedgerHarness,
) -> None:
    """A project failed around the ledger while the completion waited for its row: the
    completion is refused (InvalidTransitionError), the project keeps FAILED and its old
    video, and the attempt is interrupted, not completed."""
    ledger = ledger_for(harness)
    key = harness.insert(Status.COMPLETED, output="projects/1/old.mp4")
    lifecycle = harness.lifecycle(harness.load(key))
    _, attempt = ledger.start(lifecycle)
    attempt = ledger.begin(attempt)
    connection, transaction = holding(harness, key, Status.FAILED)
    try:
        thread, outcome = after_it_waits(
            lambda: ledger.complete(lifecycle, attempt, "projects/1/new.mp4")
        )
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting for the row
        transaction.commit()
    finally:
        connection.close()
    thread.join(timeout=60)
    assert len(outcome) == 1
    assert isinstance(outcome[0], InvalidTransitionError), outcome
    row = harness.row(key)
    assert row["status"] == harness.literal(Status.FAILED)
    assert row["output"] == "projects/1/old.mp4"
    ended = ledger.get(attempt.id)
    assert ended is not None
    assert ended.state is AttemptState.INTERRUPTED


def test_a_refused_completion_leaves_the_attempt_to_fail(harness: SQLAlchemyLedgerHarness) -> None:
    """A completion refused because the project left PROCESSING writes nothing with its
    one statement, and a retry of the same transition inside it does not find the attempt
    already completed: the attempt is interrupted, never completed."""
    ledger = ledger_for(harness)
    key = harness.insert()
    lifecycle = harness.lifecycle(harness.load(key))
    _, attempt = ledger.start(lifecycle)
    harness.lifecycle(harness.load(key)).fail("by hand")
    with pytest.raises(InvalidTransitionError):
        ledger.complete(lifecycle, attempt, "projects/1/final.mp4")
    ended = ledger.get(attempt.id)
    assert ended is not None
    assert ended.state is AttemptState.INTERRUPTED
    assert harness.row(key)["status"] == harness.literal(Status.FAILED)


def test_a_start_then_completion_writes_the_onupdate_column(
    harness: SQLAlchemyLedgerHarness,
) -> None:
    """The folded statements write the model's Python-side onupdate column (updated_at),
    and set the status and output on the object as the row holds them."""
    ledger = Ledger(harness.store())
    key = harness.insert()
    project = harness.load(key)
    lifecycle = harness.lifecycle(project)
    created = harness.row(key)["updated_at"]
    _, attempt = ledger.start(lifecycle)
    started = harness.row(key)["updated_at"]
    assert project.status == "PROCESSING"
    assert started > created
    ledger.complete(lifecycle, attempt, "projects/1/final.mp4")
    assert harness.row(key)["updated_at"] > started
    assert project.status == "COMPLETED"
    assert project.output_path == "projects/1/final.mp4"


def test_a_start_returns_the_attempt_as_stored_reading_back_only_what_the_database_chose(
    harness: SQLAlchemyLedgerHarness,
) -> None:
    """A start's INSERT returns the new id and the times the database's clock chose, not
    every column (each returned column cost the driver and SQLAlchemy a description and a
    result processor); the attempt it answers is the row as stored, field for field."""
    ledger = Ledger(harness.store())  # the database's clock: it chooses the times
    ledger.start(harness.lifecycle(harness.load(harness.insert())))  # first use: the hooks
    lifecycle = harness.lifecycle(harness.load(harness.insert(Status.COMPLETED)))
    with harness.capture() as started:
        _, attempt = ledger.start(
            lifecycle,
            output_path="projects/1/final.mp4",
            actor="ada",
            task_id="task-1",
            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
    assert attempt == ledger.get(attempt.id)
    assert attempt.output_path == "projects/1/final.mp4"
    assert attempt.created_at is not None
    assert attempt.lease_expires_at == pytest.approx(attempt.created_at + ledger.lease)
    (inserted,) = [s for s in started if "INSERT INTO" in s]
    returning = inserted.rsplit("RETURNING", 1)[1].split("EXISTS", 1)[0]
    returned = sorted(c.strip().rsplit(".", 1)[-1] for c in returning.split(",") if c.strip())
    assert returned == ["created_at", "id", "lease_expires_at"], inserted


def test_the_command_line_store_sends_a_start_in_one_round_trip(db_targets: Any) -> None:
    """The command line's store opens its MariaDB connections with multi-statements (and
    found rows): a start is one round trip, a completion one statement."""
    store = Store(target_for(db_targets, "mariadb").sqlalchemy_url())
    try:
        with store.engine.connect() as connection:
            flags = connection.connection.dbapi_connection.client_flag  # type: ignore[union-attr]
        assert flags & MULTI_STATEMENTS
        assert flags & CLIENT.FOUND_ROWS
        ledger = store.ledger
        ledger.start(ProjectLifecycle(store.create("warm-up", {}), store.adapter))
        lifecycle = ProjectLifecycle(store.create("one trip", {}), store.adapter)
        sent: list[str] = []
        event.listen(store.engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        _, attempt = ledger.start(lifecycle)
        assert first_words(sent) == ["UPDATE"], sent
        assert "; INSERT INTO" in sent[0]
        ledger.complete(lifecycle, attempt, "projects/1/final.mp4")
        assert first_words(sent) == ["UPDATE", "UPDATE"], sent
        assert store.get(str(lifecycle.project_key)).status == "COMPLETED"
    finally:
        store.close()
