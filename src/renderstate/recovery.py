"""Recovery without a runner: fail what a killed process left PROCESSING, clean its files.

For an app that drives :class:`~renderstate.ProjectLifecycle` itself (its own task
system, :func:`renderstate.claim_render`, :func:`renderstate.files.publishing`) and so has
no :class:`~renderstate.RenderRunner` to call ``recover_interrupted()`` on::

    from renderstate.recovery import recover_interrupted

    recover_interrupted(
        DjangoAdapter(),
        Project.objects.filter(status="PROCESSING"),
        final_file=lambda p: Path(settings.MEDIA_ROOT) / "projects" / str(p.pk) / "final.mp4",
    )

The runner's own recovery is this function (without a ledger) or
:meth:`renderstate.ledger.Ledger.recover` (with one); both are reached from here too.

Both finish what a journaled publish (:func:`renderstate.files.publishing` with
``commit``, the runner) left: the backup of the previous video is put back when the
attempt that made it never committed, before the project is failed, and removed when it
did; then the temporary files go. Once recovery has run, ``final_file`` is either the new
video of a COMPLETED project or the previous one, byte for byte, of a FAILED project, with
no temporary or backup file beside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from renderstate import telemetry
from renderstate._attempts import Attempt
from renderstate._confined import entries, folder
from renderstate._directories import settle_output, staging_names
from renderstate._layout import StatusValues
from renderstate._lifecycle import ProjectLifecycle, notify_observers
from renderstate._records import TransitionRecord
from renderstate._status import Status
from renderstate.exceptions import (
    InvalidTransitionError,
    RenderInterruptedError,
    RenderStateError,
    UnsafePathError,
)
from renderstate.files import backups, remove_temporary_files, restore, settle_backups
from renderstate.ledger import Ledger
from renderstate.typing import Adapter, Observer, ProjectLoader, ProjectT

__all__ = ["INTERRUPTED", "clean_up_attempt", "fail_interrupted", "recover_interrupted"]

logger = logging.getLogger("renderstate.recovery")

INTERRUPTED: Final = "the process rendering it ended before the render did"
"""The reason recorded for a project recovered without a ledger."""


def fail_interrupted(
    lifecycle: ProjectLifecycle[ProjectT],
    *,
    final_file: str | os.PathLike[str] | None = None,
    media_root: str | os.PathLike[str] | None = None,
) -> TransitionRecord | None:
    """Fail one project left PROCESSING by a dead process, and clean up its files.

    The guarded ``fail()`` decides: a project that completed or failed meanwhile is left
    alone (``None``). ``final_file`` is where its video is published on disk. Before the
    project is failed, the backups a journaled publish left there are put back
    (:func:`renderstate.files.settle_backups`): the project is PROCESSING, so the publish
    that made them never committed, and a crash between the two leaves the project
    PROCESSING for the next recovery. Then the temporary files of that file (and their
    scratch files) are removed.

    A project that is not PROCESSING (checked again from the database when there are
    backups) is not failed, but the backups a process killed between its commit and their
    removal left are settled: removed if it is COMPLETED (the commit landed), put back
    otherwise. So recovery may be given any project, whatever its status.

    Without ``final_file``, or for a final file written without the journal (a render
    function that wrote it in place, ``publishing()`` without ``commit``), nothing is said
    about the final file: whether it is the previous video depends on how it was written.
    With ``media_root``, every directory below it is opened without following a symbolic
    link (see :func:`renderstate.files.publishing`); a link there is logged and nothing
    behind it is touched.

    Returns:
        The record of the move to FAILED, or ``None`` if the project was not PROCESSING
        (or its backup could not be put back: it stays PROCESSING, and the error is logged).
    """
    status = lifecycle.status
    root = media_root
    if final_file is not None and (_backups(final_file, root) or _stagings(final_file, root)):
        # Restoring over a video that was committed meanwhile would lose it: read the row.
        with contextlib.suppress(RenderStateError):
            status = lifecycle.refresh()
    if status is not Status.PROCESSING:
        if final_file is not None:
            try:
                settle_backups(final_file, status is Status.COMPLETED, media_root=root)
                _settle_directories(final_file, lambda _: status is Status.COMPLETED, root)
            except (OSError, UnsafePathError):
                logger.exception("could not settle the backups of %s", final_file)
        return None
    if final_file is not None:
        try:
            # A directory output's previous version waits in its staging directory.
            _settle_directories(final_file, lambda _: False, root)
            restored = settle_backups(final_file, committed=False, media_root=root).restored
        except (OSError, UnsafePathError):
            logger.exception(
                "could not put back the previous video of project %s at %s; it stays "
                "PROCESSING until recovery succeeds",
                lifecycle.project_key,
                final_file,
            )
            return None
        if restored:
            logger.warning(
                "project %s: put back the previous video, replaced by a render that never "
                "completed",
                lifecycle.project_key,
            )
    error = RenderInterruptedError(project_key=lifecycle.project_key, reason=INTERRUPTED)
    try:
        record = lifecycle.fail(error)
    except InvalidTransitionError:
        return None  # it completed or failed meanwhile: nothing to recover
    logger.warning("project %s was left PROCESSING; marked FAILED", lifecycle.project_key)
    telemetry.recovered(type(lifecycle.project).__name__)
    if final_file is not None:
        with contextlib.suppress(OSError, UnsafePathError):
            for leftover in remove_temporary_files(final_file, media_root=root):
                logger.info("removed %s, left by the interrupted render", leftover)
    return record


def clean_up_attempt(
    attempt: Attempt,
    final_file: str | os.PathLike[str],
    *,
    by_owner: bool = False,
    media_root: str | os.PathLike[str] | None = None,
) -> None:
    """Put back what the interrupted ``attempt`` replaced at ``final_file``; remove its files.

    The clean-up of an attempt that never committed (with an attempt ledger: one that
    recovery or a takeover found dead): its backup (tagged with its id) is restored, then
    the temporary files of ``final_file`` are removed. Backups of other attempts are left
    alone. ``Ledger.recover`` and ``Ledger.begin`` call it through their ``cleanup``.

    With ``by_owner`` (the runner's clean-up: it names each temporary file by the first 16
    hex digits of its owner token, ``create_temporary(final, token=...)``), only the
    temporary files of ``attempt.owner`` go, and those of another writer of the same file
    stay; an attempt recorded without an owner token removes them all, as without it.
    Without ``by_owner`` every temporary file of ``final_file`` goes: an app's own
    ``publishing()`` names its temporary files at random. ``media_root`` confines the
    final file's directory as for :func:`fail_interrupted`.
    """
    owner = _temporary_token(attempt.owner)
    token = owner if by_owner else None
    # A directory output: the runner names its staging directory by the owner token, and
    # journals its swap with the attempt's id; what another writer stages stays.
    mine = str(attempt.id)
    _settle_directories(
        final_file,
        (lambda _: False) if owner is not None else (lambda tag: False if tag == mine else None),
        media_root,
        token=owner,
    )
    if restore(final_file, attempt.id, media_root=media_root):
        logger.warning(
            "attempt %s of %s %s: put back the previous video",
            attempt.id,
            attempt.scope,
            attempt.project_key,
        )
    for leftover in remove_temporary_files(final_file, token=token, media_root=media_root):
        logger.info("removed %s, left by attempt %s", leftover, attempt.id)


def _backups(final_file: str | os.PathLike[str], media_root: str | os.PathLike[str] | None) -> bool:
    try:
        return bool(backups(final_file, media_root=media_root))
    except (OSError, UnsafePathError):
        logger.exception("could not list the backups of %s", final_file)
        return False


def _stagings(
    final_file: str | os.PathLike[str], media_root: str | os.PathLike[str] | None
) -> bool:
    """Whether a directory output's staging directories are beside ``final_file``."""
    final = Path(final_file)
    try:
        with folder(final.parent, media_root=_path(media_root), create=False) as fd:
            return bool(staging_names(entries(fd), final))
    except (OSError, UnsafePathError):
        return False  # the file recovery that follows reports what is wrong with the folder


