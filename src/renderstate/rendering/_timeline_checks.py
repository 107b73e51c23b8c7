"""What the timeline's schema cannot say: its files, its crossfades and its limits; then the build.

:func:`build_timeline` reads a mapping in the order ``docs/timeline.md`` describes it. The
schema (``_timeline_schema``) has already judged every key's type and range; its first
error is raised at its place in that order, so a timeline with several faults is refused
for the first of them whether a value or a file is at fault, and the file system is only
asked about paths that come before any bad value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, cast

from renderstate.exceptions import TimelineError
from renderstate.rendering import _timeline_errors as errors
from renderstate.rendering.timeline import (
    RGB,
    Limits,
    Scene,
    Soundtrack,
    Timeline,
    check_frames,
)

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = ["Files", "build_timeline", "rgb"]

_ROUNDING = 1e-9
"""Seconds by which a crossfade may exceed its room: float rounding, far below a frame."""


def rgb(colour: object) -> RGB:
    """The :data:`RGB` triple of a colour the schema accepted ('#rgb', '#rrggbb' or 3 ints)."""
    if isinstance(colour, str):
        digits = colour.strip()[1:]
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        number = int(digits, 16)
        return ((number >> 16) & 255, (number >> 8) & 255, number & 255)
    red, green, blue = cast("Sequence[int]", colour)
    return (int(red), int(green), int(blue))


class _Order:
    """Raises the schema's first error once reading reaches its place in the timeline."""

    def __init__(self, data: object, limits: Limits) -> None:
        self.data = data
        self.limits = limits
        self.first: tuple[errors.Rank, ErrorDetails] | None = errors.first_problem(data)

    def reach(self, rank: errors.Rank) -> None:
        if self.first is not None and self.first[0] < rank:
            error = self.first[1]
            raise errors.timeline_error(self.data, error, self.limits.min_fps, self.limits.max_fps)


class Files:
    """Finds the media files a timeline names, confined to ``base`` unless it is trusted."""

    def __init__(self, base: Path, *, confined: bool) -> None:
        self.base = base
        self.confined = confined

    def existing(self, value: object, *, field: str, scene: int | None) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise TimelineError(
                scene=scene, field=field, problem=f"must be a file path string, got {value!r}"
            )
        path = self.base / value
        if self.confined:
            self._check_inside(value, path, field=field, scene=scene)
        try:
            found = path.is_file()
        except (OSError, ValueError):  # a name too long for the file system, say
            found = False
        if not found:
            raise TimelineError(
                scene=scene,
                field=field,
                problem=(
                    f"{value!r} does not exist (looked for {str(path)!r}); relative paths are "
                    f"resolved against the timeline file's directory or the renderer's base_dir"
                ),
            )
        return path

    def _resolves_inside(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self.base.resolve())
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
            return False

    def _check_inside(self, value: str, path: Path, *, field: str, scene: int | None) -> None:
        # A stored timeline is user input: without this, any file the server can read
        # (/etc/passwd as audio, another user's picture) could end up in their video.
        pure = PurePosixPath(value.replace("\\", "/"))
        if pure.is_absolute() or PureWindowsPath(value).drive or Path(value).is_absolute():
            reason = "is an absolute path"
        elif ".." in pure.parts:
            reason = "contains a '..' segment"
        elif not self._resolves_inside(path):
            reason = "leads out of base_dir through a symbolic link (or cannot be resolved)"
        else:
            return
        raise TimelineError(
            scene=scene,
            field=field,
            problem=(
                f"{value!r} {reason}; a timeline from project data may only name files "
                f"inside base_dir ({str(self.base)!r}), so give a path relative to it without "
                f"'..'. To allow other files in a timeline you trust, pass "
                f"parse_timeline(..., allow_outside_base_dir=True) or load it from a file "
                f"with load_timeline()"
            ),
        )


