"""Owner tokens under hostile input: a token that fences nothing is refused before anything is
written, and an odd worker name never turns a takeover into an error after it committed."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.conftest import BACKEND_PARAMS, db_targets, target_for
from renderstate import ProjectLifecycle
from renderstate.cli._store import Project, Store
from renderstate.exceptions import AttemptSupersededError
from renderstate.ledger import Attempt, AttemptState, Ledger

__all__ = ["db_targets"]

LEASE = 0.2


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(f"sqlite:///{tmp_path / 'owners.db'}")
    yield made
    made.close()


@pytest.fixture(params=BACKEND_PARAMS)
def any_store(request: pytest.FixtureRequest, db_targets: dict[str, object]) -> Iterator[Store]:
    """The command line's store on SQLite, PostgreSQL and MariaDB."""
    made = Store(target_for(db_targets, request.param).sqlalchemy_url())  # type: ignore[arg-type]
    yield made
    made.close()


def _ledger(store: Store) -> Ledger:
    return Ledger(store.ledger.store, lease=LEASE)


def _started(store: Store, ledger: Ledger) -> tuple[ProjectLifecycle[Project], Project, Attempt]:
    project = store.create("owned", {})
    lifecycle = ProjectLifecycle(project, store.adapter)
    _, queued = ledger.start(lifecycle)
    return lifecycle, project, queued


@pytest.mark.parametrize(("owner", "error"), [(None, TypeError), ("", ValueError), (7, TypeError)])
def test_give_up_refuses_an_owner_that_fences_nothing(
    store: Store, owner: Any, error: type[Exception]
) -> None:
    """give_up(owner=None) turned the owner fence off: a begin that failed, holding no
    token, failed the live owner's attempt and its project. A missing, empty or non-text
    owner is now refused, and the owner's attempt and project are untouched."""
    ledger = _ledger(store)
    lifecycle, project, queued = _started(store, ledger)
    owned = ledger.begin(queued)
    with pytest.raises(error, match="owner"):
        ledger.give_up(lifecycle, queued, "a duplicate's begin failed", owner=owner)
    assert store.get(project.id).status == "PROCESSING"
    held = ledger.get(queued.id)
    assert held is not None
    assert (held.state, held.owner) == (AttemptState.RENDERING, owned.owner)


@pytest.mark.parametrize("call", ["start", "begin"])
def test_an_empty_owner_token_is_refused_not_replaced(store: Store, call: str) -> None:
    """owner="" was silently replaced by a random token: a caller that passed it to know
    its token (for give_up) holds a token it was never told. It is refused, writing
    nothing."""
    ledger = _ledger(store)
    if call == "start":
        project = store.create("owned", {})
        with pytest.raises(ValueError, match="owner"):
            ledger.start(ProjectLifecycle(project, store.adapter), owner="")
        assert store.get(project.id).status == "DRAFT"
        return
    _, project, queued = _started(store, ledger)
    with pytest.raises(ValueError, match="owner"):
        ledger.begin(queued, owner="")
    attempt = ledger.get(queued.id)
    assert attempt is not None
    assert (attempt.state, attempt.owner) == (AttemptState.QUEUED, queued.owner)


@pytest.mark.parametrize("pid", ["99999999999999999999", "-4194000", "0"])
def test_a_takeover_from_an_odd_worker_name_succeeds_and_keeps_its_files(
    store: Store, pid: str
) -> None:
    """A worker name of this host whose pid is no process id (too large for the OS, zero,
    negative: a process group) made owner_gone raise OverflowError, after the takeover's
    UPDATE had committed, or call a process group gone: the takeover now succeeds, and an
    owner that is not a process id is not known to be gone (its files are left)."""
    ledger = _ledger(store)
    _, _, queued = _started(store, ledger)
    ledger.begin(queued, worker=f"{socket.gethostname()}:{pid}")
    time.sleep(2 * LEASE)
    cleaned: list[Attempt] = []
    taken = ledger.begin(queued, cleanup=cleaned.append)
    assert taken.state is AttemptState.RENDERING
    assert cleaned == []


@pytest.mark.parametrize("token", ["ABC", "abc ", "Worker-1"])
@pytest.mark.parametrize("call", ["start", "begin", "give_up"])
def test_an_owner_token_the_databases_compare_differently_is_refused(
    store: Store, call: str, token: str
) -> None:
    """MariaDB compares text case-insensitively and ignores trailing spaces, so on it
    the owner 'abc' was fenced as the same owner as 'ABC' or 'abc ' (a stale owner's
    heartbeat and fail were accepted), where SQLite and PostgreSQL told them apart. A
    token must be what new_owner() makes (lowercase hex), identical in every database;
    any other is refused before anything is written."""
    ledger = _ledger(store)
    project = store.create("owned", {})
    lifecycle = ProjectLifecycle(project, store.adapter)
    if call == "start":
        with pytest.raises(ValueError, match="owner"):
            ledger.start(lifecycle, owner=token)
        assert store.get(project.id).status == "DRAFT"
        return
    _, queued = ledger.start(lifecycle)
    if call == "begin":
        with pytest.raises(ValueError, match="owner"):
            ledger.begin(queued, owner=token)
    else:
        with pytest.raises(ValueError, match="owner"):
            ledger.give_up(lifecycle, queued, "failed", owner=token)
    attempt = ledger.get(queued.id)
    assert attempt is not None
    assert (attempt.state, attempt.owner) == (AttemptState.QUEUED, queued.owner)
    assert store.get(project.id).status == "PROCESSING"


def test_a_heartbeat_under_a_variant_of_the_owner_token_is_refused(any_store: Store) -> None:
    """An attempt carrying a token that differs from its owner's only in case or trailing
    space (which MariaDB matched: its heartbeat and fail were accepted) renews and ends
    nothing, in every database."""
    store = any_store
    ledger = _ledger(store)
    lifecycle, project, queued = _started(store, ledger)
    owned = ledger.begin(queued)
    assert owned.owner is not None
    for variant in (owned.owner.upper(), f"{owned.owner} "):
        forged = dataclasses.replace(owned, owner=variant)
        assert not ledger.heartbeat(forged)
        with pytest.raises(AttemptSupersededError):
            ledger.fail(lifecycle, forged, "not the owner")
    assert store.get(project.id).status == "PROCESSING"
