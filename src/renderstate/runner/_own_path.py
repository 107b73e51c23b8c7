"""Fit an app's own render function, unchanged: its arguments, its progress, its result.

``render(project, on_progress) -> path`` is the default shape; :func:`own_path`'s options
adapt the common others: a function that takes the project's id (``argument=``), writes
where it is told (``target=``), reports ``(done, total, label)`` or a fraction, and returns
a dict naming its file (``result_key=``) and other columns of the app (``fields=``).
"""

from __future__ import annotations

import inspect
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, Literal, overload

from renderstate._records import Rendered
from renderstate.typing import ProgressSink, ProjectT

__all__ = ["OnProgress", "OwnPathRenderer", "own_path"]

_FRACTION_UNITS = 1000
"""A fraction reported alone counts as this many units of the default phase."""


def _is_int(value: object) -> bool:
    """An integer count: a Python int or any other Integral (numpy's), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class OnProgress:
    """The ``on_progress`` callback handed to a render function wrapped by :func:`own_path`.

    Every common signature is understood:

    - ``on_progress(done, total)``: units of the wrapper's default phase;
    - ``on_progress(phase, done, total)``: a phase of your own (``"tts"``, ``"compose"``);
    - ``on_progress(done, total, label)``: units of the default phase, ``label`` (a
      description such as ``"Rendering frames"``) kept as :attr:`label` and, with the
      runner's sink, shown as :attr:`Progress.label <renderstate.runner.Progress.label>`;
    - ``on_progress(fraction)``: a float from 0.0 to 1.0 of the default phase;
    - ``on_progress(phase)``: a phase of your own starts (its units unknown).

    See :class:`~renderstate.typing.ProgressSink`. A cancelled render stops here: the call
    raises :class:`~renderstate.RenderCancelledError`; let it propagate.
    """

    __slots__ = ("_labels", "_phase", "_sink", "label")

    def __init__(self, sink: ProgressSink, phase: str) -> None:
        self._sink = sink
        self._phase = phase
        self._labels = _takes_label(sink)
        self.label: str | None = None
        """The last label a ``(done, total, label)`` call gave."""

    @overload
    def __call__(self, done: int, total: int, /) -> None: ...

    @overload
    def __call__(self, phase: str, done: int, total: int, /) -> None: ...

    @overload
    def __call__(self, done: int, total: int, label: str, /) -> None: ...

    @overload
    def __call__(self, fraction: float, /) -> None: ...

    @overload
    def __call__(self, phase: str, /) -> None: ...

    def __call__(self, *args: object) -> None:
        """Report progress in any of the forms above."""
        phase: object = self._phase
        done: object = None
        total: object = None
        label: str | None = None
        if len(args) == 1 and isinstance(args[0], str):
            phase, done, total = args[0], 0, 0
        elif len(args) == 1 and isinstance(args[0], float):
            fraction = args[0]
            if not 0.0 <= fraction <= 1.0:
                msg = f"on_progress(fraction) takes a float from 0.0 to 1.0, got {fraction!r}"
                raise ValueError(msg)
            done, total = round(fraction * _FRACTION_UNITS), _FRACTION_UNITS
        elif len(args) == 2:
            done, total = args
        elif len(args) == 3 and isinstance(args[0], str):
            phase, done, total = args
        elif len(args) == 3 and isinstance(args[2], str):
            done, total, given = args
            label = self.label = str(given)
        if not isinstance(phase, str) or not _is_int(done) or not _is_int(total):
            msg = (
                f"on_progress takes (done, total), (phase, done, total), (done, total, label), "
                f"(fraction) or (phase), with int counts, a float fraction and str names; "
                f"got {args!r}"
            )
            raise TypeError(msg)
        if label is not None and self._labels:
            labelled: Any = self._sink  # the runner's sink takes label= (_takes_label)
            labelled(phase, int(done), int(total), label=label)  # type: ignore[call-overload]
            return
        self._sink(phase, int(done), int(total))  # type: ignore[call-overload]


def _takes_label(sink: ProgressSink) -> bool:
    """Whether ``sink`` takes a ``label=`` keyword (the runner's does; a bare one may not)."""
    try:
        parameters = inspect.signature(sink).parameters
    except (TypeError, ValueError):
        return False
    return "label" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


class OwnPathRenderer(Generic[ProjectT]):
    """A :class:`~renderstate.typing.Renderer` around an app's own render function.

    Made by :func:`own_path`, which documents the options.
    """

    def __init__(
        self,
        render: Callable[..., object],
        *,
        phase: str = "rendering",
        argument: Callable[[ProjectT], object] | None = None,
        target: str | None = None,
        result_key: str | None = None,
        output: Literal["file", "directory"] = "file",
        fields: Iterable[str] | Mapping[str, str] | None = None,
    ) -> None:
        if output not in ("file", "directory"):
            msg = (
                f"own_path(output={output!r}): the function's output is 'file' (a video) or "
                f"'directory' (an HLS or DASH folder, an image sequence)"
            )
            raise ValueError(msg)
        if target is not None and not str(target).isidentifier():
            msg = (
                f"own_path(target={target!r}): name the keyword argument the function takes "
                f"its output path as, such as target='output_path'"
            )
            raise ValueError(msg)
        if target is not None:
            _check_takes(render, target)
        key: object = result_key
        if key is not None and not isinstance(key, str):
            msg = f"own_path(result_key={result_key!r}): name the dict key holding the path"
            raise TypeError(msg)
        columns = _columns_of(fields)
        if columns and result_key is None:
            msg = (
                f"own_path(fields={fields!r}) reads those entries of the dict the function "
                f"returns: say which entry is the video's path too, own_path(..., "
                f"result_key='video_path', fields=...)"
            )
            raise ValueError(msg)
        self.fields = columns
        """Key of the returned dict -> the app's column it is saved in, with the completion."""
        self.render = render
        """The wrapped function."""
        self.phase = phase
        """The phase ``on_progress(done, total)`` reports."""
        self.argument = argument
        """What the function gets instead of the project, if set."""
        self.target = target
        """The keyword the function gets the path to write under, if set."""
        self.result_key = result_key
        """The key of a returned dict that holds the path, if set."""
        self.output: Literal["file", "directory"] = output
        """``"file"``, or ``"directory"``: the runner then publishes a whole directory."""

    def __repr__(self) -> str:
        return f"own_path({self.render!r})"

    def __call__(
        self, project: ProjectT, target: Path, progress: ProgressSink
    ) -> str | os.PathLike[str] | Rendered | None:
        """Run the function; return the path it wrote (``None``: it wrote ``target``).

        With ``fields``, the path comes back as a :class:`Rendered` holding those entries
        of the returned dict, under the app's column names.
        """
        first = project if self.argument is None else self.argument(project)
        on_progress = OnProgress(progress, self.phase)
        if self.target is None:
            result = self.render(first, on_progress)
        else:
            result = self.render(first, on_progress, **{self.target: target})
        result_any: Any = result  # the function is the app's: checked as it is read
        path = self._written(result_any, target)
        if not self.fields:
            return path
        missing = [key for key in self.fields if key not in result_any]
        if missing:
            msg = (
                f"{self.render!r} returned a dict without {missing} (its keys: "
                f"{sorted(map(str, result_any))}); fix own_path(fields=...)"
            )
            raise TypeError(msg)
        values = {column: result_any[key] for key, column in self.fields.items()}
        return Rendered(path, values)

    def _written(self, result: Any, target: Path) -> str | os.PathLike[str] | None:
        """The path the function's result names (``None``: it wrote ``target``)."""
        written: object = self._path_in(result)  # anything: the function is the app's
        if written is None:
            if self.target is not None:
                return None  # it wrote where it was told
            msg = (
                f"{self.render!r} returned None; a render function wrapped by own_path() "
                "must return the path of the file it wrote (or be told where to write: "
                "own_path(..., target='output_path'))"
            )
            raise TypeError(msg)
        if (
            self.target is not None
            and isinstance(written, (str, os.PathLike))
            and _same_spelling(written, target)
        ):
            return None
        return written  # type: ignore[return-value]  # the runner refuses a non-path, saying so

    def _path_in(self, result: Any) -> Any:
        """The path a function's result names: the result itself, or a dict's entry."""
        if isinstance(result, Mapping):
            if self.result_key is None:
                msg = (
                    f"{self.render!r} returned a dict ({sorted(map(str, result))}); say which "
                    f"entry is the video's path: own_path(..., result_key='...')"
                )
                raise TypeError(msg)
            if self.result_key not in result:
                msg = (
                    f"{self.render!r} returned a dict without {self.result_key!r} (its keys: "
                    f"{sorted(map(str, result))}); fix own_path(result_key=...)"
                )
                raise TypeError(msg)
            result = result[self.result_key]
        return result  # the runner refuses anything that is not a path, saying so


def _columns_of(fields: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``fields`` as result key -> column: a list names both, a mapping maps them."""
    if fields is None:
        return {}
    if isinstance(fields, str):
        msg = f"own_path(fields={fields!r}): give a list of keys, such as fields=['duration']"
        raise TypeError(msg)
    pairs = fields.items() if isinstance(fields, Mapping) else ((k, k) for k in fields)
    columns: dict[str, str] = {}
    for key, column in pairs:
        if not isinstance(key, str) or not isinstance(column, str):
            msg = f"own_path(fields=...): keys and column names are str, got {key!r}: {column!r}"
            raise TypeError(msg)
        columns[key] = column
    return columns


def _check_takes(render: Callable[..., object], target: str) -> None:
    """Refuse a ``target`` keyword that ``render``'s signature cannot take (when it has one)."""
    try:
        parameters = list(inspect.signature(render).parameters.values())
    except (TypeError, ValueError):  # no signature to read (some builtins): trust the app
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    named = [p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    fills = [p.name for p in parameters if p.kind in positional][:2]
    takes = [
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    if target in fills or target not in takes:
        msg = (
            f"own_path(target={target!r}): {render!r} takes no keyword argument {target!r} "
            f"besides its first two (its parameters: {named}); name the one it takes its "
            f"output path as"
        )
        raise ValueError(msg)


def _same_spelling(written: str | os.PathLike[str], target: Path) -> bool:
    """Whether ``written`` names ``target``, relative (to the working directory) or not."""
    return os.path.normpath(Path(written).absolute()) == os.path.normpath(target.absolute())


def own_path(
    render: Callable[..., object],
    *,
    phase: str = "rendering",
    argument: Callable[[Any], object] | None = None,
    target: str | None = None,
    result_key: str | None = None,
    output: Literal["file", "directory"] = "file",
    fields: Iterable[str] | Mapping[str, str] | None = None,
) -> OwnPathRenderer[Any]:
    """Make a renderer of an app's own render function, unchanged.

    ::

        def render_story(project, on_progress):  # the app's own render function
            out = MEDIA / "renders" / f"{project.pk}.mp4"
            ...  # on_progress(done, total) as it goes
            return out

        runner = RenderRunner(adapter, own_path(render_story), media_root=MEDIA)

        # A function that takes the id, reports (current, total, description), writes
        # where it is told and returns {"video_path": ..., "duration": ...}, the
        # duration saved in the model's own column with the completion:
        own_path(render_video, argument=lambda p: p.pk, target="output_path",
                 result_key="video_path", fields=["duration"])

    The file is published like one written to the runner's target: checked (regular,
    non-empty, not a link, not the final file itself), fsynced, moved over the final file
    with one atomic rename (copied first if it is on another file system), and only then
    is the project COMPLETED. If anything fails, the previous video stays.

    With ``target``, the function writes the runner's own temporary file, inside the
    render's private directory: its scratch files (moviepy's ``...TEMP_MPY_...`` audio)
    land there too and go with it on success, failure, cancel and recovery. Without it,
    the function's own scratch files beside its own output are its business.

    Args:
        render: Called as ``render(project, on_progress)`` (or with ``argument``'s value
            instead of the project, and ``target`` as a keyword); returns a ``str`` or a
            :class:`~pathlib.Path`, a dict holding one under ``result_key``, or, with
            ``target``, nothing. ``on_progress`` is an :class:`OnProgress`.
        phase: The phase that ``on_progress(done, total)`` reports (by default
            ``"rendering"``: video frames, which drive ``Progress.fraction``).
        argument: What the function takes instead of the project, from the project
            (``lambda p: p.pk`` for a function of the project's id).
        target: The keyword argument the function takes its output path as; the path it
            gets is the runner's temporary file.
        result_key: The key of a returned dict that holds the written file's path.
        output: ``"directory"`` for a function whose output is a directory (an HLS
            playlist and its segments, DASH, an image sequence): ``target`` is then an
            empty directory inside the render's private directory, and the whole directory
            is swapped with the output directory in one atomic step once it is complete
            (see "Directory outputs" in the runner's docs).
        fields: Entries of the returned dict (with ``result_key``) to save in the app's
            own columns, written in the completion's guarded ``UPDATE`` (a superseded
            render writes none): a list of keys that are also the columns' names
            (``["duration", "metadata"]``), or a mapping of key to column
            (``{"length": "duration"}``). A name that is no column of the model fails
            the render before its video is published.

    Raises:
        ValueError: ``target`` is not a keyword argument's name, or names none that
            ``render``'s signature takes besides its first two; ``output`` is neither
            ``"file"`` nor ``"directory"``.
        TypeError: ``result_key`` is not a str, or ``fields`` is not a list or mapping
            of str.
        ValueError: ``fields`` without ``result_key``.
    """
    return OwnPathRenderer(
        render,
        phase=phase,
        argument=argument,
        target=target,
        result_key=result_key,
        output=output,
        fields=fields,
    )
