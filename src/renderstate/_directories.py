"""Directory outputs (HLS, DASH, image sequences), published whole or not at all.

A render whose output is a directory writes it into a *staging* directory made for it:
``<output name>`` inside a private directory (mode ``0700``, the render user's) beside the
output, named ``.<output name>-<16 hex digits>.staging`` after the render's owner. Nobody
else can add, rename or replace anything in it, and it is on the output's file system.

Publishing swaps the two directories in one step: ``renameat2(RENAME_EXCHANGE)`` between
the staging directory's entry and the output's, relative to the two directories'
descriptors. A reader of the output path sees the previous directory or the new one,
whole, never a mix; and the previous one lands in the private directory, where it stays,
untouched, until the save of the render's end is known: removed when it committed, swapped
back when it did not. Where the kernel or the file system cannot exchange (``EINVAL``,
``ENOSYS``), two renames do it instead (the output path is then missing for a moment,
never half-written). A symbolic-link flip (the output a link to a versioned directory)
would do without ``renameat2`` but would put a link at the output path, which the library
refuses on every path it writes below the media root: the swap keeps the output a plain
directory.

The swap is journaled: before it, a journal file in the private directory records the
tag of the attempt (its id, or 16 hex digits without a ledger) and the identity (device,
inode) of the new directory, both fsynced with every file and directory of the output.
After a crash at any system call, whoever settles the private directory can tell where
each version is (the output path holds the new directory or not) and, told whether the
tag's attempt committed, leaves the new one (and removes the old) or puts the old one back
(and removes the new): :func:`settle`.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import platform
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple

from renderstate._confined import entries, folder, refusal, remove_entry, same
from renderstate.exceptions import UnsafePathError

_DIRECTORY: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
_PROC_FD: Final = Path("/proc/self/fd")
_PRIVATE_MODE: Final = 0o700
_FILE_MODE: Final = 0o644
_FOLDER_MODE: Final = 0o755
_STAGING: Final = ".staging"
# A private directory renamed so once nothing in it matters any more: anyone removes it.
_DONE: Final = ".done"
_JOURNAL: Final = ".journal"
PREVIOUS: Final = ".previous"
_RETURNED: Final = ".returned"
_NAME_MAX: Final = 255
_TOKEN: Final = re.compile(r"[0-9a-f]{16}")
_TAG: Final = re.compile(r"[0-9a-z]{1,20}")
_HINT: Final = (
    "Someone who can write the media folder replaced a directory with a link; remove it "
    "and keep the media folder writable only by the render user, or sticky (see the "
    "Security page)"
)

# ------------------------------------------------------------------ renameat2


_RENAME_EXCHANGE: Final = 2
# The system call's number where libc has no renameat2() wrapper (glibc before 2.28).
_SYSCALLS: Final = {"x86_64": 316, "aarch64": 276, "i686": 353, "i386": 353}
_UNSUPPORTED: Final = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP})


def _load_renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None  # pragma: no cover - other systems swap with two renames
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to load
        return None
    function = getattr(libc, "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        function.argtypes.append(ctypes.c_uint)
        function.restype = ctypes.c_int
        return function  # type: ignore[no-any-return]
    number = _SYSCALLS.get(platform.machine())  # pragma: no cover - an old glibc
    if number is None:  # pragma: no cover
        return None
    syscall = libc.syscall  # pragma: no cover
    syscall.restype = ctypes.c_long  # pragma: no cover

    def call(olddir: int, old: bytes, newdir: int, new: bytes, flags: int) -> int:
        return int(  # pragma: no cover
            syscall(
                ctypes.c_long(number),
                ctypes.c_int(olddir),
                ctypes.c_char_p(old),
                ctypes.c_int(newdir),
                ctypes.c_char_p(new),
                ctypes.c_uint(flags),
            )
        )

    return call  # pragma: no cover


_renameat2 = _load_renameat2()


def exchange(source_fd: int, source: str, target_fd: int, target: str) -> bool:
    """Swap two entries atomically (``renameat2(RENAME_EXCHANGE)``), relative to descriptors.

    Returns:
        ``False`` if the system or the file system cannot exchange (nothing was changed).

    Raises:
        OSError: the exchange failed otherwise (``FileNotFoundError``: either entry is
            missing); nothing was changed.
    """
    if _renameat2 is None:  # pragma: no cover - not Linux
        return False
    result = _renameat2(source_fd, os.fsencode(source), target_fd, os.fsencode(target), 2)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), target)


# ------------------------------------------------------------------ names


def staging_name(output: Path, token: str) -> str:
    """The private directory's name beside ``output`` for the owner ``token`` (16 hex digits)."""
    if _TOKEN.fullmatch(token) is None:
        msg = f"a staging directory's token is 16 lower-case hex digits; got {token!r}"
        raise ValueError(msg)
    return f".{_stem(output)}-{token}{_STAGING}"


def _stem(output: Path) -> str:
    around = len(os.fsencode(f".-{'0' * 16}{_STAGING}"))
    name = output.name
    if len(os.fsencode(name)) + around <= _NAME_MAX:
        return name
    mark = "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    while len(os.fsencode(name)) + around + len(mark) > _NAME_MAX:
        name = name[:-1]
    return name + mark


def staging_names(names: list[str], output: Path, token: str | None = None) -> list[str]:
    """The names among ``names`` of ``output``'s private staging directories (one owner's)."""
    prefix, digits = f".{_stem(output)}-", token
    found = []
    for name in names:
        for suffix in (_STAGING, _DONE):
            if name.startswith(prefix) and name.endswith(suffix):
                middle = name[len(prefix) : len(name) - len(suffix)]
                if _TOKEN.fullmatch(middle) is not None and digits in (None, middle):
                    found.append(name)
    return sorted(found)


