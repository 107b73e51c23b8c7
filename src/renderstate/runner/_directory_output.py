"""Publishing a directory output (HLS, DASH, an image sequence): the directory half of a render.

A renderer whose ``output`` is ``"directory"`` (``own_path(..., output="directory")``)
writes into an empty staging directory inside the render's private directory beside the
output (:class:`renderstate._staging.Staging`). When it returns, every file and
directory in it is checked and fsynced, and it is swapped with the output directory in one
``renameat2(RENAME_EXCHANGE)``: without a ledger under the key lock, with one inside the
fenced completion. The previous directory stays in the private directory until the save's
outcome is known: removed once the project is COMPLETED, swapped back when the save was
refused, left for recovery when it is unknown. Recovery, a takeover and the next attempt
settle what a dead process left the same way the file journal (:mod:`._journal`) does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from renderstate._attempts import Attempt
from renderstate._confined import entries, folder
from renderstate._directories import (
    settle_output,
    staging_names,
)
from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import TransitionRecord
from renderstate._staging import Staging, check_output
from renderstate._status import Status
from renderstate.exceptions import RenderOutputError, RenderStateError
from renderstate.files import new_tag
from renderstate.recovery import _committed_by, _temporary_token
from renderstate.runner._ending import end_completed, end_failed
from renderstate.runner._job import RenderJob
from renderstate.runner._state import RunnerState
from renderstate.runner.progress import Phase
from renderstate.typing import ProjectT

logger = logging.getLogger("renderstate.runner")


def render_directory(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> None:
    """Render the job's output directory into staging and swap it in; end the job either way."""
    staging: Staging | None = None
    swapped = False
    root = state.media_root
    try:
        output = state.file_for(job.output_path)
        with folder(output.parent, media_root=root, create=True) as directory:
            # Refused before anything is written: the file there stays as it is.
            check_output(directory, output.name, output.parent)
            settle_at_begin(state, job, output)
            token = _temporary_token(job.owner) or new_tag()
            staging = Staging(directory, output, token, root)
        job._tracker.enter(Phase.RENDERING)
        job._check_cancelled()
        written = job._returned(state.renderer(job.project, staging.target, job._report))
        job._check_cancelled()
        job._tracker.enter(Phase.FINALIZING)
        if written is not None:
            _adopt(staging, written, job.project_key)
        staging.seal(job.project_key)
        staging.clear_scratch()
        job._begin_publishing()
        if state.ledger is None:
            tag = new_tag()
            _swap(state, job, staging, tag)
            swapped = True
    except BaseException as exc:
        if staging is not None:
            staging.settle(committed=False)  # puts the previous one back if it was swapped
        end_failed(state, job, exc)
        if not isinstance(exc, Exception):
            raise
        return
    assert staging is not None
    if swapped:
        end_completed(state, job, clean_up=_settler(staging))
        return
    assert job.attempt is not None
    tag = str(job.attempt.id)
    done: list[bool] = []

    def publish() -> None:
        if not done:  # a retried save after a failed commit: already in place
            assert staging is not None
            try:
                _swap(state, job, staging, tag)
            except BaseException:
                staging.settle(committed=False)
                raise
            done.append(True)

    end_completed(state, job, publish, _settler(staging))


def _swap(
    state: RunnerState[ProjectT], job: RenderJob[ProjectT], staging: Staging, tag: str
) -> None:
    with state.key_locks.hold(job.project_key):
        # Under the key lock, no new attempt can register between the check and the swap.
        if state.registry.superseded(job):
            raise state.registry.superseded_error(job)
        staging.swap(tag)  # atomic: readers see the old directory or the new one


def _settler(staging: Staging) -> Callable[[TransitionRecord | None, BaseException | None], None]:
    def clean_up(record: TransitionRecord | None, problem: BaseException | None) -> None:
        try:
            if record is not None and record.target is Status.COMPLETED:
                staging.settle(committed=True)
            elif problem is None or isinstance(problem, RenderStateError):
                staging.settle(committed=False)
            else:
                logger.warning(
                    "the save of %s's completion may not have committed; its previous "
                    "directory stays for recover_interrupted()",
                    staging.output,
                )
                staging.close()
        except (OSError, RenderStateError):
            logger.exception("could not settle the previous directory of %s", staging.output)
            staging.close()

    return clean_up


def _adopt(staging: Staging, written: object, project_key: object) -> None:
    if not isinstance(written, (str, os.PathLike)):
        raise RenderOutputError(
            project_key=project_key,
            reason=f"the renderer returned {type(written).__name__}, not the path of the "
            f"directory it wrote (return None after writing the target, or a str or Path)",
        )
    source = Path(written)
    if os.path.normpath(source.absolute()) == os.path.normpath(staging.target.absolute()):
        return
    staging.adopt(source, project_key=project_key)


# ------------------------------------------------------------------ settling leftovers


def settle_at_begin(state: RunnerState[ProjectT], job: RenderJob[ProjectT], output: Path) -> None:
    """With a ledger: settle other attempts' staging directories as the ledger says they ended."""
    ledger, attempt = state.ledger, job.attempt
    if ledger is None or attempt is None:
        return
    try:
        with folder(output.parent, media_root=state.media_root, create=False) as fd:
            names = staging_names(entries(fd), output)
    except FileNotFoundError:
        return
    if not names:
        return  # the usual case: one listing, no query
    history = ledger.history(attempt.scope, attempt.project_key)
    mine = attempt.id
    judge = _committed_by(history, spare=lambda a: a.active and a.id != mine)
    settle_output(output, judge, media_root=state.media_root)


def clean_after(state: RunnerState[ProjectT], attempt: Attempt) -> None:
    """After an attempt found dead (it never committed): put the previous directory back.

    Only its owner's staging directories: a live writer's stay.
    """
    if attempt.output_path is None:
        return
    output = state.file_for(attempt.output_path)
    token = _temporary_token(attempt.owner)
    for name in settle_output(output, lambda _: False, token=token, media_root=state.media_root):
        logger.warning("attempt %s: settled %s, left by its dead owner", attempt.id, name)


def recover_without_ledger(
    lifecycle: ProjectLifecycle[ProjectT], output: Path, media_root: Path
) -> None:
    """Recovery without a ledger: settle ``output``'s staging directories before the fail.

    The project's status is read again from the database first (only when there is a
    staging directory): PROCESSING means its publish never committed.
    """
    try:
        with folder(output.parent, media_root=media_root, create=False) as fd:
            if not staging_names(entries(fd), output):
                return
    except (OSError, RenderStateError):
        return  # the file recovery that follows reports what is wrong with the directory
    try:
        status = lifecycle.refresh()
    except RenderStateError:
        logger.exception("could not read project %s again", lifecycle.project_key)
        return
    settle_without_ledger(output, status, media_root, leave_unmarked=False)


def settle_without_ledger(
    output: Path, status: Status, media_root: Path, *, leave_unmarked: bool
) -> None:
    """Without a ledger: settle ``output``'s staging directories by the project's ``status``.

    PROCESSING (recovery, before the project is failed): nothing committed, every previous
    directory goes back. Otherwise its last publish committed if it is COMPLETED. A staging
    directory never journaled is removed (``leave_unmarked``: left, a writer may be live).
    """

    def committed(tag: str | None) -> bool | None:
        if tag is None:
            return None if leave_unmarked else False
        return status is Status.COMPLETED

    try:
        settle_output(output, committed, media_root=media_root)
    except (OSError, RenderStateError):
        logger.exception("could not settle the staging directories of %s", output)
