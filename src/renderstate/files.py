"""Publishing a file safely: write it beside the final one, then replace that atomically.

::

    from renderstate.files import publishing

    with publishing("media/projects/42/final.mp4") as target:
        render(project, target)  # writes the whole new video to `target`
    # Here final.mp4 is the new video, on disk. Had the block raised (Ctrl-C included),
    # final.mp4 would be byte for byte the previous video and `target` would be gone.

This is the file half of what :class:`~renderstate.RenderRunner` does, usable on its own
with :class:`~renderstate.ProjectLifecycle` (the runner itself uses these functions).

- :func:`publishing` hands out a temporary path beside the final file; when the block
  succeeds it checks the file (present, not empty), fsyncs it, replaces the final
  file with one ``os.replace`` (a reader sees the old file or the new one, never a mix) and
  fsyncs the directory. When the block raises, it removes the temporary file and
  its scratch files and re-raises: the final file was never opened.
- :func:`publish` does the same for a file already written elsewhere (a render function
  that picks its own output path): a rename on the same file system, a copy beside the
  final file and then a rename across file systems.
- :func:`remove_temporary_files` removes what a killed process left beside a final file;
  recovery calls it.
- :func:`output_path_of` turns a file below the media root into the URL-relative path to
  store with ``complete()``, refusing files outside the root (``..``, symbolic links).

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
import glob
import hashlib
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from renderstate._lifecycle import validate_output_path
from renderstate.exceptions import InvalidOutputPathError, RenderOutputError

__all__ = [
    "create_temporary",
    "discard",
    "make_durable",
    "output_path_of",
    "publish",
    "publishing",
    "remove_temporary_files",
    "scratch_path",
    "sync_directory",
]

logger = logging.getLogger("renderstate.files")

_PARTIAL: Final = ".partial"
_TOKEN_BYTES: Final = 8
# The longest file name, in bytes, on Linux's and macOS's usual file systems (NAME_MAX).
_NAME_MAX: Final = 255
_PUBLISHED_MODE: Final = 0o644
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


def create_temporary(final: str | os.PathLike[str]) -> Path:
    """Create an empty, private temporary file beside ``final``, named after it, and return it.

    The directory must exist. The file is ``.<stem>-<16 hex digits>.partial<suffix>``,
    created exclusively with mode 0600, so two writers never share one. When that name
    would be longer than 255 bytes, ``<stem>`` is cut short and ends in ``~`` and 16 hex
    digits of a hash of the whole stem.
    """
    final = Path(final)
    stem = _temporary_stem(final)
    while True:
        token = secrets.token_hex(_TOKEN_BYTES)
        temporary = final.with_name(f".{stem}-{token}{_PARTIAL}{final.suffix}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # pragma: no cover - 64 random bits collided
            continue
        os.close(fd)
        return temporary


def _temporary_stem(final: Path) -> str:
    """``final``'s stem as its temporary files' names carry it: cut to fit in NAME_MAX."""
    rest = len(os.fsencode(f".-{'0' * 2 * _TOKEN_BYTES}{_PARTIAL}{final.suffix}"))
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


def discard(temporary: str | os.PathLike[str]) -> None:
    """Remove ``temporary`` and every file beside it whose name starts with its name.

    Those are its scratch files (``<temporary name>.soundtrack.wav``), and those named by
    :func:`scratch_path`. Files already gone and files that cannot be removed are skipped:
    this runs on the way out of a failure.
    """
    temporary = Path(temporary)
    patterns = (
        f"{_scratch_stem(temporary.name)}.*",
        f"{glob.escape(temporary.name)}*",
        f"{glob.escape(temporary.stem)}{_MOVIEPY}*",
    )
    for pattern in patterns:
        for leftover in temporary.parent.glob(pattern):
            with contextlib.suppress(OSError):
                _remove(leftover)


def remove_temporary_files(final: str | os.PathLike[str]) -> list[Path]:
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
    """
    final = Path(final)
    # The token's exact length keeps "intro" from matching "intro-v2"'s temporary files.
    token = "[0-9a-f]" * (2 * _TOKEN_BYTES)
    stem = f".{glob.escape(_temporary_stem(final))}-{token}{_PARTIAL}"
    patterns = (f"{stem}{glob.escape(final.suffix)}*", f"{stem}{_MOVIEPY}*")
    found = sorted({p for pattern in patterns for p in final.parent.glob(pattern)})
    # The scratch files scratch_path() named go first: only their temporary file's name,
    # found here, leads to them.
    scratch = sorted(
        {p for leftover in found for p in final.parent.glob(f"{_scratch_stem(leftover.name)}.*")}
    )
    removed: list[Path] = []
    for leftover in (*scratch, *found):
        with contextlib.suppress(FileNotFoundError):
            _remove(leftover)
            removed.append(leftover)
    return removed


