"""An attacker with another uid and only group write on the media folder, racing renders.

The setup many web deployments have: the media folder belongs to a group (setgid ``2775``,
not sticky), an attacker is in that group and has no other rights, and the render user's
own private files sit outside the media root. :func:`shared_media` builds that layout;
:class:`Attacker` forks a child that drops to another uid (``os.setgroups``,
``os.setgid``, ``os.setuid``: the tests run as root, as CI does), watches a directory with
inotify (through ctypes: no dependency) and acts on each new name the moment it appears,
the way a real attacker would. Nothing in the library is patched: the renders are real,
and the child only does what that uid may do.

Each move is a function of the name an event named, so a test for another finding adds a
move here and races it the same way. Each move writes one line per action to the child's
report, which the test reads back (``Attacker.actions``) to show the race was really run.

The moves: :func:`swap_temporary` (finding 2), :func:`plant_scratch` and
:func:`swap_scratch_directory` (finding 1, through the runner and with the renderer called
directly), :func:`link_project` (finding 3), :func:`swap_input` (finding 4: a link to a
file only the render user may read, renamed over a timeline's input on its first open or
close, watched with ``mask=IN_OPEN`` or ``IN_CLOSE_NOWRITE``).

Not root: the child cannot take another uid, and a user namespace maps only one; the
tests say so and skip (CI runs them as root, where a skip would fail the run).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import hashlib
import os
import re
import select
import shutil
import signal
import stat
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

ATTACKER_UID: Final = 65534  # nobody
MEDIA_GID: Final = 65534  # nogroup: the media folder's group, the attacker's only one
SECRET: Final = b"the render user's private bytes, never to be overwritten\n"

IN_CLOSE_NOWRITE: Final = 0x10
IN_OPEN: Final = 0x20
IN_MOVED_TO: Final = 0x80
IN_CREATE: Final = 0x100
_EVENT: Final = struct.Struct("iIII")
TEMPORARY: Final = re.compile(r"\.final-[0-9a-f]{16}\.partial\.mp4")
# A render's own scratch directory, beside a target outside a private directory.
SCRATCH_DIRECTORY: Final = re.compile(r"\.renderstate-[0-9a-f]{16}\.work-[0-9a-f]{16}")
# What the renderer names its scratch files after the temporary file (renderstate.files).
SCRATCH_LABELS: Final = ("pieces.txt", "audio.m4a", "piece000000.mp4", "soundtrack.wav")


def why_not() -> str | None:
    """Why the attacker cannot run here, or ``None``."""
    if not hasattr(os, "fork") or not Path("/proc/self/fd").is_dir():
        return "the attacker harness needs Linux (fork, inotify, /proc)"
    if os.geteuid() != 0:
        return (
            "the attacker must run under another uid than the render user's, which only "
            "root can switch to (a user namespace maps a single uid); run as root, as CI does"
        )
    return None


@dataclasses.dataclass(frozen=True)
class SharedMedia:
    """A group-writable media folder and the render user's private files outside it."""

    base: Path
    media: Path
    """The media root: ``2775``, group :data:`MEDIA_GID`."""
    private: Path
    """The render user's own directory outside the media root (``0700``)."""
    secret: Path
    """A ``0600`` file in :attr:`private` that nothing may write, chmod or publish."""

    def projects(self) -> Path:
        """``media/projects``, made group-writable like the media root."""
        path = self.media / "projects"
        if not path.exists():
            _group_dir(path)
        return path

    def shared_folder(self, name: str) -> Path:
        """``media/<name>``, group-writable like the media root (an uploads folder, say)."""
        path = self.media / name
        _group_dir(path)
        return path

    def vault(self) -> Path:
        """Another of the render user's own directories outside the media root (``0700``)."""
        path = self.base / "vault"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def untouched(self) -> bool:
        """Whether the private directory holds exactly the secret, unchanged and ``0600``."""
        names = sorted(p.name for p in self.private.iterdir())
        mode = stat.S_IMODE(self.secret.lstat().st_mode)
        return names == [self.secret.name] and self.secret.read_bytes() == SECRET and mode == 0o600


def _group_dir(path: Path) -> None:
    path.mkdir()
    os.chown(path, 0, MEDIA_GID)
    path.chmod(0o2775)


@contextlib.contextmanager
def shared_media() -> Iterator[SharedMedia]:
    """Build the layout in a fresh directory below /tmp that the attacker can traverse."""
    # pytest's tmp_path is 0700 (root's alone): the attacker could not reach the media.
    base = Path(tempfile.mkdtemp(prefix="renderstate-shared-", dir="/tmp"))
    try:
        base.chmod(0o711)
        media = base / "media"
        _group_dir(media)
        private = base / "private"
        private.mkdir(mode=0o700)
        secret = private / "secret.mp4"
        secret.write_bytes(SECRET)
        secret.chmod(0o600)
        yield SharedMedia(base, media, private, secret)
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ moves

Move = Callable[[Path, str, SharedMedia], list[str]]


def swap_temporary(directory: Path, name: str, shared: SharedMedia) -> list[str]:
    """Finding 2: rename a link to the secret over the temporary file as soon as it exists.

    A temporary *directory* (a private workspace) cannot be replaced by a file: rename it
    away and put a link to the private directory in its place instead, so that a write
    by name into ``<name>/<name>`` would land outside.
    """
    if TEMPORARY.fullmatch(name) is None:
        return []
    path = directory / name
    if path.is_dir() and not path.is_symlink():
        path.rename(directory / f"{name}.moved")
        path.symlink_to(shared.private)
        return [f"moved the directory {name} and linked its name to {shared.private}"]
    link = directory / f"{name}.link"
    link.symlink_to(shared.secret)
    link.rename(path)
    return [f"renamed a link to {shared.secret} over {name}"]


