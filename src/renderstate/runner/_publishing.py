"""Publishing: the file half of a render, from a temporary file to the published video.

The renderer writes a temporary ``.mp4`` beside the final file (or returns a file of its
own, adopted into that place); it is made durable, then moved over the final video in one
atomic rename: directly without a ledger, inside the fenced completion with one, journaled
either way (:mod:`._journal`). Whatever else happens the temporary file and its scratch
files are removed and the previous video is left as it was, or put back. Ending (saving
COMPLETED or FAILED) is :mod:`._ending`'s.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from pathlib import Path

from renderstate._attempts import Attempt
from renderstate._records import TransitionRecord
from renderstate.exceptions import RenderOutputError
from renderstate.files import (
    backup,
    create_temporary,
    discard,
    make_durable,
    new_tag,
    publish,
    sync_directory,
)
from renderstate.recovery import _temporary_token, clean_up_attempt
from renderstate.runner._ending import end_completed, end_failed
from renderstate.runner._job import RenderJob
from renderstate.runner._journal import put_back, settle_at_begin, settle_publish
from renderstate.runner._state import RunnerState
from renderstate.runner.progress import Phase
from renderstate.typing import ProjectT

logger = logging.getLogger("renderstate.runner")


def render(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> None:
    """Render the job's video into a temporary file and publish it; end the job either way."""
    final: Path | None = None
    partial: Path | None = None
    tag: str | None = None
    try:
        # The path recorded at submit, so the file written is the one complete() saves.
        final = state.file_for(job.output_path)
        final.parent.mkdir(parents=True, exist_ok=True)
        settle_at_begin(state, job, final)
        # Named by the job's owner: a takeover removes only the files of an owner gone.
        partial = create_temporary(final, token=_temporary_token(job.owner))
        job._tracker.enter(Phase.RENDERING)
        job._check_cancelled()
        written = state.renderer(job.project, partial, job._report)
        job._check_cancelled()
        job._tracker.enter(Phase.FINALIZING)
        if written is not None:
            _adopt(written, partial, final, project_key=job.project_key)
        make_durable(partial, project_key=job.project_key)
        # While the partial's name still leads to its scratch files: once it is renamed,
        # a process killed before the clean-up would leave them for ever.
        discard(partial, scratch_only=True)
        job._begin_publishing()
        if state.ledger is None:
            tag = new_tag()
            backup(final, tag)  # journaled: put back unless complete() saves
            _publish(state, job, partial, final)
            discard(partial)
            partial = None
    except BaseException as exc:
        if partial is not None:
            discard(partial)  # the partial video itself and its scratch files
            if tag is not None and final is not None:
                put_back(final, tag)  # the rename never happened
        end_failed(state, job, exc)
        if not isinstance(exc, Exception):
            # KeyboardInterrupt, SystemExit: the project is FAILED and the file cleaned
            # up; let the interrupt keep its meaning for whoever runs this job.
            raise
        return
    if partial is None:
        assert tag is not None
        _sync_after_rename(final)
        end_completed(state, job, clean_up=functools.partial(settle_publish, final, tag))
        return
    _complete_fenced(state, job, partial, final)


def _complete_fenced(
    state: RunnerState[ProjectT], job: RenderJob[ProjectT], partial: Path, final: Path
) -> None:
    """Publish inside the ledger's fenced completion, journaled under the attempt's id.

    The rename happens under the attempt's and the project's row locks, so a late attempt
    never replaces the video; the backup is made there too, just before it.
    """
    moved: list[Path] = []
    assert job.attempt is not None
    attempt_id = job.attempt.id

    def publish() -> None:
        if not moved:  # a retried save after a failed commit: the file is in place
            backup(final, attempt_id)
            try:
                _publish(state, job, partial, final)
            except BaseException:
                put_back(final, attempt_id)
                raise
            moved.append(final)

    def clean_up(record: TransitionRecord | None, problem: BaseException | None) -> None:
        discard(partial)  # the partial if it was never moved, and scratch files
        if moved:
            _sync_after_rename(final)
            settle_publish(final, attempt_id, record, problem)

    end_completed(state, job, publish, clean_up)


def clean_after(state: RunnerState[ProjectT], attempt: Attempt) -> None:
    """Clean up after an attempt found dead (recovery, takeover): it never committed.

    Its backup, if its publish got that far, goes back over the final file; then the
    temporary files its owner left beside it are removed (another owner's, a live writer
    of the same file, stay).
    """
    if attempt.output_path is not None:
        clean_up_attempt(attempt, state.file_for(attempt.output_path), by_owner=True)


def _publish(
    state: RunnerState[ProjectT], job: RenderJob[ProjectT], partial: Path, final: Path
) -> None:
    """Move the finished file over the final video, unless a newer attempt has started."""
    with state.key_locks.hold(job.project_key):
        # Under the key lock, no new attempt can register between the check and the
        # rename: a superseded job never replaces the newer attempt's video.
        if state.registry.superseded(job):
            raise state.registry.superseded_error(job)
        partial.replace(final)  # atomic: readers see the old or the new video


def _adopt(
    written: str | os.PathLike[str], partial: Path, final: Path, *, project_key: object
) -> None:
    """Bring the file a renderer returned to ``partial``, checked and flushed.

    The file then goes the way of every render: the fenced, atomic replace of ``final``.
    """
    if not isinstance(written, (str, os.PathLike)):
        raise RenderOutputError(
            project_key=project_key,
            reason=f"the renderer returned {type(written).__name__}, not the path of the file "
            f"it wrote (return None after writing the target, or a str or Path)",
        )
    source = Path(written)
    if source.absolute() == partial.absolute():
        return  # it wrote the target it was given
    with contextlib.suppress(FileNotFoundError):
        if source.samefile(final):
            raise RenderOutputError(
                project_key=project_key,
                reason=f"the renderer returned the final file {final} itself: it wrote over "
                f"the published video instead of a new file (write to the target it is "
                f"given, or to any other path, and return that)",
            )
    # Checked (a regular, non-empty file, not a link) and fsynced, then renamed onto the
    # temporary file (copied where a rename cannot cross file systems); it leaves
    # `source` where it was on failure.
    publish(source, partial, project_key=project_key)


def _sync_after_rename(final: Path) -> None:
    try:
        sync_directory(final.parent)
    except OSError:
        # The new video is already in place; failing the project now would record a
        # FAILED render whose video replaced the old one. Say so and carry on.
        logger.warning("could not fsync %s after the rename", final.parent, exc_info=True)
