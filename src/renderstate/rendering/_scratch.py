"""The render's scratch files, in a private directory opened once, never found again by name.

The soundtrack's WAV and AAC, the encoded pieces and their list are the renderer's own
files. Named predictably beside a target in a folder others can write (a group-writable
media folder), they could be taken first by symbolic links, and a write by name would
follow them out of the folder. So a render keeps them in a directory of its own:

- a target already in a directory that only the render user can write into (owned by
  it, no access for group or others: the runner's private workspace) needs no other; its
  scratch files go beside it, named by :func:`renderstate.files.scratch_path`;
- otherwise the render makes one beside the target: mode ``0700``, named
  ``.renderstate-<hash of the target's name>.work-<16 random hex digits>`` (a
  :func:`~renderstate.files.scratch_path` name, so that recovery removes it with the
  target's temporary file if the process is killed).

Either way the directory is opened once; each file is created ``O_EXCL | O_NOFOLLOW``
relative to its descriptor and handed to ffmpeg through that descriptor
(``/proc/<pid>/fd/<n>/<name>``), so a name renamed or replaced around the directory
changes nothing. :meth:`Scratch.close` removes every file the render made, whatever
happened.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO, Final

from renderstate._confined import entries, remove_entry, same
from renderstate.exceptions import UnsafePathError
from renderstate.files import scratch_path

__all__ = ["Scratch"]

_DIRECTORY: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_CREATE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PRIVATE_MODE: Final = 0o700
_PROC_FD: Final = Path("/proc/self/fd")


def _private(found: os.stat_result) -> bool:
    """Whether only the render user can add, rename or remove entries in the directory."""
    return found.st_uid == os.geteuid() and not found.st_mode & 0o077


class Scratch:
    """Where one render writes its scratch files (see the module's docstring).

    Raises:
        UnsafePathError: the private directory was replaced before it could be opened.
    """

    def __init__(self, target: Path) -> None:
        self._target = target
        # The target's directory is the caller's: opened by the name it gave, once.
        self._parent = os.open(target.parent, _DIRECTORY)
        self._fd = -1
        self._own: str | None = None
        self._made: list[str] = []
        try:
            if _private(os.fstat(self._parent)):
                self._fd = os.dup(self._parent)
            else:
                self._own = scratch_path(target, f"work-{secrets.token_hex(8)}").name
                self._fd = self._make_own(self._own)
        except BaseException:
            self.close()
            raise

    def _make_own(self, name: str) -> int:
        os.mkdir(name, _PRIVATE_MODE, dir_fd=self._parent)
        try:
            fd = os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=self._parent)
        except OSError as exc:
            raise UnsafePathError(
                path=str(self._target.parent / name),
                reason="the render's scratch directory was replaced before it was opened",
                hint=_HINT,
            ) from exc
        if not _private(os.fstat(fd)):
            # Not the directory just made: someone renamed theirs over it.
            os.close(fd)
            raise UnsafePathError(
                path=str(self._target.parent / name),
                reason="the render's scratch directory was replaced by someone else's",
                hint=_HINT,
            )
        os.fchmod(fd, _PRIVATE_MODE)  # whatever the umask or a setgid folder made of it
        return fd

    @property
    def directory(self) -> Path:
        """The directory's path for another program: through its descriptor where possible."""
        if _PROC_FD.is_dir():
            # /proc/<pid>, not /proc/self: an ffmpeg child resolves it to this descriptor too.
            return Path(f"/proc/{os.getpid()}/fd/{self._fd}")
        if self._own is None:  # pragma: no cover - no /proc
            return self._target.parent
        return self._target.parent / self._own  # pragma: no cover - no /proc

    def name(self, label: str) -> str:
        """The file name of scratch file ``label`` in :attr:`directory`."""
        # Beside the target, named after it (scratch_path); in a directory of our own, plain.
        return scratch_path(self._target, label).name if self._own is None else label

    def path(self, label: str) -> Path:
        """Create scratch file ``label``, empty, and return its path (for ffmpeg's output)."""
        os.close(self._create(label))
        return self.directory / self.name(label)

    def open(self, label: str) -> BinaryIO:
        """Create scratch file ``label`` and return it open for writing."""
        return os.fdopen(self._create(label), "wb")

    def folder(self, label: str) -> tuple[int, Path]:
        """Create a directory ``label`` (``0700``); return its descriptor and path.

        The caller closes the descriptor; the directory goes with :meth:`close`.
        """
        name = self.name(label)
        os.mkdir(name, _PRIVATE_MODE, dir_fd=self._fd)
        self._made.append(name)
        return os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=self._fd), self.directory / name

    def _create(self, label: str) -> int:
        name = self.name(label)
        fd = os.open(name, _CREATE, 0o600, dir_fd=self._fd)
        self._made.append(name)
        return fd

    def close(self) -> None:
        """Remove every scratch file and directory made, and the private directory; close it."""
        if self._fd >= 0:
            names = entries(self._fd) if self._own is not None else self._made
            for name in names:
                with contextlib.suppress(OSError):
                    remove_entry(self._fd, name)
            if self._own is not None:
                with contextlib.suppress(OSError):
                    here = os.stat(self._own, dir_fd=self._parent, follow_symlinks=False)
                    # Only our own directory: a look-alike renamed in its place stays.
                    if stat.S_ISDIR(here.st_mode) and same(here, os.fstat(self._fd)):
                        os.rmdir(self._own, dir_fd=self._parent)
            os.close(self._fd)
            self._fd = -1
        if self._parent >= 0:
            os.close(self._parent)
            self._parent = -1


_HINT: Final = (
    "Someone who can write the target's folder is at work: keep it writable only by the "
    "render user, or sticky (see the Security page)"
)