def _remove(path: Path) -> None:
    # A program may have made a directory of its scratch name; a symlink is only unlinked.
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def make_durable(path: str | os.PathLike[str], *, project_key: object = None) -> None:
    """Check that ``path`` is a finished file and push it to disk before it is published.

    It must be a regular, non-empty file. Its mode becomes 0644 (the temporary file was
    created 0600; a published video must stay readable by the web server), then it is
    fsynced.

    Raises:
        RenderOutputError: the file is missing, not a regular file, or empty; ``project_key``
            only words the message.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise RenderOutputError(project_key=project_key, reason="the file is missing") from None
    if not path.is_file():
        raise RenderOutputError(project_key=project_key, reason="it is not a regular file")
    if stat.st_size == 0:
        raise RenderOutputError(project_key=project_key, reason="the file is empty")
    path.chmod(_PUBLISHED_MODE)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _sync_after_rename(directory: Path) -> None:
    try:
        sync_directory(directory)
    except OSError:
        # The new file is already in place; reporting a failure now would make the caller
        # record a failed write whose file replaced the old one. Say so and carry on.
        logger.warning("could not fsync %s after the rename", directory, exc_info=True)


@contextlib.contextmanager
def publishing(final: str | os.PathLike[str], *, project_key: object = None) -> Iterator[Path]:
    """Hand out a temporary path beside ``final``; replace ``final`` with it if the block succeeds.

    The directory of ``final`` is created if needed. Write the whole new file to the path
    the ``with`` statement gives (keep scratch files beside it, named after it). When the
    block ends normally, the file is checked and flushed (:func:`make_durable`), moved over
    ``final`` with one ``os.replace``, and the directory is fsynced. When the block
    raises, ``BaseException`` included (``KeyboardInterrupt``, ``SystemExit``), or the check
    or the rename fails, the temporary file and its scratch files are removed, ``final`` is
    left exactly as it was, and the exception propagates.

    A process killed inside the block cannot clean up: :func:`remove_temporary_files`
    (called by recovery) removes what it left. ``final`` is untouched in that case too.

    Args:
        final: Where the file is published.
        project_key: Only words the error messages.

    Raises:
        RenderOutputError: the block wrote no file, or an empty one; ``final`` is untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = create_temporary(final)
    try:
        yield temporary
        make_durable(temporary, project_key=project_key)
        temporary.replace(final)  # atomic: readers see the old file or the new one
    except BaseException:
        discard(temporary)
        raise
    discard(temporary)  # the scratch files; the temporary file itself is now `final`
    _sync_after_rename(final.parent)


def publish(
    source: str | os.PathLike[str], final: str | os.PathLike[str], *, project_key: object = None
) -> Path:
    """Move a finished file written elsewhere over ``final``, with :func:`publishing`'s care.

    For a render function that picks its own output path and returns it. ``source`` is
    checked and flushed (:func:`make_durable`), then, on the same file system, renamed onto
    ``final`` (one atomic ``os.replace``); across file systems it is copied to a temporary
    file beside ``final``, which then replaces ``final`` atomically, and ``source`` is
    removed. Either way the directory is fsynced and ``final`` is replaced whole or
    not at all: on any failure it is left exactly as it was, no temporary file remains,
    and ``source`` is where it was.

    Returns:
        ``final``, as a :class:`~pathlib.Path`.

    Raises:
        RenderOutputError: ``source`` is missing, a symbolic link, not a regular file, or
            empty.
        InvalidOutputPathError: ``source`` is ``final`` itself: the render wrote over the
            published file, which nothing can make safe afterwards; write elsewhere.
    """
    source, final = Path(source), Path(final)
    if source.is_symlink():
        # Renaming the link would publish a link into the render's scratch space.
        raise RenderOutputError(
            project_key=project_key, reason=f"it returned a symbolic link ({source})"
        )
    make_durable(source, project_key=project_key)
    with contextlib.suppress(FileNotFoundError):
        if source.samefile(final):
            raise InvalidOutputPathError(
                path=str(source),
                reason="it is the file being published itself, so the previous version was "
                "overwritten while it was written",
                hint="Write the new file elsewhere (renderstate.files.publishing hands out a "
                "temporary path beside the final file) and publish that",
            )
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        source.replace(final)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    else:
        _sync_after_rename(final.parent)
        return final
    # Another file system: a rename cannot cross it, so copy beside `final` first.
    with publishing(final, project_key=project_key) as temporary:
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
