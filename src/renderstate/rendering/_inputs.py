"""The files a render reads, each opened once: what is checked is what is decoded.

A timeline names its soundtrack, pictures and fonts by path. Checking a path and then
letting Pillow, FreeType or ffmpeg open it again by name leaves a gap: someone who can
write the folder renames a link over the name in between, and another file's content
(one only the render user may read) ends up in the video. So before anything is checked,
:class:`Inputs` opens each file once:

- a file of a timeline confined to its ``base_dir`` (a timeline from project data) is
  opened below that directory with ``O_NOFOLLOW`` on every component
  (:func:`renderstate._confined.folder`), along the path as it resolved inside
  ``base_dir`` (a link that stays inside is followed when resolving, never when opening);
- a file of a trusted timeline (a timeline file, ``allow_outside_base_dir``, the
  renderer's own ``font=``) is opened by its name, once.

Each open file must be a regular file. Its readers are then handed a path to that open
file, never its name: a link ``<scratch>/input-<n>/<its name>`` to
``/proc/<pid>/fd/<descriptor>``, in the render's private scratch directory, where nobody
else can change it (the name and suffix are the file's own, for messages and for ffmpeg's
format probing). Without ``/proc`` (or with ``copy=True``) the bytes are copied from the
open file into that directory instead, and only the copy is read.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import stat
from pathlib import Path
from typing import Final

from renderstate._confined import folder
from renderstate.exceptions import UnsafePathError
from renderstate.rendering._scratch import Scratch
from renderstate.rendering.timeline import Timeline, TimelineError

__all__ = ["Inputs"]

_READ: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_PROC_FD: Final = Path("/proc/self/fd")


class Inputs:
    """The render's input files, open until :meth:`close`.

    Args:
        scratch: The render's scratch directory, where the paths to the open files go.
        copy: Copy each file's bytes there instead of linking to its descriptor
            (the way without ``/proc``).
    """

    def __init__(self, scratch: Scratch, *, copy: bool | None = None) -> None:
        self._scratch = scratch
        self._copy = not _PROC_FD.is_dir() if copy is None else copy
        self._fds: list[int] = []
        self._opened: dict[tuple[Path, bool], Path] = {}

    def timeline(self, timeline: Timeline) -> Timeline:
        """Open every file ``timeline`` names; return it naming the open files instead.

        Raises:
            TimelineError: a file is missing, not a regular file, or (below a
                ``base_dir``) leads out of it or was replaced by a link meanwhile.
        """
        base = timeline.base_dir
        scenes = tuple(
            dataclasses.replace(
                scene,
                image=self.open(scene.image, base=base, field="image", scene=index),
                font=self.open(scene.font, base=base, field="font", scene=index),
            )
            for index, scene in enumerate(timeline.scenes)
        )
        soundtrack = timeline.soundtrack
        if soundtrack is not None and soundtrack.file is not None:
            soundtrack = dataclasses.replace(
                soundtrack,
                file=self.open(soundtrack.file, base=base, field="soundtrack.file", scene=None),
            )
        return dataclasses.replace(timeline, scenes=scenes, soundtrack=soundtrack)

    def open(
        self, path: Path | None, *, base: Path | None, field: str, scene: int | None
    ) -> Path | None:
        """Open ``path`` (below ``base`` if given) once; return the path its readers use."""
        if path is None:
            return None
        key = (path, base is not None)
        readable = self._opened.get(key)
        if readable is None:
            fd = _open_below(path, base, field, scene) if base else _open(path, field, scene)
            self._fds.append(fd)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise TimelineError(
                    scene=scene,
                    field=field,
                    problem=f"{path.name!r} is not a regular file; name a picture, font or "
                    f"audio file",
                )
            readable = self._expose(fd, path.name)
            self._opened[key] = readable
        return readable

    def _expose(self, fd: int, name: str) -> Path:
        holder, where = self._scratch.folder(f"input-{len(self._opened)}")
        try:
            if self._copy:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                copy = os.open(name, flags, 0o600, dir_fd=holder)
                with os.fdopen(copy, "wb") as out, open(os.dup(fd), "rb") as source:  # noqa: PTH123
                    source.seek(0)
                    shutil.copyfileobj(source, out)
            else:
                # /proc/<pid>, not /proc/self: an ffmpeg child resolves it to this descriptor.
                os.symlink(f"/proc/{os.getpid()}/fd/{fd}", name, dir_fd=holder)
        finally:
            os.close(holder)
        return where / name

    def close(self) -> None:
        """Close the files (their links or copies go with the scratch directory)."""
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


def _missing(path: Path, field: str, scene: int | None) -> TimelineError:
    return TimelineError(
        scene=scene,
        field=field,
        problem=f"{str(path)!r} no longer exists; it was there when the timeline was checked",
    )


def _open(path: Path, field: str, scene: int | None) -> int:
    # A trusted file: its name may be a link, followed once, here.
    try:
        return os.open(path, _READ & ~os.O_NOFOLLOW)
    except FileNotFoundError:
        raise _missing(path, field, scene) from None
    except OSError as exc:
        raise TimelineError(
            scene=scene,
            field=field,
            problem=f"{str(path)!r} cannot be opened ({exc.strerror})",
        ) from exc


def _open_below(path: Path, base: Path, field: str, scene: int | None) -> int:
    try:
        root = base.resolve(strict=True)
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise _missing(path, field, scene) from None
    except (OSError, RuntimeError) as exc:  # a link loop
        raise _changed(path, base, field, scene, f"it cannot be resolved ({exc})") from exc
    if not real.is_relative_to(root) or real == root:
        raise _changed(path, base, field, scene, "it leads out of base_dir through a link now")
    try:
        with folder(real.parent, media_root=root, create=False) as directory:
            return os.open(real.name, _READ, dir_fd=directory)
    except UnsafePathError as exc:
        raise _changed(path, base, field, scene, exc.reason.split(",")[0]) from exc
    except FileNotFoundError:
        raise _missing(path, field, scene) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _changed(path, base, field, scene, "it is a symbolic link") from exc
        raise TimelineError(
            scene=scene,
            field=field,
            problem=f"{str(path)!r} cannot be opened ({exc.strerror})",
        ) from exc


def _changed(path: Path, base: Path, field: str, scene: int | None, what: str) -> TimelineError:
    try:
        shown = str(path.relative_to(base))
    except ValueError:
        shown = str(path)
    return TimelineError(
        scene=scene,
        field=field,
        problem=(
            f"{shown!r} changed after the timeline was checked ({what}) and was not read: "
            f"someone who can write base_dir ({str(base)!r}) replaced it or a directory on "
            f"its way; keep base_dir writable only by the users' uploads (see the Security page)"
        ),
    )
