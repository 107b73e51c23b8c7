"""Recovering: fail the projects a dead process left PROCESSING, and clean up after it.

With a ledger, the interrupted attempts are found by their expired leases (set-based, safe
at any time in any process) and may be submitted again; without one, the candidates are
given (or found by ``find_processing``) and only safe at process start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from renderstate import telemetry
from renderstate._attempts import Attempt
from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import TransitionRecord
from renderstate.exceptions import RenderStateError
from renderstate.recovery import _settle_ended, fail_interrupted
from renderstate.runner._directory_output import recover_without_ledger as recover_directory
from renderstate.runner._job import RenderJob
from renderstate.runner._publishing import clean_after
from renderstate.runner._state import RunnerState
from renderstate.typing import ProjectT

logger = logging.getLogger("renderstate.runner")


def recover_interrupted(
    state: RunnerState[ProjectT],
    projects: Iterable[ProjectT] | None,
    *,
    requeue: bool,
    submit: Callable[..., RenderJob[ProjectT]],
) -> list[TransitionRecord]:
    """Fail the interrupted projects; see :meth:`RenderRunner.recover_interrupted`."""
    if state.ledger is not None:
        return _recover_expired(state, projects, requeue=requeue, submit=submit)
    if requeue:
        msg = "recover_interrupted(requeue=True) needs a ledger; see 'Running several processes'"
        raise TypeError(msg)
    if projects is None:
        if state.find_processing is None:
            msg = (
                "recover_interrupted() needs the projects left PROCESSING: pass them, "
                "or create the RenderRunner with find_processing=<a function that loads "
                "them>, e.g. lambda: Project.objects.filter(status='PROCESSING')"
            )
            raise TypeError(msg)
        projects = state.find_processing()
    records: list[TransitionRecord] = []
    for project in projects:
        lifecycle = state.quiet_lifecycle(project)
        key = lifecycle.project_key
        # Under the key lock, no submit of this runner can start the project between
        # the check that it is not rendering here and the fail() below.
        with state.key_locks.hold(key):
            record = _recover(state, project, lifecycle)
        if record is not None:
            state.notify(record)
            records.append(record)
    return records


def _recover_expired(
    state: RunnerState[ProjectT],
    projects: Iterable[ProjectT] | None,
    *,
    requeue: bool,
    submit: Callable[..., RenderJob[ProjectT]],
) -> list[TransitionRecord]:
    assert state.ledger is not None
    if projects is not None:
        msg = (
            "with a ledger, recover_interrupted() finds the interrupted attempts itself: "
            "call it without projects"
        )
        raise TypeError(msg)
    if state.loader is None:
        msg = (
            "recover_interrupted() with a ledger needs a loader: create the RenderRunner "
            "with loader=store.loader(Project) (or any callable with a 'scope' attribute "
            "that loads a project by its key text)"
        )
        raise TypeError(msg)
    found = state.ledger.recover(
        state.adapter,
        state.loader,
        cleanup=lambda attempt: clean_after(state, attempt),
        **state.failing_options,
    )
    # After the dead attempts' own backups went back (clean_after): those of attempts
    # killed after their completion committed, which no lease brings here.
    _settle_ended(state.ledger, lambda attempt: _file_of(state, attempt), state.media_root)
    records = [r.record for r in found if r.record is not None]
    for record in records:
        state.notify(record)
    if requeue:
        for recovered in found:
            if recovered.record is None:
                continue
            project = state.loader(recovered.attempt.project_key)
            if project is None:  # pragma: no cover - deleted in between
                continue
            try:
                submit(project, actor=recovered.attempt.actor)
                telemetry.requeued(recovered.attempt.scope)
            except RenderStateError as exc:
                logger.warning("could not re-queue project %s: %s", recovered.attempt, exc)
    return records


def _recover(
    state: RunnerState[ProjectT], project: ProjectT, lifecycle: ProjectLifecycle[ProjectT]
) -> TransitionRecord | None:
    key = lifecycle.project_key
    running = state.registry.jobs.get(key)
    if running is not None and not running.done():
        return None
    try:
        final: Path | None = state.file_for(state.output_path(project))
    except RenderStateError:
        final = None
    if final is not None:
        recover_directory(lifecycle, final, state.media_root)
    record = fail_interrupted(lifecycle, final_file=final, media_root=state.media_root)
    if record is not None and record.error is not None:
        # No ledger keeps the reason: this runner's error() answers it from memory, until
        # a newer job of the project replaces the one current here now.
        state.recovered[key] = (running, record.error)
    return record


def _file_of(state: RunnerState[ProjectT], attempt: Attempt) -> Path | None:
    """Where ``attempt``'s output is, from the path its start recorded."""
    return None if attempt.output_path is None else state.file_for(attempt.output_path)
