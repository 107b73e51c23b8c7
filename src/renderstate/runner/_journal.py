"""The publish journal around the runner's rename: back up, then drop or put back.

The rename of a new video over the final file and the commit of its completion cannot be
one step. So the previous video is kept under a backup name (:func:`renderstate.files.backup`)
from just before the rename until the save's outcome is known: dropped once the project is
COMPLETED, put back when the save was refused, left for recovery when the save gave up (it
may have committed). With a ledger the backup is tagged with the attempt's id and made
inside the fenced completion; without one it gets a fresh tag, around ``complete()``.

Leftovers (a process killed between the rename and the backup's removal or restoring) are
settled by whoever comes next and can tell whether their publish committed: the next
attempt's begin (it asks the ledger), the next start without a ledger (it reads the previous
status), and recovery (the ledger's cleanup restores a dead attempt's own backup;
:func:`renderstate.recovery` settles those of attempts that ended).
"""

from __future__ import annotations

import logging
from pathlib import Path

from renderstate._records import TransitionRecord
from renderstate._status import Status
from renderstate.exceptions import RenderStateError
from renderstate.files import backups, drop_backup, restore, settle_backups
from renderstate.recovery import _settle_tagged_backups
from renderstate.runner._directory_output import settle_without_ledger
from renderstate.runner._job import RenderJob
from renderstate.runner._state import RunnerState
from renderstate.typing import ProjectT

logger = logging.getLogger("renderstate.runner")


def settle_before_start(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> None:
    """Without a ledger: settle what a publish killed after its rename left, before a start.

    Once the start commits, the project is PROCESSING and its status can no longer tell a
    backup whose publish committed from one that did not; before it, the previous status
    does: COMPLETED (committed: dropped), or not (put back).
    """
    try:
        status = job._lifecycle.status
        if status is not Status.PROCESSING:
            final = state.file_for(job.output_path)
            settle_backups(final, status is Status.COMPLETED, media_root=state.media_root)
            # A directory output's previous version, kept in its staging directory.
            settle_without_ledger(final, status, state.media_root, leave_unmarked=True)
    except (OSError, RenderStateError):
        logger.exception("could not settle the backups of project %s", job.project_key)


def settle_at_begin(state: RunnerState[ProjectT], job: RenderJob[ProjectT], final: Path) -> None:
    """With a ledger: settle other attempts' backups of ``final`` as the ledger says they ended.

    Runs once the job's attempt has begun, before it renders. The attempt's own backup
    (a previous owner of it, taken over, renamed its video and never committed) is put back.
    A live attempt's backup is never touched: only a newer attempt that started since can
    be live, and its own end settles it.
    """
    ledger, attempt = state.ledger, job.attempt
    if ledger is None or attempt is None:
        return
    found = backups(final, media_root=state.media_root)
    if not found:
        return  # the usual case: one directory listing, no query
    history = ledger.history(attempt.scope, attempt.project_key)
    mine = attempt.id
    root = state.media_root
    spare = lambda a: a.active and a.id != mine  # noqa: E731 - one line, named for reading
    _settle_tagged_backups(final, found, history, spare=spare, media_root=root)


def settle_publish(
    final: Path,
    tag: str | int,
    record: TransitionRecord | None,
    problem: BaseException | None,
    media_root: Path,
) -> None:
    """After the save of a journaled publish: drop the backup, put it back, or leave it.

    Saved COMPLETED: the backup goes. Refused (the project or the attempt moved on, the
    transaction rolled back): the previous video goes back. A save that gave up or was
    interrupted may or may not have committed: the backup stays for recovery, which asks
    the database (the project is still PROCESSING, or the attempt still live, only if it
    did not).
    """
    try:
        if record is not None and record.target is Status.COMPLETED:
            drop_backup(final, tag, media_root=media_root)
        elif problem is None or isinstance(problem, RenderStateError):
            restore(final, tag, media_root=media_root)
        else:
            logger.warning(
                "the save of %s's completion may not have committed; its backup stays for "
                "recover_interrupted()",
                final,
            )
    except (OSError, RenderStateError):
        logger.exception("could not settle the backup of %s", final)


def put_back(final: Path, tag: str | int, media_root: Path) -> None:
    """Restore ``final`` from its backup ``tag`` after a rename that did not happen."""
    try:
        restore(final, tag, media_root=media_root)
    except (OSError, RenderStateError):
        # The error being raised matters more; recovery restores the backup later.
        logger.exception("could not put back %s from its backup", final)
