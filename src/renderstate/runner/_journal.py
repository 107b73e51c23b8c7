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
:func:`settle_ended` settles those of attempts that ended).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

from renderstate._attempts import Attempt, AttemptState
from renderstate._records import TransitionRecord
from renderstate._status import Status
from renderstate.exceptions import RenderStateError
from renderstate.files import backup_path, backups, drop_backup, restore, settle_backups
from renderstate.ledger import Ledger
from renderstate.runner._directory_output import settle_without_ledger
from renderstate.runner._job import RenderJob
from renderstate.runner._state import RunnerState
from renderstate.typing import ProjectT

logger = logging.getLogger("renderstate.runner")

# A backup the ledger can judge: its tag is an attempt id (new_tag()'s are hex digits).
_LEDGER_BACKUP: Final = re.compile(r"\..*-(?P<tag>[0-9]{1,20})\.backup(\.[^.]*)?")


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
    _settle(final, found, history, spare=lambda a: a.active and a.id != mine, media_root=root)


def settle_ended(state: RunnerState[ProjectT]) -> None:
    """Settle the backups of ended attempts below the media root, for recovery with a ledger.

    A process killed after its completion committed and before it removed its backup
    leaves a backup no lease will ever bring to recovery (the attempt is COMPLETED). The
    media root is walked for backups tagged with an attempt id; a project whose newest
    attempt is live is left to that attempt; otherwise each backup is dropped when its
    attempt (or a newer one) COMPLETED, and put back when not.
    """
    ledger = state.ledger
    assert ledger is not None
    for directory, _, names in os.walk(state.media_root):
        for name in names:
            matched = _LEDGER_BACKUP.fullmatch(name)
            if matched is None:
                continue
            try:
                _settle_found(state, ledger, Path(directory) / name, int(matched["tag"]))
            except (OSError, RenderStateError):
                logger.exception("could not settle the backup %s", Path(directory) / name)


def _settle_found(
    state: RunnerState[ProjectT], ledger: Ledger, found: Path, attempt_id: int
) -> None:
    attempt = ledger.get(attempt_id)
    if attempt is None or attempt.output_path is None:
        return  # not this ledger's attempt: not ours to judge
    final = state.file_for(attempt.output_path)
    if backup_path(final, attempt_id) != found:
        return  # a backup of another final file whose tag happens to be this id
    history = ledger.history(attempt.scope, attempt.project_key)
    if history and history[0].active:
        return  # the live attempt settles them at its begin, or its own end does
    # Between the check above and the settle, a new attempt may start: its begin settles
    # these same backups the same way before it renders, so either one finishes the job.
    _settle(
        final,
        backups(final, media_root=state.media_root),
        history,
        spare=lambda _: False,
        media_root=state.media_root,
    )


def _settle(
    final: Path,
    found: dict[str, Path],
    history: list[Attempt],
    *,
    spare: Callable[[Attempt], bool],
    media_root: Path,
) -> None:
    """Drop or put back ``final``'s backups ``found``, by the attempts ``history`` lists.

    A backup is dropped when its attempt COMPLETED, or a newer attempt did (putting it back
    would replace a committed video); it is put back otherwise, newest first. Backups
    whose attempt ``spare`` selects, or that the ledger does not know, are left alone.
    """
    by_id = {str(a.id): a for a in history}
    newest_completed = max(
        (a.id for a in history if a.state is AttemptState.COMPLETED), default=None
    )
    judged = {tag: by_id[tag] for tag in found if tag in by_id and not spare(by_id[tag])}

    def committed(tag: str) -> bool:
        return newest_completed is not None and int(tag) <= newest_completed

    for tag in sorted(judged, key=int, reverse=True):
        if committed(tag):
            drop_backup(final, tag, media_root=media_root)
        else:
            restore(final, tag, media_root=media_root)


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
