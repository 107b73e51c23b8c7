"""Fit a render function that picks its own output path, ``render(project, on_progress)``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, overload

from renderstate.typing import ProgressSink, ProjectT

__all__ = ["OnProgress", "OwnPathRenderer", "own_path"]


class OnProgress:
    """The ``on_progress`` callback handed to a render function wrapped by :func:`own_path`.

    Call it as ``on_progress(done, total)`` (units of the wrapper's default phase) or as
    ``on_progress(phase, done, total)`` to name a phase of your own (``"tts"``,
    ``"compose"``); see :class:`~renderstate.typing.ProgressSink`. A cancelled render stops
    here: the call raises :class:`~renderstate.RenderCancelledError`; let it propagate.
    """

    __slots__ = ("_phase", "_sink")

    def __init__(self, sink: ProgressSink, phase: str) -> None:
        self._sink = sink
        self._phase = phase

    @overload
    def __call__(self, done: int, total: int, /) -> None: ...

    @overload
    def __call__(self, phase: str, done: int, total: int, /) -> None: ...

    def __call__(self, *args: object) -> None:
        """Report ``done`` of ``total`` units, of the default phase or of the one named."""
        if len(args) == 2:
            done, total = args
            phase: object = self._phase
        elif len(args) == 3:
            phase, done, total = args
        else:
            msg = f"on_progress takes (done, total) or (phase, done, total), got {len(args)} values"
            raise TypeError(msg)
        if not isinstance(phase, str) or not isinstance(done, int) or not isinstance(total, int):
            msg = (
                f"on_progress takes (done: int, total: int) or (phase: str, done: int, "
                f"total: int), got {args!r}"
            )
            raise TypeError(msg)
        self._sink(phase, done, total)


class OwnPathRenderer(Generic[ProjectT]):
    """A :class:`~renderstate.typing.Renderer` around ``render(project, on_progress) -> path``.

    Made by :func:`own_path`. The runner's temporary ``target`` is not passed on: the
    function writes wherever it likes and returns the path; the runner then checks that
    file, fsyncs it and publishes it with the atomic replace (and the ledger's fence), as
    it does a file written to ``target``.
    """

    def __init__(
        self,
        render: Callable[[ProjectT, OnProgress], str | os.PathLike[str]],
        *,
        phase: str = "rendering",
    ) -> None:
        self.render = render
        """The wrapped function."""
        self.phase = phase
        """The phase ``on_progress(done, total)`` reports."""

    def __repr__(self) -> str:
        return f"own_path({self.render!r})"

    def __call__(
        self, project: ProjectT, target: Path, progress: ProgressSink
    ) -> str | os.PathLike[str]:
        """Run the function and return the path it wrote."""
        written: object = self.render(project, OnProgress(progress, self.phase))
        if written is None:
            msg = (
                f"{self.render!r} returned None; a render function wrapped by own_path() "
                "must return the path of the file it wrote"
            )
            raise TypeError(msg)
        return written  # type: ignore[return-value]  # the runner checks what it gets


def own_path(
    render: Callable[[ProjectT, OnProgress], str | os.PathLike[str]], *, phase: str = "rendering"
) -> OwnPathRenderer[ProjectT]:
    """Make a renderer of a function that writes the video where it likes and returns the path.

    ::

        def render_story(project, on_progress):  # the app's own render function
            out = MEDIA / "renders" / f"{project.pk}.mp4"
            ...  # on_progress(done, total) as it goes
            return out

        runner = RenderRunner(adapter, own_path(render_story), media_root=MEDIA)

    The returned file is published like one written to the runner's target: checked
    (regular, non-empty, not a link, not the final file itself), fsynced, moved over the
    final file with one atomic rename (copied first if it is on another file system),
    and only then is the project COMPLETED. If anything fails, the previous video stays.

    Args:
        render: Called as ``render(project, on_progress)``; returns a ``str`` or a
            :class:`~pathlib.Path`. ``on_progress`` is an :class:`OnProgress`.
        phase: The phase that ``on_progress(done, total)`` reports (by default
            ``"rendering"``: video frames, which drive ``Progress.fraction``).
    """
    return OwnPathRenderer(render, phase=phase)
