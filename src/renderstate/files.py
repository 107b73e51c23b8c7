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
import fnmatch
import glob
import hashlib
import logging
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, NamedTuple

from renderstate._confined import Workspace, entries, folder, remove_entry, same, seal
from renderstate._lifecycle import validate_output_path
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

_PARTIAL: Final = ".partial"
_TOKEN_BYTES: Final = 8
_TOKEN: Final = re.compile(r"[0-9a-f]{16}")
# The longest file name, in bytes, on Linux's and macOS's usual file systems (NAME_MAX).
_NAME_MAX: Final = 255
# moviepy names its temporary soundtrack "<output name without extension>TEMP_MPY_wvf_snd.<ext>"
# in temp_audiofile_path: given the temporary file's directory, that is a scratch file too.
_MOVIEPY: Final = "TEMP_MPY_"
_SCRATCH: Final = ".renderstate-"
_SCRATCH_DIGITS: Final = 16
_LABEL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_BACKUP: Final = ".backup"
# A tag: an attempt id (up to a 64-bit integer's 20 digits) or new_tag()'s hex digits.
_TAG: Final = re.compile(r"[0-9a-z]{1,20}")
_TAG_MAX: Final = 20
# link() is not supported there: the backup is a copy instead.
_NO_LINK: Final = frozenset(
    {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
)


def scratch_path(target: str | os.PathLike[str], label: str) -> Path:
    """Return the path of a scratch file of the program writing ``target``: beside it, short.

    The name is ``.renderstate-<16 hex digits>.<label>``, the digits a hash of ``target``'s
    file name, whatever that name is: 255 bytes long (where ``<target name>.<label>`` would
    be too long for the file system), or with a newline or bytes that are not UTF-8 (which
    a list handed to another program cannot always carry). :func:`discard` and
    :func:`remove_temporary_files` remove it with ``target``, as they remove the files named
    ``<target name>.<anything>``.

    Args:
        target: The file being written (a temporary file of :func:`create_temporary`).
        label: What the scratch file is, its suffix included (``"soundtrack.wav"``):
            1 to 64 ASCII letters, digits, ``.``, ``_`` and ``-``, starting with a letter
            or a digit.

    Raises:
        ValueError: ``label`` is not such a name.
    """
    if _LABEL.fullmatch(label) is None:
        msg = (
            f"A scratch file label must be 1 to 64 ASCII letters, digits, '.', '_' or '-', "
            f"starting with a letter or a digit; got {label!r}."
        )
        raise ValueError(msg)
    target = Path(target)
    return target.with_name(f"{_scratch_stem(target.name)}.{label}")


def _scratch_stem(name: str) -> str:
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:_SCRATCH_DIGITS]
    return f"{_SCRATCH}{digest}"


def create_temporary(
    final: str | os.PathLike[str],
    *,
    token: str | None = None,
    media_root: str | os.PathLike[str] | None = None,
) -> Path:
    """Create an empty, private temporary file beside ``final``, named after it, and return it.

    The directory must exist. The file is ``.<stem>-<16 hex digits>.partial<suffix>``,
    created exclusively with mode 0600, so two writers never share one. When that name
    would be longer than 255 bytes, ``<stem>`` is cut short and ends in ``~`` and 16 hex
    digits of a hash of the whole stem.

    Args:
        final: The file the temporary file will replace.
        token: The 16 hex digits, naming the writer (the runner passes the first 16 of
            its owner token), so that :func:`remove_temporary_files` can remove that
            writer's files alone; by default random.
        media_root: When given, the directories below it are opened without following a
            symbolic link (see :func:`publishing`).

    Raises:
        ValueError: ``token`` is not 16 lower-case hex digits.
        FileExistsError: the temporary file of that ``token`` exists already.
        UnsafePathError: a directory below ``media_root`` is a symbolic link.
    """
    final = Path(final)
    with folder(final.parent, media_root=media_root, create=False) as fd:
        while True:
            name = temporary_name(final, token)
            try:
                _create(fd, name)
            except FileExistsError:
                if token is not None:
                    raise
                continue  # pragma: no cover - 64 random bits collided
            return final.with_name(name)