def staging_output(name: str) -> str | None:
    """The output name a staging directory's ``name`` was made for (cut names: ``None``)."""
    found = re.fullmatch(r"\.(?P<output>.+)-[0-9a-f]{16}\.(staging|done)", name)
    if found is None or "~" in found["output"]:
        return None
    return found["output"]


# ------------------------------------------------------------------ the journal


class Journal(NamedTuple):
    """What the private directory records before the swap."""

    tag: str
    """The attempt's id, or 16 hex digits without a ledger."""
    device: int
    """The new directory's device."""
    inode: int
    """The new directory's inode."""

    def names(self, found: os.stat_result) -> bool:
        """Whether ``found`` is the new directory."""
        return (found.st_dev, found.st_ino) == (self.device, self.inode)


def read_journal(private: int) -> Journal | None:
    """The journal in the private directory open as ``private``, if the swap was prepared."""
    try:
        fd = os.open(_JOURNAL, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=private)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as reader:
        text = reader.read(200).decode("ascii", "replace").split()
    if len(text) != 3 or _TAG.fullmatch(text[0]) is None or not all(t.isdigit() for t in text[1:]):
        return None  # torn before its fsync: the swap never followed
    return Journal(text[0], int(text[1]), int(text[2]))


def write_journal(private: int, journal: Journal) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(_JOURNAL, flags, 0o600, dir_fd=private)
    try:
        os.write(fd, f"{journal.tag} {journal.device} {journal.inode}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.fsync(private)


def lstat_at(parent: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None


def put_back(folder_fd: int, private: int, output: str, journal: Journal) -> None:
    """Put the previous directory back at ``output`` (idempotent at every step)."""
    here = lstat_at(folder_fd, output)
    previous = [
        name
        for name in entries(private)
        if name != _JOURNAL
        and (found := lstat_at(private, name)) is not None
        and not journal.names(found)
    ]
    # The exchange leaves it under the output's name, the two renames under .previous.
    previous.sort(key=lambda name: name != PREVIOUS)
    if here is not None and journal.names(here):
        if previous:
            if not exchange(private, previous[0], folder_fd, output):
                os.rename(output, _RETURNED, src_dir_fd=folder_fd, dst_dir_fd=private)
                os.rename(previous[0], output, src_dir_fd=private, dst_dir_fd=folder_fd)
        else:  # a first version: there was nothing at the output path
            os.rename(output, _RETURNED, src_dir_fd=folder_fd, dst_dir_fd=private)
    elif here is None and previous:  # between the two renames of a swap without exchange
        os.rename(previous[0], output, src_dir_fd=private, dst_dir_fd=folder_fd)
    else:
        return
    os.fsync(folder_fd)
    os.fsync(private)


def settle(
    folder_fd: int,
    name: str,
    output: str,
    committed: Callable[[str | None], bool | None],
    *,
    where: Path,
) -> bool | None:
    """Settle the private directory ``name`` of ``output`` in the directory open as ``folder_fd``.

    ``committed(tag)`` (``None`` for a directory whose swap was never prepared) says
    whether the tag's attempt committed: ``True`` keeps the output as it is, ``False``
    puts the previous directory back; either way the private directory goes with what is
    left in it. ``None`` leaves it alone (a live writer's). A private directory that is not
    the render user's own, mode ``0700``, is left alone too: it is not the library's.

    Returns:
        What ``committed`` said, or ``None`` when nothing was done.

    Raises:
        UnsafePathError: ``name`` is a symbolic link.
    """
    try:
        private = os.open(name, _DIRECTORY, dir_fd=folder_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        refused = refusal(folder_fd, name)
        if refused is None:
            raise
        raise UnsafePathError(
            path=str(where / name), reason=f"it is {refused}, not a staging directory", hint=_HINT
        ) from exc
    try:
        if not is_private(os.fstat(private)):
            return None
        if name.endswith(_DONE):  # settled already: what is left is nobody's
            remove_private(folder_fd, name, private)
            return True
        journal = read_journal(private)
        verdict = committed(None if journal is None else journal.tag)
        if verdict is None:
            return None
        if verdict is False and journal is not None:
            put_back(folder_fd, private, output, journal)
        remove_private(folder_fd, name, private)
        return verdict
    finally:
        os.close(private)


def remove_private(folder_fd: int, name: str, private: int) -> None:
    """Remove the private directory ``name`` (open as ``private``) with what is in it.

    It is renamed ``....done`` first: a process killed while it empties it leaves a
    directory that says it is settled (its journal may be gone already), which whoever
    comes next removes.
    """
    here = lstat_at(folder_fd, name)
    if here is None or not same(here, os.fstat(private)):
        return  # only our own directory: a look-alike renamed in its place stays
    if name.endswith(_STAGING):
        done = name[: -len(_STAGING)] + _DONE
        os.rename(name, done, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        name = done
    for entry in entries(private):
        remove_entry(private, entry)
    os.rmdir(name, dir_fd=folder_fd)
    os.fsync(folder_fd)


def settle_output(
    output: Path,
    committed: Callable[[str | None], bool | None],
    *,
    token: str | None = None,
    media_root: Path | None = None,
) -> list[str]:
    """Settle every private staging directory of ``output`` (one owner's, with ``token``).

    Returns:
        The names of the private directories removed.
    """
    settled = []
    try:
        with folder(output.parent, media_root=media_root, create=False) as fd:
            settled = [
                name
                for name in staging_names(entries(fd), output, token)
                if settle(fd, name, output.name, committed, where=output.parent) is not None
            ]
    except FileNotFoundError:
        return []
    return settled


def is_private(found: os.stat_result) -> bool:
    """Whether ``found`` is the render user's own, closed to everyone else."""
    return found.st_uid == os.geteuid() and not found.st_mode & 0o077
