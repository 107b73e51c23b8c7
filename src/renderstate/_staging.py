"""A directory output's staging directory: written by the renderer, sealed, swapped in.

See :mod:`renderstate._directories` for the scheme and its journal; this is the render's
side of it: the private directory and the empty output directory inside it, the check
and fsync of everything written, and the journaled swap.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Final

from renderstate._confined import entries, folder, refusal, remove_entry, same
from renderstate._directories import (
    PREVIOUS,
    Journal,
    exchange,
    is_private,
    lstat_at,
    put_back,
    remove_private,
    staging_name,
    write_journal,
)
from renderstate.exceptions import InvalidOutputPathError, RenderOutputError, UnsafePathError

_DIRECTORY: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
_PROC_FD: Final = Path("/proc/self/fd")
_PRIVATE_MODE: Final = 0o700
_FILE_MODE: Final = 0o644
_FOLDER_MODE: Final = 0o755
_HINT: Final = (
    "Someone who can write the media folder replaced a directory with a link; remove it "
    "and keep the media folder writable only by the render user, or sticky (see the "
    "Security page)"
)


def check_output(folder_fd: int, output: str, where: Path) -> None:
    """Refuse an output path that holds something other than a directory.

    Raises:
        InvalidOutputPathError: it is a file (or a link, or anything but a directory).
    """
    found = lstat_at(folder_fd, output)
    if found is None or stat.S_ISDIR(found.st_mode):
        return
    what = "a symbolic link" if stat.S_ISLNK(found.st_mode) else "a file"
    raise InvalidOutputPathError(
        path=str(where / output),
        reason=f"it is {what}, and the renderer writes a directory (its output is 'directory')",
        hint="Move that file away, or give directory outputs a path of their own "
        "(RenderRunner(output_path_for=...), such as 'projects/42/hls')",
    )


class Staging:
    """A render's private directory beside a directory output, and the directory inside it.

    :attr:`target` is the path to hand the renderer: an empty directory, writable by the
    render user alone. :meth:`seal` checks and syncs what was written, :meth:`swap`
    publishes it, :meth:`settle` keeps it or puts the previous one back,
    :meth:`remove` removes everything (before a swap).
    """

    def __init__(
        self, folder_fd: int, output: Path, token: str, media_root: Path | None = None
    ) -> None:
        self.output = output
        """The output directory's path."""
        self.name = staging_name(output, token)
        """The private directory's name beside the output."""
        self._media_root = media_root
        self._folder = os.dup(folder_fd)
        self._private = -1
        self._sealed: os.stat_result | None = None
        self.journal: Journal | None = None
        """Written just before the swap."""
        try:
            os.mkdir(self.name, _PRIVATE_MODE, dir_fd=self._folder)
            try:
                self._private = os.open(self.name, _DIRECTORY, dir_fd=self._folder)
            except OSError as exc:
                refused = refusal(self._folder, self.name)
                if refused is None:
                    raise
                raise UnsafePathError(
                    path=str(output.parent / self.name),
                    reason=f"the render's private directory was replaced by {refused}",
                    hint=_HINT,
                ) from exc
            _check_private(self._private, output.parent / self.name)
            os.mkdir(output.name, _FOLDER_MODE, dir_fd=self._private)
        except BaseException:
            self.close()
            raise

    @property
    def target(self) -> Path:
        """The empty directory to write, through the private directory's descriptor."""
        if _PROC_FD.is_dir():
            return Path(f"/proc/{os.getpid()}/fd/{self._private}") / self.output.name
        return self.output.parent / self.name / self.output.name  # pragma: no cover - no /proc

    def adopt(self, written: Path, *, project_key: object) -> None:
        """Move a directory the renderer wrote elsewhere into the staging directory.

        Raises:
            RenderOutputError: it is not a directory, or is the output itself.
        """
        try:
            found = written.lstat()
        except FileNotFoundError:
            raise RenderOutputError(
                project_key=project_key, reason=f"the directory it returned, {written}, is missing"
            ) from None
        if not stat.S_ISDIR(found.st_mode):
            what = "a symbolic link" if stat.S_ISLNK(found.st_mode) else "not a directory"
            raise RenderOutputError(
                project_key=project_key,
                reason=f"the path it returned, {written}, is {what}, and its output is a "
                f"directory (write into the directory it is given, or return one)",
            )
        here = lstat_at(self._folder, self.output.name)
        if here is not None and same(here, found):
            raise RenderOutputError(
                project_key=project_key,
                reason=f"it returned the published directory {self.output} itself: it wrote "
                f"into the previous output in place (write into the directory it is given)",
            )
        # On another file system the rename fails with EXDEV and the directory stays where
        # it was: the render fails saying so.
        try:
            os.rename(written, self.output.name, dst_dir_fd=self._private)
        except OSError as exc:
            raise RenderOutputError(
                project_key=project_key,
                reason=f"the directory it returned, {written}, could not be moved beside the "
                f"output ({exc.strerror}): write into the directory it is given, or on the "
                f"media root's file system",
            ) from exc

    def seal(self, project_key: object) -> None:
        """Check the written directory, make it readable, and fsync every file and directory.

        Every entry is opened without following a link: files become ``0644`` and
        directories ``0755``, each fsynced by its descriptor, the directories after their
        contents.

        Raises:
            RenderOutputError: it holds no file, or a symbolic link or a special file.
        """
        fd = os.open(self.output.name, _DIRECTORY, dir_fd=self._private)
        try:
            if _seal_tree(fd, Path(self.output.name), project_key) == 0:
                raise RenderOutputError(
                    project_key=project_key, reason="it wrote no file into its output directory"
                )
            self._sealed = os.fstat(fd)
        finally:
            os.close(fd)

    def clear_scratch(self) -> None:
        """Remove everything in the private directory but the output (scratch files)."""
        for entry in entries(self._private):
            if entry != self.output.name:
                with contextlib.suppress(OSError):
                    remove_entry(self._private, entry)

    def swap(self, tag: str) -> None:
        """Publish the sealed directory at the output path: journal, then exchange, then sync.

        Raises:
            InvalidOutputPathError: the output path holds a file.
            UnsafePathError: the sealed directory or the output's directory was replaced.
        """
        assert self._sealed is not None, "seal() first"
        check_output(self._folder, self.output.name, self.output.parent)
        now = lstat_at(self._private, self.output.name)
        if now is None or not same(now, self._sealed):  # pragma: no cover - private
            raise UnsafePathError(
                path=str(self.output.parent / self.name / self.output.name),
                reason="the finished directory was replaced after it was checked",
                hint="Nothing was published; render again",
            )
        if self._media_root is not None:
            with folder(self.output.parent, media_root=self._media_root, create=False) as fd:
                if not same(os.fstat(fd), os.fstat(self._folder)):
                    raise UnsafePathError(
                        path=str(self.output.parent),
                        reason="the directory was moved and replaced while the output was rendered",
                        hint=_HINT,
                    )
        self.journal = Journal(tag, self._sealed.st_dev, self._sealed.st_ino)
        write_journal(self._private, self.journal)
        name = self.output.name
        try:
            swapped = exchange(self._private, name, self._folder, name)
        except FileNotFoundError:  # a first version: nothing to swap with
            os.rename(name, name, src_dir_fd=self._private, dst_dir_fd=self._folder)
        else:
            if not swapped:
                with contextlib.suppress(FileNotFoundError):
                    os.rename(name, PREVIOUS, src_dir_fd=self._folder, dst_dir_fd=self._private)
                os.rename(name, name, src_dir_fd=self._private, dst_dir_fd=self._folder)
        os.fsync(self._folder)
        os.fsync(self._private)

    def settle(self, *, committed: bool) -> None:
        """Keep the new output (``committed``) or put the previous one back; remove the rest."""
        if not committed and self.journal is not None:
            put_back(self._folder, self._private, self.output.name, self.journal)
        self.remove()

    def remove(self) -> None:
        """Remove the private directory with what is left in it; close the descriptors."""
        if self._private >= 0:
            with contextlib.suppress(OSError):
                remove_private(self._folder, self.name, self._private)
        self.close()

    def close(self) -> None:
        """Close the descriptors (the private directory stays on disk)."""
        for fd in (self._private, self._folder):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._private = self._folder = -1


def _check_private(fd: int, where: Path) -> None:
    if not is_private(os.fstat(fd)):
        raise UnsafePathError(
            path=str(where),
            reason="the render's private directory was replaced by someone else's",
            hint=_HINT,
        )


def _seal_tree(fd: int, where: Path, project_key: object) -> int:
    """Seal the directory open as ``fd`` and everything below it; return its files' count."""
    files = 0
    for name in entries(fd):
        found = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(found.st_mode):
            child = os.open(name, _DIRECTORY, dir_fd=fd)
            try:
                files += _seal_tree(child, where / name, project_key)
            finally:
                os.close(child)
        elif stat.S_ISREG(found.st_mode):
            child = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            try:
                os.fchmod(child, _FILE_MODE)
                os.fsync(child)
            finally:
                os.close(child)
            files += 1
        else:
            what = "a symbolic link" if stat.S_ISLNK(found.st_mode) else "not a regular file"
            raise RenderOutputError(
                project_key=project_key,
                reason=f"{where / name} in its output directory is {what} (a published "
                f"output holds regular files and directories only)",
            )
    os.fchmod(fd, _FOLDER_MODE)
    os.fsync(fd)
    return files
