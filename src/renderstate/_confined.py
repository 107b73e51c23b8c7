"""Directories below the media root, opened one component at a time, never through a link.

A media folder is often writable by a group (setgid ``2775``, umask ``002``): anyone in that
group can rename a symbolic link over any name in it at any moment. Resolving a path by
name there lets them point the library's writes anywhere the render user can write. So
the library opens the media root once, then each directory below it with ``O_NOFOLLOW``
relative to its parent's descriptor (``openat``), and names files only relative to the
last descriptor: a link on the way is refused (:class:`~renderstate.UnsafePathError`),
and a directory renamed after it was opened no longer matters, the descriptor still being
the directory that was checked.

The media root itself is trusted configuration: it may be a link (``/srv/media`` ->
``/mnt/media``), and it is opened by its name.

A render writes into a *workspace*: a private directory (mode ``0700``, owned by the
render user) created beside the final file under the temporary file's name, holding the
temporary file of the same name and the renderer's scratch files. Nobody else can add,
rename or replace anything inside it. The renderer is handed the temporary file's path
through the workspace's descriptor (``/proc/<pid>/fd/<n>/<name>``, where ``/proc`` is
mounted), so even a program that writes by name (ffmpeg) lands in that directory, whatever
is renamed around it. The finished file is opened without following links, checked,
mode-changed and synced by descriptor, its identity (device, inode) checked against the
name once more, and renamed onto the final name relative to the two directory
descriptors.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from renderstate.exceptions import RenderOutputError, UnsafePathError

_DIRECTORY: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
_PROC_FD: Final = Path("/proc/self/fd")
_PRIVATE_MODE: Final = 0o700
_PUBLISHED_MODE: Final = 0o644
_LINKED: Final = "a symbolic link"


def parts_below(directory: Path, media_root: Path) -> tuple[str, ...]:
    """The components of ``directory`` below ``media_root``, as written (no ``..``, no ``.``).

    Raises:
        UnsafePathError: ``directory`` is not below ``media_root`` as written.
    """
    root = Path(os.path.abspath(media_root))  # noqa: PTH100 - '..' collapsed as written
    path = Path(os.path.abspath(directory))  # noqa: PTH100
    if path != root and root not in path.parents:
        raise UnsafePathError(
            path=str(directory),
            reason=f"it is not below the media root {str(root)!r}",
            hint="Write only below the media root the runner was given",
        )
    return path.relative_to(root).parts


@contextlib.contextmanager
def folder(
    directory: str | os.PathLike[str], *, media_root: str | os.PathLike[str] | None, create: bool
) -> Iterator[int]:
    """Open ``directory`` and yield its descriptor; closed on exit.

    With ``media_root``, each component below the root is opened relative to its parent
    with ``O_NOFOLLOW`` (and, with ``create``, made first if missing): a symbolic link or
    a file on the way is refused. Without it, ``directory`` is opened by name (the caller
    trusts it), made first with its parents if ``create``.

    Raises:
        UnsafePathError: a component below the media root is a link or not a directory.
        FileNotFoundError: a component is missing and ``create`` is false.
    """
    directory = Path(directory)
    if media_root is None:
        if create:
            directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory, _DIRECTORY & ~os.O_NOFOLLOW)
    else:
        parts = parts_below(directory, Path(media_root))
        if create:
            Path(media_root).mkdir(parents=True, exist_ok=True)
        fd = os.open(media_root, _DIRECTORY & ~os.O_NOFOLLOW)
        try:
            where = Path(media_root)
            for part in parts:
                where = where / part
                child = _open_child(fd, part, where, create=create)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
    try:
        yield fd
    finally:
        os.close(fd)


def _open_child(parent: int, name: str, where: Path, *, create: bool) -> int:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, dir_fd=parent)
    try:
        return os.open(name, _DIRECTORY, dir_fd=parent)
    except OSError as exc:
        refused = refusal(parent, name)
        if refused is None:
            raise
        raise UnsafePathError(
            path=str(where),
            reason=f"it is {refused}, on a path the library writes below the media root",
            hint=_HINT,
        ) from exc


_HINT: Final = (
    "Someone who can write the media folder replaced a directory with a link; remove it "
    "and keep the media folder writable only by the render user, or sticky (see the "
    "Security page)"
)


def refusal(parent: int, name: str) -> str | None:
    """What ``name`` in ``parent`` is, when that is why it cannot be used as a directory."""
    try:
        found = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        return None
    if stat.S_ISLNK(found.st_mode):
        return _LINKED
    if not stat.S_ISDIR(found.st_mode):
        return "not a directory"
    return None


def same(one: os.stat_result, other: os.stat_result) -> bool:
    """Whether two stats are of one file (device and inode)."""
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


def remove_entry(parent: int, name: str) -> None:
    """Remove ``name`` in ``parent``: unlinked (a link itself), or removed with its contents."""
    found = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not stat.S_ISDIR(found.st_mode):
        os.unlink(name, dir_fd=parent)
        return
    # By descriptor all the way down (shutil.rmtree takes dir_fd only from Python 3.11):
    # a link inside is unlinked, never followed.
    fd = os.open(name, _DIRECTORY, dir_fd=parent)
    try:
        for entry in entries(fd):
            remove_entry(fd, entry)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


MOVIEPY_SCRATCH: Final = "TEMP_MPY_"
"""What moviepy puts between the output's name (without its extension) and the rest of the
name of its temporary soundtrack, ``<name>TEMP_MPY_wvf_snd.mp4``."""


def remove_moviepy_scratch(name: str) -> None:
    """Remove moviepy's soundtrack of a write to a file called ``name`` from the working directory.

    ``write_videofile()`` writes it to ``<name without extension>TEMP_MPY_wvf_snd.<ext>`` in
    the process's working directory unless ``temp_audiofile_path`` says otherwise, and
    leaves it there when the write fails or is cancelled: an app's own render function,
    told to write a temporary file, rarely says otherwise. ``name`` is a temporary file's,
    which bears its writer's token, so no other writer's soundtrack matches.
    """
    prefix = f"{Path(name).stem}{MOVIEPY_SCRATCH}"
    with contextlib.suppress(OSError), os.scandir(".") as found:
        for entry in found:
            if entry.name.startswith(prefix) and not entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    Path(entry.name).unlink()


def entries(fd: int) -> list[str]:
    """The names in the directory open as ``fd``."""
    return os.listdir(fd)


def _check_private(fd: int, where: Path) -> None:
    # A directory someone else made, or one they renamed over ours before it was opened:
    # its contents would be theirs to change.
    mine = os.fstat(fd)
    if mine.st_uid != os.geteuid() or mine.st_mode & 0o077:
        raise UnsafePathError(
            path=str(where),
            reason="the render's private directory was replaced by someone else's",
            hint=_HINT,
        )


def seal(
    path: str | os.PathLike[str], *, project_key: object, dir_fd: int | None = None
) -> os.stat_result:
    """Check that ``path`` is a non-empty regular file, make it 0644 and fsync it.

    All through one descriptor, opened without following a link (relative to ``dir_fd``
    when given), so nothing else is chmodded or synced if the name is swapped meanwhile.

    Returns:
        The sealed file's identity, to compare with the name's before it is renamed.

    Raises:
        RenderOutputError: it is missing, a symbolic link, not a regular file, or empty;
            ``project_key`` only words the message.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise RenderOutputError(project_key=project_key, reason="the file is missing") from None
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else "it is not a regular file"
        raise RenderOutputError(project_key=project_key, reason=reason) from exc
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise RenderOutputError(project_key=project_key, reason="it is not a regular file")
        if found.st_size == 0:
            raise RenderOutputError(project_key=project_key, reason="the file is empty")
        os.fchmod(fd, _PUBLISHED_MODE)
        os.fsync(fd)
        return os.fstat(fd)
    finally:
        os.close(fd)


