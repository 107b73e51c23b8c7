"""The publish journal: a final file's backups, tagged by attempt, restored or dropped.

The public names are re-exported by :mod:`renderstate.files`, which documents them.
"""

import contextlib
import errno
import fnmatch
import glob
import logging
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple

from renderstate._confined import entries, folder, same
from renderstate._temporaries import TOKEN_BYTES, create_new, fitted_stem, temporary_name

logger = logging.getLogger("renderstate.files")

_BACKUP: Final = ".backup"
# A tag: an attempt id (up to a 64-bit integer's 20 digits) or new_tag()'s hex digits.
_TAG: Final = re.compile(r"[0-9a-z]{1,20}")
_TAG_MAX: Final = 20
# link() is not supported there: the backup is a copy instead.
_NO_LINK: Final = frozenset(
    {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
)


class Settled(NamedTuple):
    """What :func:`settle_backups` did with a final file's backups, by tag."""

    restored: list[str]
    """The tags whose backup was put back over the final file (their attempt did not commit)."""
    dropped: list[str]
    """The tags whose backup was removed (their attempt committed)."""


def new_tag() -> str:
    """Return a fresh tag for a journaled publish that has no attempt id: 16 hex digits."""
    return secrets.token_hex(TOKEN_BYTES)


def check_tag(tag: object) -> str:
    text = str(tag) if isinstance(tag, int) and not isinstance(tag, bool) and tag >= 0 else tag
    if not isinstance(text, str) or _TAG.fullmatch(text) is None:
        msg = (
            f"a backup tag is 1 to {_TAG_MAX} lower-case ASCII letters and digits (an attempt "
            f"id, or new_tag()); got {tag!r}"
        )
        raise ValueError(msg)
    return text


def _backup_stem(final: Path) -> str:
    return fitted_stem(final, f".-{'0' * _TAG_MAX}{_BACKUP}{final.suffix}")


def backup_path(final: str | os.PathLike[str], tag: str | int) -> Path:
    """Return the path of ``final``'s backup tagged ``tag``: ``.final-<tag>.backup.mp4``.

    It fits in 255 bytes whatever ``final``'s name (cut like a temporary file's name), and
    never matches what :func:`remove_temporary_files` or :func:`discard` remove.

    Raises:
        ValueError: ``tag`` is not 1 to 20 lower-case ASCII letters and digits (or an int
            >= 0, such as an attempt id).
    """
    final = Path(final)
    return final.with_name(f".{_backup_stem(final)}-{check_tag(tag)}{_BACKUP}{final.suffix}")


Root = str | os.PathLike[str] | None


def backups(final: str | os.PathLike[str], *, media_root: Root = None) -> dict[str, Path]:
    """Return ``final``'s backups, by tag (none if the directory does not exist).

    Only the backups of ``final`` itself: those of ``final-v2.mp4`` are not among them.
    ``media_root``, here and in every journal function, confines the directory as for
    :func:`publishing`.
    """
    final = Path(final)
    try:
        with folder(final.parent, media_root=media_root, create=False) as fd:
            return {tag: final.with_name(name) for tag, name in _backups_at(fd, final).items()}
    except FileNotFoundError:
        return {}


def _backups_at(fd: int, final: Path) -> dict[str, str]:
    stem = _backup_stem(final)
    pattern = f".{glob.escape(stem)}-*{glob.escape(_BACKUP + final.suffix)}"
    found: dict[str, str] = {}
    for name in fnmatch.filter(entries(fd), pattern):
        tag = name[len(stem) + 2 : len(name) - len(_BACKUP + final.suffix)]
        if _TAG.fullmatch(tag) is not None:
            found[tag] = name
    return found


def backup(final: str | os.PathLike[str], tag: str | int, *, media_root: Root = None) -> Path:
    """Keep the current ``final`` under its backup name for ``tag``, durably; before a rename.

    A hard link (the same file under a second name: no copy, and the file's bytes are
    exactly the previous ones), then the directory is fsynced, so that the backup is on
    disk before the rename that replaces ``final`` can be. Where hard links are not
    supported, a copy is written beside ``final`` under a temporary name, fsynced and
    renamed to the backup name. When there is no ``final`` yet (a first version), the
    backup is an empty file, which says so: restoring it removes ``final``. If the tag's
    backup already exists, it is kept as it is: it holds an older version (a publish of
    the same attempt that was retried after a crash) that the new one must not replace.
    A ``final`` that is a symbolic link is backed up as the link, never followed.

    Returns:
        The backup's path.

    Raises:
        OSError: the backup could not be made; ``final`` is untouched.
    """
    final = Path(final)
    with folder(final.parent, media_root=media_root, create=False) as fd:
        backup_at(fd, final, tag)
    return backup_path(final, tag)


def backup_at(fd: int, final: Path, tag: str | int) -> None:
    name = backup_path(final, tag).name
    try:
        os.link(final.name, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
    except FileExistsError:
        return
    except FileNotFoundError:
        try:
            create_new(fd, name)
        except FileExistsError:
            return
    except OSError as exc:
        if exc.errno not in _NO_LINK or not _is_file_at(fd, final.name):
            raise
        _copy_backup(fd, final, name)
    os.fsync(fd)


def _is_file_at(fd: int, name: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _copy_backup(fd: int, final: Path, name: str) -> None:
    # A partial copy under the backup name would be restored as the previous file: copy to
    # a temporary file (which recovery removes), then rename it into place.
    temporary = temporary_name(final, None)
    create_new(fd, temporary)
    try:
        source = os.open(final.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        with (
            os.fdopen(source, "rb") as reader,
            os.fdopen(
                os.open(temporary, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd), "wb"
            ) as writer,
        ):
            shutil.copyfileobj(reader, writer)
            writer.flush()
            os.fchmod(writer.fileno(), stat.S_IMODE(os.fstat(reader.fileno()).st_mode))
            os.fsync(writer.fileno())
        os.replace(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=fd)
        raise


def restore(final: str | os.PathLike[str], tag: str | int, *, media_root: Root = None) -> bool:
    """Put the backup tagged ``tag`` back over ``final``: its attempt did not commit.

    One ``os.replace`` (readers see the new file or the previous one, never a mix), then
    the directory is fsynced. When the backup is ``final`` itself (the process stopped
    between :func:`backup` and the rename), the backup name is only removed; when it says
    that there was no ``final`` (an empty backup), ``final`` is removed. A crash at any
    point leaves either the backup or the restored ``final``: calling it again finishes
    the job.

    Returns:
        Whether there was a backup to restore.
    """
    final = Path(final)
    try:
        with folder(final.parent, media_root=media_root, create=False) as fd:
            return restore_at(fd, final, tag)
    except FileNotFoundError:
        return False


def restore_at(fd: int, final: Path, tag: str | int) -> bool:
    name = backup_path(final, tag).name
    try:
        kept = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if kept.st_size == 0:  # there was no final file before this attempt
        with contextlib.suppress(FileNotFoundError):
            os.unlink(final.name, dir_fd=fd)
        os.unlink(name, dir_fd=fd)
    elif same_at(fd, kept, final.name):
        # rename() between two links of one file does nothing: remove the second name.
        os.unlink(name, dir_fd=fd)
    else:
        os.replace(name, final.name, src_dir_fd=fd, dst_dir_fd=fd)
    os.fsync(fd)
    logger.info("restored %s from its backup %s", final, name)
    return True


def same_at(fd: int, kept: os.stat_result, name: str) -> bool:
    try:
        return same(kept, os.stat(name, dir_fd=fd, follow_symlinks=False))
    except FileNotFoundError:
        return False


def drop_backup(final: str | os.PathLike[str], tag: str | int, *, media_root: Root = None) -> bool:
    """Remove the backup tagged ``tag`` of ``final``: its attempt committed; fsync the directory.

    Returns:
        Whether there was a backup to remove.
    """
    final = Path(final)
    try:
        with folder(final.parent, media_root=media_root, create=False) as fd:
            return drop_at(fd, final, tag)
    except FileNotFoundError:
        return False


def drop_at(fd: int, final: Path, tag: str | int) -> bool:
    try:
        os.unlink(backup_path(final, tag).name, dir_fd=fd)
    except FileNotFoundError:
        return False
    os.fsync(fd)
    return True


def settle_backups(
    final: str | os.PathLike[str],
    committed: Callable[[str], bool] | bool,
    *,
    media_root: Root = None,
) -> Settled:
    """Restore or drop every backup of ``final``, as the commit of its tag's attempt says.

    For recovery, and for the start of a new attempt (whose publish would otherwise find a
    backup it cannot tell from its own). ``committed(tag)`` says whether the attempt the
    tag names committed its end (with an attempt ledger: is that attempt COMPLETED?);
    ``True`` or ``False`` says it of every tag. The backups of attempts that did not
    commit are restored newest first (integer tags in decreasing order), so that ``final``
    ends up as the oldest one: the file before all of them. Those of attempts that
    committed are dropped. Call it only when no publish of ``final`` is under way.
    """
    final = Path(final)
    try:
        with folder(final.parent, media_root=media_root, create=False) as fd:
            return settle_at(fd, final, committed)
    except FileNotFoundError:
        return Settled([], [])


def settle_at(fd: int, final: Path, committed: Callable[[str], bool] | bool) -> Settled:
    def order(tag: str) -> tuple[int, int, str]:
        return (0, int(tag), tag) if tag.isdigit() else (1, 0, tag)

    settled = Settled([], [])
    for tag in sorted(_backups_at(fd, final), key=order, reverse=True):
        if committed if isinstance(committed, bool) else committed(tag):
            if drop_at(fd, final, tag):
                settled.dropped.append(tag)
        elif restore_at(fd, final, tag):
            settled.restored.append(tag)
    return settled


def sync_after_rename(fd: int, directory: Path) -> None:
    try:
        os.fsync(fd)
    except OSError:
        # The new file is already in place; reporting a failure now would make the caller
        # record a failed write whose file replaced the old one. Say so and carry on.
        logger.warning("could not fsync %s after the rename", directory, exc_info=True)
