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
from renderstate._attempts import Attempt, AttemptState
from renderstate._confined import entries, folder
from renderstate._directories import settle, settle_output, staging_names, staging_output
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
from renderstate.files import (
    backup_path,
    backups,
    drop_backup,
    remove_temporary_files,
    restore,
    settle_backups,
)
from renderstate.ledger import Ledger
from renderstate.typing import Adapter, Observer, ProjectLoader, ProjectT

__all__ = ["INTERRUPTED", "clean_up_attempt", "fail_interrupted", "recover_interrupted"]

logger = logging.getLogger("renderstate.recovery")

INTERRUPTED: Final = "the process rendering it ended before the render did"
"""The reason recorded for a project recovered without a ledger."""

# A backup the ledger can judge: its tag is an attempt id (new_tag()'s are hex digits).
_LEDGER_BACKUP: Final = re.compile(r"\..*-(?P<tag>[0-9]{1,20})\.backup(\.[^.]*)?")


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


# ------------------------------------------------------------ what ended attempts left


def _committed_by(
    history: list[Attempt], spare: Callable[[Attempt], bool]
) -> Callable[[str | None], bool | None]:
    """Whether a tag's attempt committed, as the ledger's ``history`` says (``None``: leave it).

    Committed when it COMPLETED or a newer attempt did (putting the previous output back
    would replace a committed one); left alone when the ledger does not know it, or
    ``spare`` selects it (a live attempt's own end settles it).
    """
    by_id = {str(a.id): a for a in history}
    newest = max((a.id for a in history if a.state is AttemptState.COMPLETED), default=None)

    def committed(tag: str | None) -> bool | None:
        attempt = None if tag is None else by_id.get(tag)
        if attempt is None or spare(attempt):
            return None
        return newest is not None and attempt.id <= newest

    return committed


def _settle_tagged_backups(
    final: Path,
    found: dict[str, Path],
    history: list[Attempt],
    *,
    spare: Callable[[Attempt], bool],
    media_root: Path | None,
) -> None:
    """Drop or put back ``final``'s backups ``found``, by the attempts ``history`` lists.

    A backup is dropped when its attempt COMPLETED, or a newer attempt did (putting it back
    would replace a committed video); it is put back otherwise, newest first. Backups
    whose attempt ``spare`` selects, or that the ledger does not know, are left alone.
    """
    committed = _committed_by(history, spare)
    judged = {tag: committed(tag) for tag in found}
    for tag in sorted((t for t in judged if judged[t] is not None), key=int, reverse=True):
        if judged[tag]:
            drop_backup(final, tag, media_root=media_root)
        else:
            restore(final, tag, media_root=media_root)


def _settle_ended(
    ledger: Ledger, file_of: Callable[[Attempt], Path | None], media_root: Path
) -> None:
    """Settle what attempts that ended left below ``media_root``: backups, staging directories.

    A process killed after its completion committed and before it removed the previous
    output (a file's backup, a directory output's staging directory) leaves it where no
    lease brings recovery: the attempt is COMPLETED. The media root is walked for backups
    tagged with an attempt id and for journaled staging directories; ``file_of(attempt)``
    says where that attempt's output is (``None``: not this caller's to judge). A project
    whose newest attempt is live is left to that attempt (its begin or its end settles
    them); otherwise each is dropped when its attempt (or a newer one) COMPLETED, and put
    back when not.
    """
    root = Path(media_root).absolute()
    for directory, subdirectories, names in os.walk(root):
        for name in list(subdirectories):
            if staging_output(name) is not None:
                subdirectories.remove(name)  # never walked into
                _settle_staging(ledger, file_of, Path(directory) / name, root)
        for name in names:
            matched = _LEDGER_BACKUP.fullmatch(name)
            if matched is None:
                continue
            found = Path(directory) / name
            try:
                _settle_backup(ledger, file_of, found, int(matched["tag"]), root)
            except (OSError, RenderStateError):
                logger.exception("could not settle the backup %s", found)


def _settle_backup(
    ledger: Ledger,
    file_of: Callable[[Attempt], Path | None],
    found: Path,
    attempt_id: int,
    media_root: Path,
) -> None:
    attempt = ledger.get(attempt_id)
    final = None if attempt is None else _absolute(file_of(attempt))
    if attempt is None or final is None or backup_path(final, attempt_id) != found:
        return  # not this ledger's attempt, or a backup of another file with this tag
    history = ledger.history(attempt.scope, attempt.project_key)
    if history and history[0].active:
        return  # the live attempt settles them at its begin, or its own end does
    # Between the check above and the settle, a new attempt may start: its begin settles
    # these same backups the same way before it renders, so either one finishes the job.
    found_all = backups(final, media_root=media_root)
    _settle_tagged_backups(final, found_all, history, spare=lambda _: False, media_root=media_root)


def _settle_staging(
    ledger: Ledger, file_of: Callable[[Attempt], Path | None], private: Path, media_root: Path
) -> None:
    if private.name.endswith(".done"):  # settled by its owner, who died emptying it
        try:
            with folder(private.parent, media_root=media_root, create=False) as fd:
                settle(fd, private.name, "", lambda _: True, where=private.parent)
        except (OSError, RenderStateError):
            logger.exception("could not remove %s", private)
        return
    try:
        tag = (private / ".journal").read_text(encoding="ascii").split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return  # not journaled: a live writer's, or a dead attempt's that its recovery removes
    if not tag.isdigit():
        return
    try:
        attempt = ledger.get(int(tag))
        output = None if attempt is None else _absolute(file_of(attempt))
        if attempt is None or output is None or output.parent != private.parent:
            return
        history = ledger.history(attempt.scope, attempt.project_key)
        if history and history[0].active:
            return  # the live attempt settles it at its begin, or its own end does
        settle_output(output, _committed_by(history, lambda _: False), media_root=media_root)
    except (OSError, RenderStateError):
        logger.exception("could not settle the staging directory %s", private)


def _absolute(path: str | os.PathLike[str] | None) -> Path | None:
    return None if path is None else Path(path).absolute()


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
            is then opened without following a symbolic link. With a ledger and
            ``final_file``, it is also walked for the backups and staging directories of
            attempts killed after their completion committed (which no lease brings
            here): each is settled as its attempt's history says, and those of a project
            whose newest attempt is live are left to it.
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
        if final_file is not None and media_root is not None:
            # After the dead attempts' own backups went back (cleanup): those of attempts
            # killed after their completion committed, which no lease brings here.
            _settle_ended(ledger, _files_of(loader, final_file), Path(media_root))
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


def _files_of(
    loader: ProjectLoader[ProjectT],
    final_file: Callable[[ProjectT], str | os.PathLike[str] | None],
) -> Callable[[Attempt], Path | None]:
    """Where an attempt's output is: its project's ``final_file``, for the loader's scope."""
    scope = getattr(loader, "scope", None)

    def file_of(attempt: Attempt) -> Path | None:
        if scope is not None and attempt.scope != scope:
            return None  # another model's attempt
        try:
            project = loader(attempt.project_key)
            final = None if project is None else final_file(project)
        except RenderStateError:
            return None
        return None if final is None else Path(final)

    return file_of
