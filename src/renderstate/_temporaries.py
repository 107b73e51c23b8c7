"""Temporary and scratch files beside a final file: their names, creation and clean-up.

The public names are re-exported by :mod:`renderstate.files`, which documents them.
"""

import contextlib
import fnmatch
import glob
import hashlib
import logging
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Final

from renderstate._confined import entries, folder, remove_entry, remove_moviepy_scratch, seal

logger = logging.getLogger("renderstate.files")

_PARTIAL: Final = ".partial"
TOKEN_BYTES: Final = 8
_TOKEN: Final = re.compile(r"[0-9a-f]{16}")
# The longest file name, in bytes, on Linux's and macOS's usual file systems (NAME_MAX).
_NAME_MAX: Final = 255
# moviepy names its temporary soundtrack "<output name without extension>TEMP_MPY_wvf_snd.<ext>"
# in temp_audiofile_path: given the temporary file's directory, that is a scratch file too.
_MOVIEPY: Final = "TEMP_MPY_"
_SCRATCH: Final = ".renderstate-"
_SCRATCH_DIGITS: Final = 16
_LABEL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


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
                create_new(fd, name)
            except FileExistsError:
                if token is not None:
                    raise
                continue  # pragma: no cover - 64 random bits collided
            return final.with_name(name)


def temporary_name(final: Path, token: str | None) -> str:
    """The name of ``final``'s temporary file for ``token`` (random by default)."""
    digits = secrets.token_hex(TOKEN_BYTES) if token is None else _check_token(token)
    return f".{_temporary_stem(final)}-{digits}{_PARTIAL}{final.suffix}"


def create_new(fd: int, name: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    os.close(os.open(name, flags, 0o600, dir_fd=fd))


def _check_token(token: object) -> str:
    if not isinstance(token, str) or _TOKEN.fullmatch(token) is None:
        msg = f"a temporary file's token is {2 * TOKEN_BYTES} lower-case hex digits; got {token!r}"
        raise ValueError(msg)
    return token


def _temporary_stem(final: Path) -> str:
    """``final``'s stem as its temporary files' names carry it: cut to fit in NAME_MAX."""
    return fitted_stem(final, f".-{'0' * 2 * TOKEN_BYTES}{_PARTIAL}{final.suffix}")


def fitted_stem(final: Path, around: str) -> str:
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


def temporary_tokens(
    final: str | os.PathLike[str], *, media_root: str | os.PathLike[str] | None = None
) -> set[str]:
    """The tokens of the temporary files of ``final`` (:func:`create_temporary`'s) found now.

    One listing of the directory; a missing directory has none.
    """
    final = Path(final)
    stem = re.escape(f".{_temporary_stem(final)}-")
    named = re.compile(
        rf"{stem}(?P<token>[0-9a-f]{{{2 * TOKEN_BYTES}}}){re.escape(_PARTIAL)}"
        rf"({re.escape(final.suffix)}|{_MOVIEPY}).*",
        re.DOTALL,
    )
    try:
        with folder(final.parent, media_root=media_root, create=False) as fd:
            return {m["token"] for n in entries(fd) if (m := named.fullmatch(n)) is not None}
    except FileNotFoundError:
        return set()


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
    ``<temporary name without .mp4>TEMP_MPY_wvf_snd.mp4``), or, named so, in this process's
    working directory, where moviepy puts it by default. Call it only when no writer of
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
    digits = "[0-9a-f]" * (2 * TOKEN_BYTES) if token is None else _check_token(token)
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
            for leftover in found:
                # moviepy's soundtrack of a render told to write this temporary file, in the
                # working directory when the render function did not say where (seen from
                # this process's: run recovery where the server runs).
                remove_moviepy_scratch(leftover)
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
