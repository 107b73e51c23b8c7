"""Publishing: the file half of a render, from a temporary file to the published video.

The renderer writes a temporary ``.mp4`` beside the final file (or returns a file of its
own, adopted into that place); it is made durable, then moved over the final video in one
atomic rename: directly without a ledger, inside the fenced completion with one. Whatever
else happens the temporary file and its scratch files are removed and the previous video is
left as it was. Ending (saving COMPLETED or FAILED) is :mod:`._ending`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from renderstate._attempts import Attempt
from renderstate.exceptions import RenderOutputError
from renderstate.files import (
    create_temporary,
    discard,
    make_durable,
    publish,
    remove_temporary_files,
    sync_directory,
)
from renderstate.runner._ending import end_completed, end_failed
from renderstate.runner._job import RenderJob
from renderstate.runner._state import RunnerState
from renderstate.runner.progress import Phase
from renderstate.typing import ProjectT

logger = logging.getLogger("renderstate.runner")


def render(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> None:
    """Render the job's video into a temporary file and publish it; end the job either way."""
    final: Path | None = None
    partial: Path | None = None
    try:
        # The path recorded at submit, so the file written is the one complete() saves.
        final = state.file_for(job.output_path)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = create_temporary(final)
        job._tracker.enter(Phase.RENDERING)
        job._check_cancelled()
        written = state.renderer(job.project, partial, job._report)
        job._check_cancelled()
        job._tracker.enter(Phase.FINALIZING)
        if written is not None:
            _adopt(written, partial, final, project_key=job.project_key)
        make_durable(partial, project_key=job.project_key)
        job._begin_publishing()
        if state.ledger is None:
            _publish(state, job, partial, final)
            discard(partial)
            partial = None
    except BaseException as exc:
        if partial is not None:
            discard(partial)  # the partial video itself and its scratch files
        end_failed(state, job, exc)
        if not isinstance(exc, Exception):
            # KeyboardInterrupt, SystemExit: the project is FAILED and the file cleaned
            # up; let the interrupt keep its meaning for whoever runs this job.
            raise
        return
    if partial is None:
        _sync_after_rename(final)
        end_completed(state, job)
        return
    # With a ledger the rename happens inside the fenced completion, under the
    # attempt's and the project's row locks: a late attempt never replaces the video.
    moved: list[Path] = []

    def publish() -> None:
        assert partial is not None
        if not moved:  # a retried save after a failed commit: the file is in place
            _publish(state, job, partial, final)
            moved.append(final)

    def clean_up() -> None:
        assert partial is not None
        discard(partial)  # the partial if it was never moved, and scratch files
        if moved:
            _sync_after_rename(final)

    end_completed(state, job, publish, clean_up)


def clean_after(state: RunnerState[ProjectT], attempt: Attempt) -> None:
    """Remove the temporary files an interrupted attempt left beside its final file."""
    if attempt.output_path is not None:
        remove_temporary_files(state.file_for(attempt.output_path))


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
