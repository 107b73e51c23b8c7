"""Publishing: the file half of a render, from a temporary file to the published video.

The renderer writes a temporary ``.mp4`` in a private directory beside the final file (or
returns a file of its own, adopted into that place); it is checked and made durable by
descriptor, then moved over the final video in one atomic rename relative to the
directories' descriptors: directly without a ledger, inside the fenced completion with
one, journaled either way (:mod:`._journal`). Every directory below the media root is
opened without following a link (:mod:`renderstate._confined`), so a media folder that a
group can write cannot send a write outside it. Whatever else happens the private
directory and its scratch files are removed and the previous video is left as it was, or
put back. Ending (saving COMPLETED or FAILED) is :mod:`._ending`'s.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import stat
from pathlib import Path

from renderstate._attempts import Attempt
from renderstate._confined import Workspace, folder
from renderstate._records import TransitionRecord
from renderstate._temporaries import temporary_name, temporary_tokens
from renderstate.exceptions import RenderOutputError, RenderStateError
from renderstate.files import backup, new_tag, publish, remove_temporary_files
from renderstate.ledger._owners import held_here
from renderstate.recovery import _temporary_token, clean_up_attempt
from renderstate.runner._directory_output import clean_after as clean_directory_after
from renderstate.runner._directory_output import render_directory
from renderstate.runner._ending import end_completed, end_failed
from renderstate.runner._job import RenderJob
from renderstate.runner._journal import put_back, settle_at_begin, settle_publish
from renderstate.runner._state import RunnerState
from renderstate.runner.progress import Phase
from renderstate.typing import ProjectT

logger = logging.getLogger("renderstate.runner")


def render(state: RunnerState[ProjectT], job: RenderJob[ProjectT]) -> None:
    """Render the job's video into a temporary file and publish it; end the job either way."""
    if getattr(state.renderer, "output", "file") == "directory":
        render_directory(state, job)  # an HLS playlist and its segments, an image sequence
        return
    final: Path | None = None
    workspace: Workspace | None = None
    tag: str | None = None
    root = state.media_root
    try:
        # The path recorded at submit, so the file written is the one complete() saves.
        final = state.file_for(job.output_path)
        with folder(final.parent, media_root=root, create=True) as directory:
            settle_at_begin(state, job, final)
            # Named by the job's owner: a takeover removes only the files of an owner gone.
            name = temporary_name(final, _temporary_token(job.owner))
            workspace = Workspace(directory, name, final.parent, root)
        partial = workspace.target
        job._tracker.enter(Phase.RENDERING)
        job._check_cancelled()
        written = job._returned(state.renderer(job.project, partial, job._report))
        job._check_cancelled()
        job._tracker.enter(Phase.FINALIZING)
        if written is not None:
            _adopt(written, partial, final, project_key=job.project_key)
        workspace.seal(job.project_key)
        # The scratch files go before the rename: a process killed after it would leave
        # them until the next recovery.
        workspace.clear_scratch()
        job._begin_publishing()
        if state.ledger is None:
            tag = new_tag()
            backup(final, tag, media_root=root)  # journaled: put back unless complete() saves
            _publish(state, job, workspace, final)
            workspace.remove(keep_open=True)
            _sync_after_rename(workspace, final)
            workspace.close()
            workspace = None
    except BaseException as exc:
        if workspace is not None:
            workspace.remove()  # the partial video itself and its scratch files
            if tag is not None and final is not None:
                put_back(final, tag, root)  # the rename never happened
        end_failed(state, job, exc)
        if not isinstance(exc, Exception):
            # KeyboardInterrupt, SystemExit: the project is FAILED and the file cleaned
            # up; let the interrupt keep its meaning for whoever runs this job.
            raise
        return
    if workspace is None:
        assert tag is not None
        end_completed(
            state, job, clean_up=functools.partial(settle_publish, final, tag, media_root=root)
        )
        return
    _complete_fenced(state, job, workspace, final)