def plant_scratch(directory: Path, name: str, shared: SharedMedia) -> list[str]:
    """Finding 1's names: links at the scratch names derived from the temporary file's."""
    if TEMPORARY.fullmatch(name) is None:
        return []
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    done = []
    for label in SCRATCH_LABELS:
        scratch = directory / f".renderstate-{digest}.{label}"
        with contextlib.suppress(FileExistsError):
            scratch.symlink_to(shared.secret)
            done.append(f"linked {scratch.name} to {shared.secret}")
    return done


def swap_scratch_directory(directory: Path, name: str, shared: SharedMedia) -> list[str]:
    """Finding 1, one step further: the render's scratch directory, the moment it appears, is
    moved away and its name linked to the private directory, so that a write by name into
    it would land outside."""
    if SCRATCH_DIRECTORY.fullmatch(name) is None:
        return []
    path = directory / name
    path.rename(directory / f"{name}.moved")
    path.symlink_to(shared.private)
    return [f"moved the scratch directory {name} and linked its name to {shared.private}"]


def swap_input(name: str, replacement: Path) -> Move:
    """Finding 4: on the first event naming ``name``, rename a link to ``replacement`` over it.

    Watched with ``mask=IN_OPEN`` (or ``IN_CLOSE_NOWRITE``), that is right after the first
    reader opened (or closed) the input: what a check read, later readers of the same name
    would not.
    """
    swapped = False

    def move(directory: Path, event: str, shared: SharedMedia) -> list[str]:
        nonlocal swapped
        if event != name or swapped:
            return []
        swapped = True
        link = directory / f".{name}.link"
        link.symlink_to(replacement)
        link.rename(directory / name)
        return [f"renamed a link to {replacement} over {name}"]

    return move


def link_project(project: str) -> Move:
    """Finding 3: once ``projects/<project>`` exists, move it and link its name outside."""

    def move(directory: Path, name: str, shared: SharedMedia) -> list[str]:
        if name != project:
            return []
        path = directory / name
        if path.is_symlink():
            return []
        path.rename(directory / f"{name}.moved")
        path.symlink_to(shared.private)
        return [f"moved projects/{name} and linked its name to {shared.private}"]

    return move


def both(*moves: Move) -> Move:
    """Every move in turn on each name (one that fails is skipped)."""

    def move(directory: Path, name: str, shared: SharedMedia) -> list[str]:
        done: list[str] = []
        for one in moves:
            with contextlib.suppress(OSError):
                done += one(directory, name, shared)
        return done

    return move


# ------------------------------------------------------------------ the child


class Attacker:
    """A forked child under :data:`ATTACKER_UID` that applies ``move`` to each name seen.

    Use as a context manager: on entry the child has dropped its privileges, run
    ``prelude`` (a first move, once) and put its inotify watch (``mask``: new names by
    default) on ``directory``; on exit it is killed (by its pid) and :attr:`actions` holds
    what it did.
    """

    def __init__(
        self,
        shared: SharedMedia,
        directory: Path,
        move: Move,
        *,
        prelude: Callable[[SharedMedia], list[str]] | None = None,
        mask: int = IN_CREATE | IN_MOVED_TO,
    ) -> None:
        self.shared = shared
        self.directory = directory
        self.move = move
        self.prelude = prelude
        self.mask = mask
        self.actions: list[str] = []
        self._pid = 0
        self._report = -1
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def __enter__(self) -> Attacker:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, measured by what it does
            os.close(read)
            code = 0
            try:
                self._run(write)
            except BaseException:  # a child must never return into pytest
                code = 1
            os._exit(code)
        os.close(write)
        self._pid, self._report = pid, read
        while (line := self._read_line(timeout=10)) != "ready":
            assert line, "the attacker did not start"
            assert line != "still privileged", "the attacker kept root's rights"
            self.actions.append(line)
        return self

    def __exit__(self, *exc: object) -> None:
        os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)
        with os.fdopen(self._report, "rb") as report:
            rest = report.read().decode()
        self.actions += [line for line in rest.splitlines() if line and line != "ready"]

    def _read_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._report], [], [], left)[0]:
                break
            chunk = os.read(self._report, 1)
            if not chunk:
                break
            data += chunk
        return data.decode().strip()

    def _run(self, report: int) -> None:  # pragma: no cover - runs in the child
        os.setgroups([MEDIA_GID])
        os.setgid(MEDIA_GID)
        os.setuid(ATTACKER_UID)
        # Show the drop took: the render user's private file is out of reach.
        try:
            self.shared.secret.read_bytes()
        except PermissionError:
            pass
        else:
            os.write(report, b"still privileged\n")
            return
        for line in self.prelude(self.shared) if self.prelude is not None else []:
            os.write(report, f"{line}\n".encode())
        notify = self._libc.inotify_init1(0)
        mask = self.mask
        if (
            notify < 0
            or self._libc.inotify_add_watch(notify, os.fsencode(self.directory), mask) < 0
        ):
            os.write(report, f"inotify failed: errno {ctypes.get_errno()}\n".encode())
            return
        os.write(report, b"ready\n")
        while True:
            buffer = os.read(notify, 65536)
            at = 0
            while at < len(buffer):
                _, _, _, size = _EVENT.unpack_from(buffer, at)
                raw = buffer[at + _EVENT.size : at + _EVENT.size + size]
                at += _EVENT.size + size
                name = os.fsdecode(raw.rstrip(b"\0"))
                try:
                    done = self.move(self.directory, name, self.shared)
                except OSError as exc:
                    done = [f"failed on {name}: {exc}"]
                for line in done:
                    os.write(report, f"{line}\n".encode())
