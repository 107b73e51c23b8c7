"""Publishing a file safely: write it beside the final one, then replace that atomically.

::

    from renderstate.files import publishing

    with publishing("media/projects/42/final.mp4") as target:
        render(project, target)  # writes the whole new video to `target`
    # Here final.mp4 is the new video, on disk. Had the block raised (Ctrl-C included),
    # final.mp4 would be byte for byte the previous video and `target` would be gone.

This is the file half of what :class:`~renderstate.RenderRunner` does, usable on its own
with :class:`~renderstate.ProjectLifecycle` (the runner itself uses these functions).

- :func:`publishing` hands out a temporary path in a private directory (mode 0700) beside
  the final file; when the block succeeds it checks the file (present, not empty), fsyncs
  it, replaces the final file with one ``os.replace`` (a reader sees the old file or the
  new one, never a mix) and fsyncs the directory, all by descriptor. When the block
  raises, it removes the private directory with the temporary file and its scratch files
  and re-raises: the final file was never opened. Given ``media_root``, every directory
  below it is opened without following a symbolic link (see the Security page).
- :func:`publish` does the same for a file already written elsewhere (a render function
  that picks its own output path): a rename on the same file system, a copy beside the
  final file and then a rename across file systems.
- :func:`remove_temporary_files` removes what a killed process left beside a final file;
  recovery calls it.
- :func:`output_path_of` turns a file below the media root into the URL-relative path to
  store with ``complete()``, refusing files outside the root (``..``, symbolic links).

The rename and the database's record of it cannot be one atomic step: a process killed
after the rename and before its ``complete()`` commits leaves the new file in place for a
render that never completed. Publishing is therefore journaled. Given ``commit`` (the save
of the completion), :func:`publishing` and :func:`publish` keep the previous file under a
backup name, tied to a *tag*, from before the rename until ``commit`` has returned::

    with publishing(final, commit=lambda: lifecycle.complete("projects/42/final.mp4")) as target:
        render(project, target)

- :func:`backup` hard-links the current final file to its backup name and fsyncs the
  directory (a first version, with no final file yet, needs none);
- :func:`restore` puts the backup back over the final file (the tag's attempt did not
  commit); :func:`drop_backup` removes it (it did);
- :func:`backups` lists a final file's backups by tag, and :func:`settle_backups` restores
  or drops each one as a predicate (say, the attempt ledger) says whether its tag's attempt
  committed. Recovery (:mod:`renderstate.recovery`, the runner's) calls these.

After a crash at any system call of a journaled publish, the previous file can always be
put back until the commit is known. A backup is named ``.final-<tag>.backup.mp4`` for
``final.mp4``: never one of the names :func:`remove_temporary_files` removes, so a recovery
that cleans up first still finds it.

A temporary file is named after its final file, ``.final-<16 hex digits>.partial.mp4`` for
``final.mp4``: hidden, private (mode 0600 until published), and it keeps the suffix, so an
encoder that picks its format from the extension still does. A program's scratch files
(a soundtrack, an intermediate) belong beside it, named ``<temporary file name>.<anything>``
or by :func:`scratch_path` (a short name derived from the temporary file's, for names that
cannot be longer or must not carry the temporary file's characters), so that both
clean-ups find them.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from renderstate._backups import (
    Root,
    Settled,
    backup,
    backup_at,
    backup_path,
    backups,
    check_tag,
    drop_at,
    drop_backup,
    new_tag,
    restore,
    restore_at,
    same_at,
    settle_at,
    settle_backups,
    sync_after_rename,
)
from renderstate._confined import Workspace, folder
from renderstate._lifecycle import validate_output_path
from renderstate._temporaries import (
    create_temporary,
    discard,
    make_durable,
    remove_temporary_files,
    scratch_path,
    sync_directory,
    temporary_name,
)
from renderstate.exceptions import InvalidOutputPathError, RenderOutputError

__all__ = [
    "Settled",
    "backup",
    "backup_path",
    "backups",
    "create_temporary",
    "discard",
    "drop_backup",
    "make_durable",
    "new_tag",
    "output_path_of",
    "publish",
    "publishing",
    "remove_temporary_files",
    "restore",
    "scratch_path",
    "settle_backups",
    "sync_directory",
]

logger = logging.getLogger("renderstate.files")


@contextlib.contextmanager
def publishing(
    final: str | os.PathLike[str],
    *,
    project_key: object = None,
    commit: Callable[[], object] | None = None,
    tag: str | int | None = None,
    committed: Callable[[str], bool] | bool = True,
    media_root: Root = None,
) -> Iterator[Path]:
    """Hand out a private temporary path; replace ``final`` with it if the block succeeds.

    The directory of ``final`` is created if needed. The temporary file sits in a private
    directory (mode 0700) made beside ``final`` under the temporary file's name: nobody
    else can rename anything in it, so a media folder writable by a group cannot turn the
    write against another file. The path handed out leads there through the directory's
    descriptor (``/proc/<pid>/fd/<n>/.final-<hex>.partial.mp4`` where ``/proc`` is
    mounted), so a program that opens it by name (ffmpeg) writes there too. Write the
    whole new file to that path (keep scratch files beside it). When the block ends
    normally, the file is opened without following a link, checked (a regular, non-empty
    file), made 0644 and fsynced by that descriptor, its identity checked against its
    name once more, moved over ``final`` with one ``os.replace`` relative to the two
    directories' descriptors, and the directory is fsynced. When the block raises,
    ``BaseException`` included (``KeyboardInterrupt``, ``SystemExit``), or the check or
    the rename fails, the private directory and everything in it are removed, ``final``
    is left exactly as it was, and the exception propagates.

    With ``commit``, the publish is journaled: ``commit`` is the save that records the new
    file (``lambda: lifecycle.complete(output_path)``), called after the rename::

        def commit() -> None:
            lifecycle.complete("projects/42/final.mp4")

        with claim_render(lifecycle), publishing(final, commit=commit) as target:
            render(project, target)

    Before the rename, ``final`` is kept under a backup name tied to ``tag``
    (:func:`backup`); after ``commit`` returns, the backup is removed; if ``commit``
    raises, the backup is put back (``final`` is byte for byte what it was, or absent if
    there was none) and the error propagates. ``commit`` must raise only when nothing was
    saved. A process killed anywhere in between leaves the backup:
    :func:`renderstate.recovery.recover_interrupted` (given ``final_file``) puts it back if
    the project is still PROCESSING and removes it if the project is COMPLETED.

    On entry, with ``commit``, the backups earlier publishes of ``final`` left (a process
    killed after its commit and before the backup's removal) are settled with
    :func:`settle_backups` and ``committed``: by default they are removed, which is right
    when this publish runs inside a render that has just started (the project was not
    PROCESSING, so every earlier publish either committed or was put back before its
    project was failed). With an attempt ledger, pass the attempt id as ``tag`` and
    ``committed=lambda tag: <attempt tag is COMPLETED>``.

    Without ``commit`` (as before), there is no backup: a process killed after the rename
    and before the caller's own save leaves the new file in place for a render the
    database never completed; a killed process leaves at most a temporary file for
    :func:`remove_temporary_files` (called by recovery). ``final`` is never a mix.

    Args:
        final: Where the file is published.
        project_key: Only words the error messages.
        commit: The save of the new file's record; journals the publish.
        tag: The backup's tag (with ``commit``; by default :func:`new_tag`).
        committed: How the backups found on entry are settled (with ``commit``).
        media_root: The media root ``final`` is below: every directory below it is then
            opened without following a symbolic link (a link there is refused), so nothing
            outside the root is written however the folder's names are changed meanwhile.

    Raises:
        RenderOutputError: the block wrote no file, or an empty one; ``final`` is untouched.
        UnsafePathError: a directory below ``media_root`` is a symbolic link, or the
            finished file was swapped; nothing was published.
        ValueError: ``tag`` is not a valid tag.
    """
    final = Path(final)
    with folder(final.parent, media_root=media_root, create=True) as fd:
        if commit is not None:
            tag = new_tag() if tag is None else check_tag(tag)
            settle_at(fd, final, committed)
        root = None if media_root is None else Path(media_root)
        workspace = Workspace(fd, temporary_name(final, None), final.parent, root)
        try:
            yield workspace.target
            workspace.seal(project_key)
            # The scratch files go first: a process killed after the rename would leave
            # them until the next recovery.
            workspace.clear_scratch()
            if commit is None:
                workspace.replace(final.name)  # atomic: readers see the old or the new file
                sync_after_rename(fd, final.parent)
            else:
                assert tag is not None
                _replace_journaled(
                    fd, final, tag, commit, move=lambda: workspace.replace(final.name)
                )
        finally:
            workspace.remove()


def _replace_journaled(
    fd: int,
    final: Path,
    tag: str | int,
    commit: Callable[[], object],
    *,
    move: Callable[[], object],
    give_back: Callable[[], object] | None = None,
) -> bool:
    """Back ``final`` up, ``move`` the new file over it, ``commit``, drop the backup (or restore).

    Returns:
        ``False`` if the new file is on another file system (nothing was changed), else
        ``True``.
    """
    backup_at(fd, final, tag)
    try:
        move()  # atomic: readers see the old file or the new one
    except BaseException as exc:
        _put_back(fd, final, tag)
        if isinstance(exc, OSError) and exc.errno == errno.EXDEV and give_back is not None:
            return False
        raise
    sync_after_rename(fd, final.parent)
    try:
        commit()
    except BaseException:
        if give_back is not None:
            with contextlib.suppress(OSError):
                give_back()
        _put_back(fd, final, tag)
        raise
    try:
        drop_at(fd, final, tag)
    except OSError:
        # Committed: the backup is only a leftover now, which the next settle removes.
        logger.warning("published %s but could not remove its backup", final, exc_info=True)
    return True


def _put_back(fd: int, final: Path, tag: str | int) -> None:
    try:
        restore_at(fd, final, tag)
    except OSError:
        # The error being raised matters more; recovery restores the backup later.
        logger.exception("could not restore %s from its backup %s", final, tag)


def publish(
    source: str | os.PathLike[str],
    final: str | os.PathLike[str],
    *,
    project_key: object = None,
    commit: Callable[[], object] | None = None,
    tag: str | int | None = None,
    committed: Callable[[str], bool] | bool = True,
    media_root: Root = None,
) -> Path:
    """Move a finished file written elsewhere over ``final``, with :func:`publishing`'s care.

    For a render function that picks its own output path and returns it. ``source`` is
    checked and flushed (:func:`make_durable`), then, on the same file system, renamed onto
    ``final`` (one atomic ``os.replace``); across file systems it is copied to a temporary
    file beside ``final``, which then replaces ``final`` atomically, and ``source`` is
    removed. Either way the directory is fsynced and ``final`` is replaced whole or
    not at all: on any failure it is left exactly as it was, no temporary file remains,
    and ``source`` is where it was.

    ``commit``, ``tag`` and ``committed`` journal the publish as for :func:`publishing`:
    ``final`` is backed up before the rename, ``commit`` runs after it, and if ``commit``
    raises, ``source`` is moved back (on the same file system) and ``final`` restored.
    ``media_root`` confines ``final``'s directory as for :func:`publishing`.

    Returns:
        ``final``, as a :class:`~pathlib.Path`.

    Raises:
        RenderOutputError: ``source`` is missing, a symbolic link, not a regular file, or
            empty.
        InvalidOutputPathError: ``source`` is ``final`` itself: the render wrote over the
            published file, which nothing can make safe afterwards; write elsewhere.
        ValueError: ``tag`` is not a valid tag.
    """
    source, final = Path(source), Path(final)
    if source.is_symlink():
        # Renaming the link would publish a link into the render's scratch space.
        raise RenderOutputError(
            project_key=project_key, reason=f"it returned a symbolic link ({source})"
        )
    if commit is not None:
        tag = new_tag() if tag is None else check_tag(tag)
    make_durable(source, project_key=project_key)
    with folder(final.parent, media_root=media_root, create=True) as fd:
        if same_at(fd, source.stat(), final.name):
            raise InvalidOutputPathError(
                path=str(source),
                reason="it is the file being published itself, so the previous version was "
                "overwritten while it was written",
                hint="Write the new file elsewhere (renderstate.files.publishing hands out a "
                "temporary path beside the final file) and publish that",
            )

        def move() -> None:
            os.replace(source, final.name, dst_dir_fd=fd)

        if commit is not None:
            assert tag is not None
            settle_at(fd, final, committed)

            def give_back() -> None:
                os.replace(final.name, source, src_dir_fd=fd)

            if _replace_journaled(fd, final, tag, commit, move=move, give_back=give_back):
                return final
            committed = True  # settled just now
        else:
            try:
                move()
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
            else:
                sync_after_rename(fd, final.parent)
                return final
    # Another file system: a rename cannot cross it, so copy beside `final` first.
    with publishing(
        final,
        project_key=project_key,
        commit=commit,
        tag=tag,
        committed=committed,
        media_root=media_root,
    ) as temporary:
        shutil.copyfile(source, temporary)
    try:
        source.unlink()
    except OSError:
        logger.warning("published %s but could not remove %s", final, source, exc_info=True)
    return final


def output_path_of(file: str | os.PathLike[str], *, media_root: str | os.PathLike[str]) -> str:
    """Return the URL-relative output path of ``file``, a file below ``media_root``.

    That is the path to store with ``complete()``: ``"projects/42/final.mp4"`` for
    ``<media_root>/projects/42/final.mp4``, so that ``MEDIA_URL + output_path`` serves it.
    A relative ``file`` is relative to the working directory; the file need not exist yet.

    ``file`` must stay below the media root on disk, with every ``..`` and every symbolic
    link resolved (the media root's own included): a link leading out of the root is
    refused like ``../../etc/passwd``. The path is kept as written where that names the
    same file (a link inside the root stays the link's path), else it is the resolved one.

    Raises:
        InvalidOutputPathError: ``file`` is outside ``media_root``, or is the media root
            itself. Nothing is changed.
    """
    # abspath, not resolve(): '..' collapsed as written; the links are resolved below.
    root = Path(os.path.abspath(media_root))  # noqa: PTH100
    path = Path(os.path.abspath(file))  # noqa: PTH100
    real_root, real_path = Path(os.path.realpath(media_root)), Path(os.path.realpath(file))
    if not _is_below(real_path, real_root):
        if real_path == real_root:
            reason = f"it is the media root {os.fspath(root)!r} itself, not a file below it"
        else:
            reason = (
                f"it is outside the media root {os.fspath(root)!r} once '..' and symbolic "
                f"links are resolved"
            )
        raise InvalidOutputPathError(
            path=os.fspath(file),
            reason=reason,
            hint="Pass a file below the media root, such as "
            f"{os.fspath(root / 'projects' / '42' / 'final.mp4')!r}",
        )
    # As written, unless collapsing its '..' moved it (a '..' after a symbolic link), or the
    # root and the file were given through different links: then as resolved.
    if _is_below(path, root) and Path(os.path.realpath(path)) == real_path:
        relative = path.relative_to(root)
    else:
        relative = real_path.relative_to(real_root)
    return validate_output_path("/".join(relative.parts))


def _is_below(path: Path, root: Path) -> bool:
    return root in path.parents