def build_timeline(data: object, files: Files, limits: Limits) -> Timeline:
    """Check ``data`` against the schema, its files and ``limits``; build the :class:`Timeline`.

    Raises:
        TimelineError: the first problem in the timeline's order, naming scene and field.
    """
    order = _Order(data, limits)
    order.reach(errors.MAPPING_WITH_KNOWN_KEYS)
    assert isinstance(data, Mapping)
    order.reach(errors.SIZE_PAIR)
    width, height = data.get("width"), data.get("height")
    if (width is None) != (height is None):
        raise TimelineError(
            field="height" if height is None else "width",
            problem="is missing; give both width and height, or neither to use the project's",
        )
    order.reach(errors.FRAME_RATE_LIMITS)
    fps = None if data.get("fps") is None else float(data["fps"])
    if fps is not None and not limits.min_fps <= fps <= limits.max_fps:
        raise TimelineError(
            field="fps", problem=errors.fps_problem(data["fps"], limits.min_fps, limits.max_fps)
        )
    order.reach(errors.FONT_FILE)
    background = rgb(data.get("background", "#000000"))
    text_color = rgb(data.get("text_color", "#ffffff"))
    font = None
    if data.get("font") is not None:
        font = files.existing(data["font"], field="font", scene=None)
    order.reach(errors.SCENE_LIST)
    scenes = tuple(
        _scene(raw, index, files, order, defaults=(background, text_color, font))
        for index, raw in enumerate(data["scenes"])
    )
    order.reach(errors.CROSSFADES)
    _check_crossfades(scenes)
    _check_duration(scenes, limits)
    soundtrack = None
    if data.get("soundtrack") is not None:
        soundtrack = _soundtrack(data["soundtrack"], files, order)
    order.reach(errors.END)
    timeline = Timeline(
        scenes=scenes,
        width=width,
        height=height,
        fps=fps,
        soundtrack=soundtrack,
        base_dir=files.base if files.confined else None,
    )
    if fps is not None:
        check_frames(timeline.duration, fps)
    return timeline


def _scene(
    raw: Mapping[str, Any],
    index: int,
    files: Files,
    order: _Order,
    *,
    defaults: tuple[RGB, RGB, Path | None],
) -> Scene:
    background, text_color, font = defaults
    order.reach(errors.scene_file(index, "font"))
    if raw.get("font") is not None:
        font = files.existing(raw["font"], field="font", scene=index)
    order.reach(errors.scene_file(index, "image"))
    image = raw.get("image")
    path = None if image is None else files.existing(image, field="image", scene=index)
    order.reach(errors.scene_end(index))
    return Scene(
        duration=float(raw["duration"]),
        background=rgb(raw["background"]) if "background" in raw else background,
        image=path,
        title=raw.get("title", ""),
        subtitle=raw.get("subtitle", ""),
        text_color=rgb(raw["text_color"]) if "text_color" in raw else text_color,
        crossfade=float(raw.get("crossfade", 0)),
        font=font,
    )


def _check_crossfades(scenes: tuple[Scene, ...]) -> None:
    if scenes[0].crossfade:
        raise TimelineError(
            scene=0,
            field="crossfade",
            problem="the first scene has nothing to fade from; remove its crossfade",
        )
    for index in range(1, len(scenes)):
        fade = scenes[index].crossfade
        previous = scenes[index - 1]
        room = min(previous.duration - previous.crossfade, scenes[index].duration)
        # Durations are decimal numbers held in floats: 0.5 - 0.4 is 0.09999999999999998,
        # and a 0.1 s crossfade written to fill that room exactly must fit.
        if fade > room + _ROUNDING:
            raise TimelineError(
                scene=index,
                field="crossfade",
                problem=(
                    f"{fade:g} s is longer than the {room:g} s it can overlap (this scene's "
                    f"duration and the previous scene's time after its own crossfade); "
                    f"shorten the crossfade or lengthen the scenes"
                ),
            )


def _check_duration(scenes: tuple[Scene, ...], limits: Limits) -> None:
    total = 0.0
    for index, scene in enumerate(scenes):
        total += scene.duration - scene.crossfade
        if total > limits.max_duration:
            raise TimelineError(
                scene=index,
                field="duration",
                problem=(
                    f"takes the video to {total:g} s, longer than the {limits.max_duration:g} s "
                    f"limit; shorten the scenes, or pass a larger Limits(max_duration=...) "
                    f"for a timeline you trust"
                ),
            )


def _soundtrack(raw: Mapping[str, Any], files: Files, order: _Order) -> Soundtrack:
    order.reach(errors.SOUNDTRACK_CHOICE)
    has_file, has_tone = raw.get("file") is not None, raw.get("tone") is not None
    if has_file == has_tone:
        raise TimelineError(
            field="soundtrack",
            problem="give exactly one of 'file' (an audio file path) or 'tone' (a frequency)",
        )
    order.reach(errors.SOUNDTRACK_FILE)
    volume = float(raw.get("volume", 1.0))
    if has_file:
        path = files.existing(raw["file"], field="soundtrack.file", scene=None)
        return Soundtrack(file=path, volume=volume)
    order.reach(errors.SOUNDTRACK_TONE)
    return Soundtrack(tone=float(raw["tone"]), volume=volume)