class Workspace:
    """A render's private directory beside the final file, and the temporary file inside it.

    Created by :meth:`create`; :attr:`target` is the path to hand the renderer;
    :meth:`seal` checks and flushes the finished file, :meth:`replace` renames it over
    the final file, :meth:`remove` removes the directory with what is left in it.
    """

    def __init__(
        self, folder_fd: int, name: str, directory: Path, media_root: Path | None = None
    ) -> None:
        self.name = name
        """The workspace's name in the final file's directory, and its temporary file's."""
        self.directory = directory
        """The final file's directory (for messages and the fallback path)."""
        self._media_root = media_root
        self._folder = os.dup(folder_fd)
        self._private = -1
        self._sealed: os.stat_result | None = None
        try:
            os.mkdir(name, _PRIVATE_MODE, dir_fd=self._folder)
            try:
                self._private = os.open(name, _DIRECTORY, dir_fd=self._folder)
            except OSError as exc:
                refused = refusal(self._folder, name)
                if refused is None:
                    raise
                raise UnsafePathError(
                    path=str(directory / name),
                    reason=f"the render's private directory was replaced by {refused} "
                    f"before it was opened",
                    hint=_HINT,
                ) from exc
            _check_private(self._private, directory / name)
            os.close(
                os.open(
                    name,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=self._private,
                )
            )
        except BaseException:
            self.close()
            raise

    @property
    def target(self) -> Path:
        """The temporary file's path, through the workspace's descriptor where possible."""
        if _PROC_FD.is_dir():
            # /proc/<pid>, not /proc/self: an ffmpeg child resolves it to this process's
            # descriptor too.
            return Path(f"/proc/{os.getpid()}/fd/{self._private}") / self.name
        return self.directory / self.name / self.name  # pragma: no cover - no /proc

    def seal(self, project_key: object) -> None:
        """Check that the finished file is a non-empty regular file; make it 0644; fsync it.

        All by one descriptor, opened without following a link (:func:`seal`).

        Raises:
            RenderOutputError: it is missing, a symbolic link, not a regular file, or empty.
        """
        self._sealed = seal(self.name, project_key=project_key, dir_fd=self._private)

    def replace(self, final_name: str) -> None:
        """Rename the sealed file over ``final_name`` in the final file's directory.

        Raises:
            UnsafePathError: the name no longer leads to the file that was sealed.
        """
        assert self._sealed is not None, "seal() first"
        now = os.stat(self.name, dir_fd=self._private, follow_symlinks=False)
        if not stat.S_ISREG(now.st_mode) or not same(now, self._sealed):
            raise UnsafePathError(
                path=str(self.directory / self.name / self.name),
                reason="the finished file was replaced after it was checked",
                hint="Nothing was published; render again",
            )
        try:
            here = os.stat(self.name, dir_fd=self._folder, follow_symlinks=False)
        except FileNotFoundError:
            here = None
        if here is None or not same(here, os.fstat(self._private)):
            # The workspace itself is safe (its descriptor is what was written through), but
            # someone who can write the folder is at work: publish nothing.
            raise UnsafePathError(
                path=str(self.directory / self.name),
                reason="the render's private directory was moved away and its name replaced "
                "while the video was rendered",
                hint=_HINT,
            )
        if self._media_root is not None:
            # The directory, found again from the media root as it is now, must still be the
            # one the render started in: not moved away and replaced meanwhile.
            with folder(self.directory, media_root=self._media_root, create=False) as fd:
                if not same(os.fstat(fd), os.fstat(self._folder)):
                    raise UnsafePathError(
                        path=str(self.directory),
                        reason="the directory was moved and replaced while the video was rendered",
                        hint=_HINT,
                    )
        os.replace(self.name, final_name, src_dir_fd=self._private, dst_dir_fd=self._folder)
        # Empty now: gone before the commit that follows, so that a process killed after
        # the commit leaves nothing behind (a recovery of a COMPLETED project removes no
        # temporary files).
        self._remove_directory()

    def sync_folder(self) -> None:
        """Fsync the final file's directory: make the rename durable."""
        os.fsync(self._folder)

    def clear_scratch(self) -> None:
        """Remove everything in the workspace but the temporary file, and moviepy's soundtrack."""
        remove_moviepy_scratch(self.name)
        with contextlib.suppress(OSError):
            for entry in entries(self._private):
                if entry != self.name:
                    with contextlib.suppress(OSError):
                        remove_entry(self._private, entry)

    def remove(self, *, keep_open: bool = False) -> None:
        """Remove the workspace with whatever is left in it; close its descriptors.

        With ``keep_open``, the final file's directory stays open (for :meth:`sync_folder`)
        until :meth:`close`.
        """
        if self._private >= 0:
            remove_moviepy_scratch(self.name)  # in the working directory, if moviepy put it there
            with contextlib.suppress(OSError):
                for entry in entries(self._private):
                    with contextlib.suppress(OSError):
                        remove_entry(self._private, entry)
            self._remove_directory()
            os.close(self._private)
            self._private = -1
        if not keep_open:
            self.close()

    def _remove_directory(self) -> None:
        with contextlib.suppress(OSError):
            here = os.stat(self.name, dir_fd=self._folder, follow_symlinks=False)
            # Only our own directory: a look-alike renamed in its place stays.
            if same(here, os.fstat(self._private)):
                os.rmdir(self.name, dir_fd=self._folder)

    def close(self) -> None:
        """Close the descriptors (the workspace stays on disk)."""
        for fd in (self._private, self._folder):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._private = self._folder = -1
