"""The declarative timeline the moviepy renderer draws: scenes, backgrounds, titles, a soundtrack.

No moviepy, numpy or Pillow here, so a web process can validate a timeline cheaply before it
queues a render. :func:`parse_timeline` turns a mapping (the model's JSON ``timeline`` field,
or a decoded TOML/JSON file) into a frozen :class:`Timeline`, refusing anything it cannot
render with a :class:`TimelineError` that names the scene and the field. See
``docs/timeline.md`` for the format.

This module is the data model and the public functions. The validation lives beside it and
imports pydantic on first use: ``_timeline_schema`` declares the format (and derives
:func:`timeline_json_schema` from it), ``_timeline_errors`` words pydantic's errors, and
``_timeline_checks`` checks what a schema cannot (files, crossfades, limits) and builds the
:class:`Timeline`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
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
    "timeline_json_schema",
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
    base_dir: Path | None = dataclasses.field(default=None, compare=False)
    """The directory the timeline's files were confined to when it was parsed, or ``None``.

    :func:`parse_timeline` sets it for a timeline from project data; the renderer then
    opens each file below it without following a link, so a file replaced by a link
    after the check is refused rather than read. ``None`` (a timeline file, one parsed
    with ``allow_outside_base_dir=True``, one built by hand): the files are trusted and
    opened by their names. Not part of the timeline's equality."""

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
    from renderstate.rendering import _timeline_errors as errors  # noqa: PLC0415 - pydantic
    from renderstate.rendering._timeline_checks import rgb  # noqa: PLC0415 - pydantic

    if not errors.is_colour(value):
        raise TimelineError(
            scene=scene, field=field, problem=errors.COLOUR_PROBLEM.format(value=value)
        )
    return rgb(value)


def parse_timeline(
    data: object,
    *,
    base_dir: Path | str | None = None,
    allow_outside_base_dir: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> Timeline:
    """Validate ``data`` (a mapping, e.g. a decoded JSON or TOML timeline) into a :class:`Timeline`.

    The keys, their types and ranges are those of :func:`timeline_json_schema`; the files
    named, the crossfades and ``limits`` are checked too.

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
        ImportError: pydantic is not installed (``pip install 'renderstate[render]'``).
    """
    # pydantic is imported on first use: reading a Timeline's fields never pays for it.
    from renderstate.rendering._timeline_checks import Files, build_timeline  # noqa: PLC0415

    base = Path.cwd() if base_dir is None else Path(base_dir)
    return build_timeline(data, Files(base, confined=not allow_outside_base_dir), limits)


def timeline_json_schema(*, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a timeline mapping, for web forms and OpenAPI.

    It is derived from the declarations :func:`parse_timeline` validates with, and carries
    ``limits``' frame rates. A timeline it accepts may still be refused by
    :func:`parse_timeline` for what a schema cannot know: a file that does not exist or lies
    outside ``base_dir``, crossfades longer than their room, a video longer than
    ``limits.max_duration`` or shorter than one frame.

    Raises:
        ImportError: pydantic is not installed (``pip install 'renderstate[render]'``).
    """
    from renderstate.rendering import _timeline_schema as schema  # noqa: PLC0415 - pydantic

    return schema.json_schema(limits.min_fps, limits.max_fps, limits.max_duration)


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
    from renderstate.rendering import _timeline_errors as errors  # noqa: PLC0415 - pydantic

    w = errors.check_side(width, "width")
    h = errors.check_side(height, "height")
    rate = errors.check_fps(fps, limits.min_fps, limits.max_fps)
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