def temporary_name(final: Path, token: str | None) -> str:
    """The name of ``final``'s temporary file for ``token`` (random by default)."""
    digits = secrets.token_hex(_TOKEN_BYTES) if token is None else _check_token(token)
    return f".{_temporary_stem(final)}-{digits}{_PARTIAL}{final.suffix}"


def _create(fd: int, name: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    os.close(os.open(name, flags, 0o600, dir_fd=fd))


def _check_token(token: object) -> str:
    if not isinstance(token, str) or _TOKEN.fullmatch(token) is None:
        msg = f"a temporary file's token is {2 * _TOKEN_BYTES} lower-case hex digits; got {token!r}"
        raise ValueError(msg)
    return token


def _temporary_stem(final: Path) -> str:
    """``final``'s stem as its temporary files' names carry it: cut to fit in NAME_MAX."""
    return _fitted_stem(final, f".-{'0' * 2 * _TOKEN_BYTES}{_PARTIAL}{final.suffix}")


def _fitted_stem(final: Path, around: str) -> str:
    """``final``'s stem, cut so that it fits in NAME_MAX beside the characters ``around`` it."""
    rest = len(os.fsencode(around))
    if len(os.fsencode(final.stem)) + rest <= _NAME_MAX:
        return final.stem
    # A name of 230 bytes or more (up to the file system's 255) is still a final file's
    # name: keep as much of it as fits, and tell apart two finals that differ only after it.
    mark = "~" + hashlib.sha256(os.fsencode(final.stem)).hexdigest()[:16]
    room = _NAME_MAX - rest - len(mark)
    cut = final.stem
    while len(os.fsencode(cut)) > room:
        cut = cut[:-1]
    return cut + mark


def discard(temporary: str | os.PathLike[str], *, scratch_only: bool = False) -> None:
    """Remove ``temporary`` and every file beside it whose name starts with its name.

    Those are its scratch files (``<temporary name>.soundtrack.wav``), and those named by
    :func:`scratch_path`. Files already gone and files that cannot be removed are skipped:
    this runs on the way out of a failure. With ``scratch_only``, ``temporary`` itself is
    kept: call it before the rename that publishes ``temporary``, while its name still
    leads to its scratch files (a process killed after the rename would leave them).
    """
    _discard(Path(temporary), itself=not scratch_only)


def _discard(temporary: Path, *, itself: bool) -> None:
    patterns = (
        f"{_scratch_stem(temporary.name)}.*",
        f"{glob.escape(temporary.name)}*",
        f"{glob.escape(temporary.stem)}{_MOVIEPY}*",
    )
    for pattern in patterns:
        for leftover in temporary.parent.glob(pattern):
            if itself or leftover != temporary:
                with contextlib.suppress(OSError):
                    _remove(leftover)


def _remove(path: Path) -> None:
    # A program may have made a directory of its scratch name; a symlink is only unlinked.
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def remove_temporary_files(
    final: str | os.PathLike[str],
    *,
    token: str | None = None,
    media_root: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Remove every temporary file of ``final`` and their scratch files; return what went.

    This is the clean-up after a process that was killed while it wrote a new version of
    ``final``: nothing else removed its temporary file. Scratch files are the files whose
    names start with a temporary file's name, those :func:`scratch_path` names after it,
    and moviepy's temporary soundtrack written
    beside it (``temp_audiofile_path`` set to its directory gives
    ``<temporary name without .mp4>TEMP_MPY_wvf_snd.mp4``). Call it only when no writer of
    ``final`` is alive (recovery does, for projects whose render has ended). ``final``
    itself, other files of the directory, and the temporary files of other final files
    (``final-v2.mp4``'s, say) are never touched. A missing directory removes nothing.

    With ``token`` (what :func:`create_temporary` was given), only the temporary files of
    that writer go, with their scratch files: a takeover that knows which owner is gone
    leaves a live writer's files alone. A render's private directory (:func:`publishing`)
    bears its temporary file's name and goes with everything in it. Everything is removed
    relative to the directory's descriptor, a symbolic link as the link itself.

    Args:
        final: The final file.
        token: Only this writer's temporary files.
        media_root: When given, the directories below it are opened without following a
            symbolic link.

    Raises:
        ValueError: ``token`` is not 16 lower-case hex digits.
        UnsafePathError: a directory below ``media_root`` is a symbolic link.
    """
    final = Path(final)
    # The token's exact length keeps "intro" from matching "intro-v2"'s temporary files.
    digits = "[0-9a-f]" * (2 * _TOKEN_BYTES) if token is None else _check_token(token)
    stem = f".{glob.escape(_temporary_stem(final))}-{digits}{_PARTIAL}"
    patterns = (f"{stem}{glob.escape(final.suffix)}*", f"{stem}{_MOVIEPY}*")
    try:
        with folder(final.parent, media_root=media_root, create=False) as fd:
            names = entries(fd)
            found = sorted({n for pattern in patterns for n in fnmatch.filter(names, pattern)})
            # The scratch files scratch_path() named go first: only their temporary file's
            # name, found here, leads to them.
            scratch = sorted(
                {n for f in found for n in fnmatch.filter(names, f"{_scratch_stem(f)}.*")}
            )
            removed: list[Path] = []
            for leftover in (*scratch, *found):
                with contextlib.suppress(FileNotFoundError):
                    remove_entry(fd, leftover)
                    removed.append(final.with_name(leftover))
            return removed
    except FileNotFoundError:
        return []


def make_durable(path: str | os.PathLike[str], *, project_key: object = None) -> None:
    """Check that ``path`` is a finished file and push it to disk before it is published.

    It must be a regular, non-empty file, not a symbolic link. Its mode becomes 0644 (the
    temporary file was created 0600; a published video must stay readable by the web
    server), then it is fsynced: all through one descriptor, opened without following a
    link, so nothing else is chmodded or synced if the name is swapped meanwhile.

    Raises:
        RenderOutputError: the file is missing, a symbolic link, not a regular file, or
            empty; ``project_key`` only words the message.
    """
    seal(path, project_key=project_key)


def sync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable; a no-op where directories cannot be opened."""
    flag = getattr(os, "O_DIRECTORY", None)
    if flag is None:  # pragma: no cover - Windows
        return
    fd = os.open(directory, os.O_RDONLY | flag)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ the journal


class Settled(NamedTuple):
    """What :func:`settle_backups` did with a final file's backups, by tag."""

    restored: list[str]
    """The tags whose backup was put back over the final file (their attempt did not commit)."""
    dropped: list[str]
    """The tags whose backup was removed (their attempt committed)."""


def new_tag() -> str:
    """Return a fresh tag for a journaled publish that has no attempt id: 16 hex digits."""
    return secrets.token_hex(_TOKEN_BYTES)


def _check_tag(tag: object) -> str:
    text = str(tag) if isinstance(tag, int) and not isinstance(tag, bool) and tag >= 0 else tag
    if not isinstance(text, str) or _TAG.fullmatch(text) is None:
        msg = (
            f"a backup tag is 1 to {_TAG_MAX} lower-case ASCII letters and digits (an attempt "
            f"id, or new_tag()); got {tag!r}"
        )
        raise ValueError(msg)
    return text


def _backup_stem(final: Path) -> str:
    return _fitted_stem(final, f".-{'0' * _TAG_MAX}{_BACKUP}{final.suffix}")


def backup_path(final: str | os.PathLike[str], tag: str | int) -> Path:
    """Return the path of ``final``'s backup tagged ``tag``: ``.final-<tag>.backup.mp4``.

    It fits in 255 bytes whatever ``final``'s name (cut like a temporary file's name), and
    never matches what :func:`remove_temporary_files` or :func:`discard` remove.

    Raises:
        ValueError: ``tag`` is not 1 to 20 lower-case ASCII letters and digits (or an int
            >= 0, such as an attempt id).
    """
    final = Path(final)
    return final.with_name(f".{_backup_stem(final)}-{_check_tag(tag)}{_BACKUP}{final.suffix}")


_Root = str | os.PathLike[str] | None


def backups(final: str | os.PathLike[str], *, media_root: _Root = None) -> dict[str, Path]:
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


def backup(final: str | os.PathLike[str], tag: str | int, *, media_root: _Root = None) -> Path:
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
        _backup_at(fd, final, tag)
    return backup_path(final, tag)


def _backup_at(fd: int, final: Path, tag: str | int) -> None:
    name = backup_path(final, tag).name
    try:
        os.link(final.name, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
    except FileExistsError:
        return
    except FileNotFoundError:
        try:
            _create(fd, name)
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
    _create(fd, temporary)
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


def restore(final: str | os.PathLike[str], tag: str | int, *, media_root: _Root = None) -> bool:
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
            return _restore_at(fd, final, tag)
    except FileNotFoundError:
        return False


def _restore_at(fd: int, final: Path, tag: str | int) -> bool:
    name = backup_path(final, tag).name
    try:
        kept = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if kept.st_size == 0:  # there was no final file before this attempt
        with contextlib.suppress(FileNotFoundError):
            os.unlink(final.name, dir_fd=fd)
        os.unlink(name, dir_fd=fd)
    elif _same_at(fd, kept, final.name):
        # rename() between two links of one file does nothing: remove the second name.
        os.unlink(name, dir_fd=fd)
    else:
        os.replace(name, final.name, src_dir_fd=fd, dst_dir_fd=fd)
    os.fsync(fd)
    logger.info("restored %s from its backup %s", final, name)
    return True


def _same_at(fd: int, kept: os.stat_result, name: str) -> bool:
    try:
        return same(kept, os.stat(name, dir_fd=fd, follow_symlinks=False))
    except FileNotFoundError:
        return False


def drop_backup(final: str | os.PathLike[str], tag: str | int, *, media_root: _Root = None) -> bool:
    """Remove the backup tagged ``tag`` of ``final``: its attempt committed; fsync the directory.

    Returns:
        Whether there was a backup to remove.
    """
    final = Path(final)
    try:
        with folder(final.parent, media_root=media_root, create=False) as fd:
            return _drop_at(fd, final, tag)
    except FileNotFoundError:
        return False


def _drop_at(fd: int, final: Path, tag: str | int) -> bool:
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
    media_root: _Root = None,
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
            return _settle_at(fd, final, committed)
    except FileNotFoundError:
        return Settled([], [])


def _settle_at(fd: int, final: Path, committed: Callable[[str], bool] | bool) -> Settled:
    def order(tag: str) -> tuple[int, int, str]:
        return (0, int(tag), tag) if tag.isdigit() else (1, 0, tag)

    settled = Settled([], [])
    for tag in sorted(_backups_at(fd, final), key=order, reverse=True):
        if committed if isinstance(committed, bool) else committed(tag):
            if _drop_at(fd, final, tag):
                settled.dropped.append(tag)
        elif _restore_at(fd, final, tag):
            settled.restored.append(tag)
    return settled


def _sync_after_rename(fd: int, directory: Path) -> None:
    try:
        os.fsync(fd)
    except OSError:
        # The new file is already in place; reporting a failure now would make the caller
        # record a failed write whose file replaced the old one. Say so and carry on.
        logger.warning("could not fsync %s after the rename", directory, exc_info=True)


@contextlib.contextmanager
def publishing(
    final: str | os.PathLike[str],
    *,
    project_key: object = None,
    commit: Callable[[], object] | None = None,
    tag: str | int | None = None,
    committed: Callable[[str], bool] | bool = True,
    media_root: _Root = None,
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
            tag = new_tag() if tag is None else _check_tag(tag)
            _settle_at(fd, final, committed)
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
                _sync_after_rename(fd, final.parent)
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
    _backup_at(fd, final, tag)
    try:
        move()  # atomic: readers see the old file or the new one
    except BaseException as exc:
        _put_back(fd, final, tag)
        if isinstance(exc, OSError) and exc.errno == errno.EXDEV and give_back is not None:
            return False
        raise
    _sync_after_rename(fd, final.parent)
    try:
        commit()
    except BaseException:
        if give_back is not None:
            with contextlib.suppress(OSError):
                give_back()
        _put_back(fd, final, tag)
        raise
    try:
        _drop_at(fd, final, tag)
    except OSError:
        # Committed: the backup is only a leftover now, which the next settle removes.
        logger.warning("published %s but could not remove its backup", final, exc_info=True)
    return True


def _put_back(fd: int, final: Path, tag: str | int) -> None:
    try:
        _restore_at(fd, final, tag)
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
    media_root: _Root = None,
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
        tag = new_tag() if tag is None else _check_tag(tag)
    make_durable(source, project_key=project_key)
    with folder(final.parent, media_root=media_root, create=True) as fd:
        if _same_at(fd, source.stat(), final.name):
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
            _settle_at(fd, final, committed)

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
                _sync_after_rename(fd, final.parent)
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