def _complete_fenced(
    state: RunnerState[ProjectT], job: RenderJob[ProjectT], workspace: Workspace, final: Path
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
            backup(final, attempt_id, media_root=state.media_root)
            try:
                _publish(state, job, workspace, final)
            except BaseException:
                put_back(final, attempt_id, state.media_root)
                raise
            moved.append(final)

    def clean_up(record: TransitionRecord | None, problem: BaseException | None) -> None:
        workspace.remove(keep_open=True)  # the partial if it was never moved, scratch files
        if moved:
            _sync_after_rename(workspace, final)
        workspace.close()
        if moved:
            settle_publish(final, attempt_id, record, problem, media_root=state.media_root)
        remove_orphans(state, job, final)

    end_completed(state, job, publish, clean_up)


def remove_orphans(state: RunnerState[ProjectT], job: RenderJob[ProjectT], final: Path) -> None:
    """Remove the temporary files of ``final`` whose owner holds no live attempt any more.

    A takeover removes the previous owner's files only when that owner is gone: one that
    was frozen (SIGSTOP, a stalled machine) when its attempt was taken over is fenced but
    alive, and removes its own files once it wakes. Killed before it wakes, it leaves them
    for good. So the end of an attempt (once the render that took it over is done with
    the file) lists ``final``'s temporary files and, when some are another owner's, asks
    the ledger which owner holds the project's newest attempt while it is live: every
    other owner's files go, but those of a job of this process (a stalled runner here
    still holds its token, and removes its files itself). The listing comes first, so a
    file a newer attempt creates after it is never among them, and one it created before
    is named by the live attempt the ledger then shows.
    """
    ledger, attempt = state.ledger, job.attempt
    if ledger is None or attempt is None:
        return
    root = state.media_root
    try:
        others = temporary_tokens(final, media_root=root) - {_temporary_token(job.owner)}
        if not others:
            return  # the usual case: one listing, no query
        newest = ledger.history(attempt.scope, attempt.project_key, limit=1)
        live = {_temporary_token(a.owner) for a in newest if a.active}
        # A stalled job of this very process still holds its token: its files are its own
        # until its end is refused, which removes them.
        live |= {_temporary_token(token) for token in held_here()}
        for token in sorted(others - live):
            for leftover in remove_temporary_files(final, token=token, media_root=root):
                logger.warning(
                    "attempt %s: removed %s, left by an owner that no longer renders",
                    attempt.id,
                    leftover,
                )
    except (OSError, RenderStateError):
        logger.exception("could not remove the orphaned temporary files of %s", final)


def clean_after(state: RunnerState[ProjectT], attempt: Attempt) -> None:
    """Clean up after an attempt found dead (recovery, takeover): it never committed.

    Its backup, if its publish got that far, goes back over the final file; then the
    temporary files its owner left beside it are removed (another owner's, a live writer
    of the same file, stay).
    """
    if attempt.output_path is not None:
        # A directory output's staging first: it may hold the previous directory.
        clean_directory_after(state, attempt)
        clean_up_attempt(
            attempt,
            state.file_for(attempt.output_path),
            by_owner=True,
            media_root=state.media_root,
        )


def _publish(
    state: RunnerState[ProjectT], job: RenderJob[ProjectT], workspace: Workspace, final: Path
) -> None:
    """Move the finished file over the final video, unless a newer attempt has started."""
    with state.key_locks.hold(job.project_key):
        # Under the key lock, no new attempt can register between the check and the
        # rename: a superseded job never replaces the newer attempt's video.
        if state.registry.superseded(job):
            raise state.registry.superseded_error(job)
        workspace.replace(final.name)  # atomic: readers see the old or the new video


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
    # Lexically (no link followed): a relative path to the target is the target too.
    if os.path.normpath(source.absolute()) == os.path.normpath(partial.absolute()):
        return  # it wrote the target it was given
    names = _names_of_the_target(source, partial)
    if names == 1:
        return  # the same, reached another way (resolved, from another working directory)
    if names:
        raise RenderOutputError(
            project_key=project_key,
            reason=f"the path it returned, {source}, is a second name (a hard link) of the "
            f"target it was given: the published video would stay writable through it "
            f"(return the target itself, or nothing, and remove the link)",
        )
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


def _names_of_the_target(source: Path, partial: Path) -> int:
    """How many names ``partial``'s file has if ``source`` is that file (not a link), else 0."""
    try:
        found, target = source.lstat(), partial.lstat()
    except OSError:
        return 0
    if stat.S_ISREG(found.st_mode) and (found.st_dev, found.st_ino) == (
        target.st_dev,
        target.st_ino,
    ):
        return found.st_nlink
    return 0


def _sync_after_rename(workspace: Workspace, final: Path) -> None:
    try:
        workspace.sync_folder()
    except OSError:
        # The new video is already in place; failing the project now would record a
        # FAILED render whose video replaced the old one. Say so and carry on.
        logger.warning("could not fsync %s after the rename", final.parent, exc_info=True)
