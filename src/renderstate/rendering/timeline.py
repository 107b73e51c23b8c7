"""The declarative timeline the moviepy renderer draws: scenes, backgrounds, titles, a soundtrack.

This module is pure Python (no moviepy, numpy or Pillow), so a web process can validate a
timeline cheaply before it queues a render. :func:`parse_timeline` turns a mapping (the
model's JSON ``timeline`` field, or a decoded TOML/JSON file) into a frozen
:class:`Timeline`, refusing anything it cannot render with a :class:`TimelineError` that names
the scene and the field. See ``docs/timeline.md`` for the format.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from renderstate.exceptions import TimelineError

__all__ = [
    "DEFAULT_LIMITS",
    "RGB",
    "Limits",
    "Scene",
    "Soundtrack",
    "Timeline",
    "TimelineError",
    "check_frames",
    "check_output_format",
    "frame_count",
    "load_timeline",
    "parse_color",
    "parse_timeline",
    "sample_timeline",
]

RGB = tuple[int, int, int]
"""A colour as 0-255 red, green and blue."""

MAX_SIDE = 7680
"""The largest accepted frame width or height (8K)."""


@dataclass(frozen=True)
class Limits:
    """The bounds a timeline and its render must stay within, checked before any work starts.

    A stored timeline is user input: without bounds a one-day scene would fill the disk
    with its soundtrack and a frame rate of ``1e-9`` would render nothing. Raise a bound
    for a trusted timeline by passing your own ``Limits`` to :func:`parse_timeline`,
    :func:`load_timeline` or ``MoviePyRenderer(limits=...)``.
    """

    max_duration: float = 3600.0
    """The longest video, in seconds (the scenes' durations minus their crossfades)."""
    min_fps: float = 1.0
    """The lowest frame rate."""
    max_fps: float = 240.0
    """The highest frame rate."""
    max_audio_bytes: int = 1 << 30
    """The largest soundtrack scratch file (16-bit PCM WAV) a render may write, in bytes.

    At 44.1 kHz stereo that is about 100 minutes of sound."""

    def __post_init__(self) -> None:
        numbers = (self.max_duration, self.min_fps, self.max_fps, self.max_audio_bytes)
        if not all(not isinstance(n, bool) and 0 < n < math.inf for n in numbers):
            msg = f"every limit must be a positive finite number: {self!r}"
            raise ValueError(msg)
        if self.min_fps > self.max_fps:
            msg = f"min_fps {self.min_fps} is above max_fps {self.max_fps}"
            raise ValueError(msg)


DEFAULT_LIMITS = Limits()
"""The limits used when none are given: one hour, 1-240 fps, a 1 GiB soundtrack scratch file."""

_TIMELINE_KEYS = frozenset(
    {"scenes", "width", "height", "fps", "background", "text_color", "font", "soundtrack"}
)
_SCENE_KEYS = frozenset(
    {"duration", "background", "image", "title", "subtitle", "text_color", "font", "crossfade"}
)
_SOUNDTRACK_KEYS = frozenset({"file", "tone", "volume"})
# int(..., 16) also takes a sign, underscores and spaces: only the hex digits themselves.
_HEX_COLOUR = re.compile(r"#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})", re.ASCII)


@dataclass(frozen=True)
class Soundtrack:
    """The audio under the whole video: a file, or a generated sine tone."""

    file: Path | None = None
    """An audio file (any format ffmpeg reads), cut at the end of the video."""
    tone: float | None = None
    """The frequency in hertz of a sine tone, used when there is no ``file``."""
    volume: float = 1.0
    """A gain factor; a tone at 1.0 peaks at a quarter of full scale."""


@dataclass(frozen=True)
class Scene:
    """One still picture on screen for ``duration`` seconds."""

    duration: float
    """Seconds on screen, counted from the start of the crossfade into it."""
    background: RGB = (0, 0, 0)
    """The fill colour, seen where there is no image."""
    image: Path | None = None
    """A picture scaled to cover the frame (cropped at the centre)."""
    title: str = ""
    """Large text, centred."""
    subtitle: str = ""
    """Smaller text under the title."""
    text_color: RGB = (255, 255, 255)
    """The colour of the title and subtitle."""
    crossfade: float = 0.0
    """Seconds during which this scene blends in over the end of the previous one."""
    font: Path | None = None
    """The TrueType/OpenType font of the text; ``None`` for the renderer's (DejaVu Sans)."""


@dataclass(frozen=True)
class Timeline:
    """A validated, renderable timeline."""

    scenes: tuple[Scene, ...]
    """At least one scene, in playing order."""
    width: int | None = None
    """The frame width in pixels, or ``None`` to take it from the project or renderer."""
    height: int | None = None
    """The frame height in pixels, or ``None`` to take it from the project or renderer."""
    fps: float | None = None
    """Frames per second, or ``None`` to take it from the project or renderer."""
    soundtrack: Soundtrack | None = None
    """The audio, or ``None`` for a silent video."""

    @property
    def starts(self) -> tuple[float, ...]:
        """The time at which each scene starts (its crossfade included)."""
        starts: list[float] = []
        t = 0.0
        for scene in self.scenes:
            t -= scene.crossfade
            starts.append(t)
            t += scene.duration
        return tuple(starts)

    @property
    def duration(self) -> float:
        """The video's length: the scenes' durations minus the crossfades' overlap."""
        return self.starts[-1] + self.scenes[-1].duration


def parse_color(value: object, *, field: str, scene: int | None = None) -> RGB:
    """Read ``"#rgb"``, ``"#rrggbb"`` or ``[r, g, b]`` (0-255) as an :data:`RGB` triple.

    Raises:
        TimelineError: ``value`` is none of these.
    """
    problem = (
        f"{value!r} is not a colour; write it as '#rrggbb' (for example '#1e3a5f'), "
        f"'#rgb' or a list [r, g, b] of integers 0-255"
    )
    if isinstance(value, str):
        match = _HEX_COLOUR.fullmatch(value.strip())
        if match:
            digits = match.group(1)
            if len(digits) == 3:
                digits = "".join(c * 2 for c in digits)
            number = int(digits, 16)
            return ((number >> 16) & 255, (number >> 8) & 255, number & 255)
    elif isinstance(value, Sequence) and len(value) == 3:
        parts = list(value)
        channels = [_as_int(p) for p in parts]
        if all(c is not None and 0 <= c <= 255 for c in channels):
            return (int(parts[0]), int(parts[1]), int(parts[2]))
    raise TimelineError(scene=scene, field=field, problem=problem)


def parse_timeline(
    data: object,
    *,
    base_dir: Path | str | None = None,
    allow_outside_base_dir: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> Timeline:
    """Validate ``data`` (a mapping, e.g. a decoded JSON or TOML timeline) into a :class:`Timeline`.

    Args:
        data: The timeline, with the keys described in ``docs/timeline.md``.
        base_dir: The directory that relative ``image`` and ``file`` paths are resolved
            against (default: the current working directory).
        allow_outside_base_dir: Whether ``image`` and ``file`` may name any readable file
            (absolute paths, ``..``, symbolic links leading out of ``base_dir``). Leave it
            ``False`` for a timeline users can edit (a project's stored timeline), so it
            cannot embed a server file such as ``/etc/passwd`` in their video; pass ``True``
            only for a timeline the operator wrote. :func:`load_timeline` passes ``True``.
        limits: The longest video and the frame rates accepted.

    Raises:
        TimelineError: the first problem found, naming the scene and the field.
    """
    base = Path.cwd() if base_dir is None else Path(base_dir)
    files = _Files(base, confined=not allow_outside_base_dir)
    if not isinstance(data, Mapping):
        raise TimelineError(
            field="timeline",
            problem=f"expected a mapping with a 'scenes' list, got {type(data).__name__}",
        )
    _check_keys(data, _TIMELINE_KEYS, scene=None, what="timeline")
    width = _optional_size(data, "width")
    height = _optional_size(data, "height")
    if (width is None) != (height is None):
        raise TimelineError(
            field="height" if height is None else "width",
            problem="is missing; give both width and height, or neither to use the project's",
        )
    fps = None
    if data.get("fps") is not None:
        fps = _frame_rate(data["fps"], limits)
    default_background = parse_color(data.get("background", "#000000"), field="background")
    default_text = parse_color(data.get("text_color", "#ffffff"), field="text_color")
    default_font = None
    if data.get("font") is not None:
        default_font = files.existing(data["font"], field="font", scene=None)

    raw_scenes = data.get("scenes")
    if not isinstance(raw_scenes, Sequence) or isinstance(raw_scenes, str) or not raw_scenes:
        raise TimelineError(
            field="scenes",
            problem=(
                f"expected a non-empty list of scenes, got {raw_scenes!r}; "
                f"add at least one scene such as {{'duration': 2, 'title': 'Hello'}}"
            ),
        )
    scenes = tuple(
        _parse_scene(raw, index, files, default_background, default_text, font=default_font)
        for index, raw in enumerate(raw_scenes)
    )
    _check_crossfades(scenes)
    _check_duration(scenes, limits)
    soundtrack = None
    if data.get("soundtrack") is not None:
        soundtrack = _parse_soundtrack(data["soundtrack"], files)
    timeline = Timeline(scenes=scenes, width=width, height=height, fps=fps, soundtrack=soundtrack)
    if fps is not None:
        check_frames(timeline.duration, fps)
    return timeline


def load_timeline(path: Path | str, *, limits: Limits = DEFAULT_LIMITS) -> Timeline:
    """Read and validate a timeline from a ``.toml`` or ``.json`` file.

    Relative paths inside it are resolved against the file's directory. The file is trusted
    (the operator wrote it), so its paths may also be absolute or lead out of that directory.

    Raises:
        TimelineError: the file cannot be read or decoded, or the timeline is invalid.
    """
    path = Path(path)
    return parse_timeline(
        _read_timeline_file(path), base_dir=path.parent, allow_outside_base_dir=True, limits=limits
    )


def _read_timeline_file(path: Path) -> object:
    """Decode a ``.toml`` or ``.json`` file (either case) without validating the timeline."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise TimelineError(
            field="file",
            problem=f"{str(path)!r} is neither .toml nor .json; rename it to say which it is",
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TimelineError(
            field="file", problem=f"{str(path)!r} cannot be read ({exc.strerror})"
        ) from exc
    if suffix == ".json":
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise TimelineError(
                field="file", problem=f"{str(path)!r} is not valid JSON ({exc})"
            ) from exc
    toml = _toml_module()
    try:
        return toml.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TimelineError(
            field="file", problem=f"{str(path)!r} is not valid TOML ({exc})"
        ) from exc


def sample_timeline() -> Timeline:
    """Return the small timeline the demo renders: 640x360, 24 fps, three titled scenes, a tone."""
    text = resources.files(__package__).joinpath("sample_timeline.json").read_text("utf-8")
    return parse_timeline(json.loads(text))


def check_output_format(
    width: object, height: object, fps: object, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[int, int, float]:
    """Check a frame size and rate for a browser-playable H.264 video.

    Raises:
        TimelineError: a side is not an even integer in 2..7680, or ``fps`` is outside
            ``limits.min_fps`` .. ``limits.max_fps``.
    """
    w = _size(width, "width")
    h = _size(height, "height")
    rate = _frame_rate(fps, limits)
    return w, h, rate


_FRAME_ROUNDING = 1e-6
"""Frames by which ``duration * fps`` may fall short of a whole number and still reach it."""


def frame_count(duration: float, fps: float) -> int:
    """Return how many whole frames a video of ``duration`` seconds at ``fps`` holds.

    Frame ``i`` is shown at ``i / fps`` for ``1 / fps``; a part of a frame is left out.
    Durations are decimal numbers held in floats: ``4.6 * 25`` is 114.99999999999999, yet
    4.6 s at 25 fps is 115 frames. A shortfall of a millionth of a frame is such rounding.
    """
    return math.floor(duration * fps + _FRAME_ROUNDING)


def check_frames(duration: float, fps: float) -> None:
    """Check that a video of ``duration`` seconds at ``fps`` has at least one frame.

    Raises:
        TimelineError: ``duration`` is shorter than one frame (an MP4 with no picture).
    """
    if frame_count(duration, fps) < 1:
        raise TimelineError(
            field="duration",
            problem=(
                f"the video lasts {duration:g} s, shorter than one frame at {fps:g} fps "
                f"({1 / fps:g} s), so it would have no picture; lengthen the scenes"
            ),
        )


# ---------------------------------------------------------------- helpers


def _toml_module() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415 - only TOML timelines need it

        return tomllib
    try:  # pragma: no cover - Python 3.10 only
        import tomli  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - Python 3.10 only
        raise TimelineError(
            field="file",
            problem=(
                "TOML timelines need Python 3.11+ or the 'tomli' package; "
                "run pip install tomli, or write the timeline as JSON"
            ),
        ) from exc
    return tomli  # pragma: no cover


def _as_int(value: object) -> int | None:
    # bool is an int subclass; `true` is never a size or a colour channel.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_number(value: object) -> float | None:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    number = _as_int(value)
    if number is None:
        return None
    try:
        return float(number)
    except OverflowError:  # a JSON integer of 309+ digits: no float holds it
        return None


def _check_keys(
    data: Mapping[Any, Any], allowed: frozenset[str], *, scene: int | None, what: str
) -> None:
    for key in data:
        if key not in allowed:
            raise TimelineError(
                scene=scene,
                field=str(key),
                problem=(
                    f"is not a {what} key; the {what} keys are {', '.join(sorted(allowed))} "
                    f"(check the spelling)"
                ),
            )


def _positive_number(value: object, *, field: str, scene: int | None, unit: str) -> float:
    number = _as_number(value)
    if number is None or number <= 0:
        raise TimelineError(
            scene=scene,
            field=field,
            problem=f"must be a number of {unit} greater than 0, got {_short(value)}",
        )
    return number


def _frame_rate(value: object, limits: Limits) -> float:
    rate = _as_number(value)
    if rate is None or not limits.min_fps <= rate <= limits.max_fps:
        raise TimelineError(
            field="fps",
            problem=(
                f"must be a number of frames per second from {limits.min_fps:g} to "
                f"{limits.max_fps:g}, got {_short(value)}"
            ),
        )
    return rate


def _short(value: object) -> str:
    """``repr(value)``, cut short: a 400-digit number makes an unreadable message."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


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


def _size(value: object, field: str) -> int:
    side = _as_int(value)
    if side is None or not 2 <= side <= MAX_SIDE:
        raise TimelineError(
            field=field,
            problem=f"must be an integer number of pixels from 2 to {MAX_SIDE}, got {value!r}",
        )
    if side % 2:
        raise TimelineError(
            field=field,
            problem=(
                f"{side} is odd; H.264 in yuv420p (what browsers play) needs even sides, "
                f"use {side - 1} or {side + 1}"
            ),
        )
    return side


def _optional_size(data: Mapping[str, Any], field: str) -> int | None:
    value = data.get(field)
    return None if value is None else _size(value, field)


def _text(value: object, *, field: str, scene: int) -> str:
    if not isinstance(value, str):
        raise TimelineError(
            scene=scene, field=field, problem=f"must be a string, got {type(value).__name__}"
        )
    # A timeline is stored with its project: PostgreSQL refuses NUL in text and JSON, and a
    # lone surrogate (JSON "\ud800") can be neither stored as UTF-8 nor drawn.
    if "\x00" in value:
        raise TimelineError(
            scene=scene, field=field, problem="contains a NUL character (\\u0000); remove it"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TimelineError(
            scene=scene,
            field=field,
            problem=(
                f"contains an unpaired surrogate ({value[exc.start]!r}), which is not text; "
                f"send the character itself or its UTF-16 pair"
            ),
        ) from exc
    return value


class _Files:
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


def _parse_scene(
    raw: object,
    index: int,
    files: _Files,
    background: RGB,
    text_color: RGB,
    *,
    font: Path | None,
) -> Scene:
    if not isinstance(raw, Mapping):
        raise TimelineError(
            scene=index,
            field="scene",
            problem=f"expected a mapping such as {{'duration': 2}}, got {type(raw).__name__}",
        )
    _check_keys(raw, _SCENE_KEYS, scene=index, what="scene")
    if "duration" not in raw:
        raise TimelineError(
            scene=index, field="duration", problem="is missing; give every scene a duration"
        )
    duration = _positive_number(raw["duration"], field="duration", scene=index, unit="seconds")
    crossfade = _as_number(raw.get("crossfade", 0))
    if crossfade is None or crossfade < 0:
        raise TimelineError(
            scene=index,
            field="crossfade",
            problem=f"must be a number of seconds, 0 or more, got {_short(raw['crossfade'])}",
        )
    image = raw.get("image")
    if raw.get("font") is not None:
        font = files.existing(raw["font"], field="font", scene=index)
    return Scene(
        duration=duration,
        background=parse_color(raw["background"], field="background", scene=index)
        if "background" in raw
        else background,
        image=None if image is None else files.existing(image, field="image", scene=index),
        title=_text(raw.get("title", ""), field="title", scene=index),
        subtitle=_text(raw.get("subtitle", ""), field="subtitle", scene=index),
        text_color=parse_color(raw["text_color"], field="text_color", scene=index)
        if "text_color" in raw
        else text_color,
        crossfade=crossfade,
        font=font,
    )


_ROUNDING = 1e-9
"""Seconds by which a crossfade may exceed its room: float rounding, far below a frame."""


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


def _parse_soundtrack(raw: object, files: _Files) -> Soundtrack:
    if not isinstance(raw, Mapping):
        raise TimelineError(
            field="soundtrack",
            problem=(
                f"expected a mapping such as {{'tone': 440}} or {{'file': 'music.mp3'}}, "
                f"got {type(raw).__name__}"
            ),
        )
    _check_keys(raw, _SOUNDTRACK_KEYS, scene=None, what="soundtrack")
    has_file, has_tone = raw.get("file") is not None, raw.get("tone") is not None
    if has_file == has_tone:
        raise TimelineError(
            field="soundtrack",
            problem="give exactly one of 'file' (an audio file path) or 'tone' (a frequency)",
        )
    volume = _as_number(raw.get("volume", 1.0))
    if volume is None or not 0 <= volume <= 10:
        raise TimelineError(
            field="soundtrack.volume",
            problem=(
                f"must be a number from 0 to 10 (1.0 keeps the level), got {_short(raw['volume'])}"
            ),
        )
    if has_file:
        return Soundtrack(
            file=files.existing(raw["file"], field="soundtrack.file", scene=None),
            volume=volume,
        )
    tone = _positive_number(raw["tone"], field="soundtrack.tone", scene=None, unit="hertz")
    if tone >= 20_000:
        raise TimelineError(
            field="soundtrack.tone", problem=f"{tone:g} Hz is inaudible; use 20 to 20000 Hz"
        )
    return Soundtrack(tone=tone, volume=volume)