def _settle_directories(
    final_file: str | os.PathLike[str],
    committed: Callable[[str | None], bool | None],
    media_root: str | os.PathLike[str] | None,
    *,
    token: str | None = None,
) -> None:
    """Settle the staging directories a directory output left at ``final_file``.

    ``committed(tag)`` says whether the swap journaled with ``tag`` committed (``None``
    for a swap never prepared): the new directory stays, or the previous one goes back;
    the staging directory goes either way (``None``: it stays, a live writer's).
    """
    final = Path(final_file)
    for name in settle_output(final, committed, token=token, media_root=_path(media_root)):
        logger.warning("settled %s, left beside %s by an interrupted render", name, final)


def _path(media_root: str | os.PathLike[str] | None) -> Path | None:
    return None if media_root is None else Path(media_root)


def _temporary_token(owner: str | None) -> str | None:
    """The token naming the temporary files of the owner token ``owner``, if it names any."""
    if owner is None or re.fullmatch(r"[0-9a-f]{16}", owner[:16]) is None:
        return None
    return owner[:16]


def recover_interrupted(
    adapter: Adapter[ProjectT],
    projects: Iterable[ProjectT] | None = None,
    *,
    final_file: Callable[[ProjectT], str | os.PathLike[str] | None] | None = None,
    ledger: Ledger | None = None,
    loader: ProjectLoader[ProjectT] | None = None,
    status_field: str = "status",
    output_field: str = "output_path",
    values: StatusValues | None = None,
    observers: Iterable[Observer] = (),
    media_root: str | os.PathLike[str] | None = None,
    error_field: str | None = None,
) -> list[TransitionRecord]:
    """Fail the projects a killed process left PROCESSING and remove its temporary files.

    Without a ledger, ``projects`` are the candidates, loaded with status PROCESSING (say
    ``Project.objects.filter(status="PROCESSING")``); each is failed through the guarded
    ``fail()`` (:func:`fail_interrupted`). Run it only when no other process can be
    rendering them: at the start of the only process that renders, or in a deploy step
    with every worker stopped (see "Recovery after a crash").

    With a ledger, pass ``ledger`` and ``loader`` instead of ``projects``: it is
    :meth:`renderstate.ledger.Ledger.recover`, safe at any time in any process, failing
    only projects whose attempt's lease expired, or whose process on this machine is gone
    (at once, see "A dead process on this machine is seen at once").

    Args:
        adapter: The projects' adapter.
        projects: The candidates (without a ledger).
        final_file: Returns the path on disk of a project's final video, whose backups
            are then settled and temporary files removed (see :func:`fail_interrupted`;
            with a ledger, :func:`clean_up_attempt`). Without it, files are not touched.
        ledger: The attempt ledger, if the app uses one.
        loader: Loads a project by the key text the ledger stores (with ``ledger``).
        status_field: As for :class:`~renderstate.ProjectLifecycle`.
        output_field: As for :class:`~renderstate.ProjectLifecycle`.
        values: As for :class:`~renderstate.ProjectLifecycle`.
        observers: Told about each project moved to FAILED.
        media_root: The media root the final files are below: every directory below it
            is then opened without following a symbolic link.
        error_field: As for :class:`~renderstate.ProjectLifecycle`: the app's column that
            gets each failed project's reason.

    Returns:
        The records of the projects moved to FAILED.

    Raises:
        TypeError: ``projects`` without a ledger is missing, or with a ledger, given, or
            ``loader`` is missing.
    """
    options = {
        "status_field": status_field,
        "output_field": output_field,
        "values": values,
        "error_field": error_field,
    }
    observers = tuple(observers)
    if ledger is not None:
        if projects is not None or loader is None:
            msg = (
                "with a ledger, recover_interrupted() finds the interrupted attempts itself: "
                "pass loader=store.loader(Project) and no projects"
            )
            raise TypeError(msg)
        cleanup: Callable[[Attempt], None] | None = None
        if final_file is not None:
            file_of = final_file

            def cleanup(attempt: Attempt) -> None:
                project = loader(attempt.project_key)
                final = None if project is None else file_of(project)
                if final is not None:
                    clean_up_attempt(attempt, final, media_root=media_root)

        found = ledger.recover(adapter, loader, cleanup=cleanup, **options)  # type: ignore[arg-type]
        records = [r.record for r in found if r.record is not None]
    else:
        if projects is None:
            msg = (
                "recover_interrupted() needs the projects left PROCESSING, e.g. "
                "Project.objects.filter(status='PROCESSING') (or a ledger and a loader)"
            )
            raise TypeError(msg)
        records = []
        for project in projects:
            lifecycle = ProjectLifecycle(project, adapter, **options)  # type: ignore[arg-type]
            try:
                final = None if final_file is None else final_file(project)
            except RenderStateError:
                final = None
            record = fail_interrupted(lifecycle, final_file=final, media_root=media_root)
            if record is not None:
                records.append(record)
    for record in records:
        notify_observers(observers, record)
    return records
