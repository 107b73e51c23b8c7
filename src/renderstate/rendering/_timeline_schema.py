"""The timeline's wire format, declared once with pydantic, and the JSON Schema derived from it.

The declarations below decide which keys exist, their types, ranges and patterns, and which
may be left out or set to ``null``. They do no I/O and know no limits: files, crossfades and
:class:`~renderstate.rendering.timeline.Limits` are checked by ``_timeline_checks``, and
``_timeline_errors`` turns pydantic's errors into :class:`TimelineError` messages.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any, Final

try:
    # Only this module imports pydantic, so that a missing pydantic is always this message.
    from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
except ImportError as exc:  # pragma: no cover - the render extra brings pydantic
    msg = (
        "validating a timeline needs pydantic, which the render extra brings: "
        "pip install 'renderstate[render]'"
    )
    raise ImportError(msg) from exc

if sys.version_info >= (3, 12):
    from typing import NotRequired, TypedDict
else:  # pragma: no cover - pydantic needs typing_extensions' TypedDict before 3.12
    from typing_extensions import NotRequired, TypedDict

from renderstate.rendering.timeline import MAX_SIDE

__all__ = [
    "COLOUR",
    "RATE",
    "SCENE_KEYS",
    "SIDE",
    "SOUNDTRACK_KEYS",
    "TIMELINE",
    "TIMELINE_KEYS",
    "TimelineSpec",
    "ValidationError",
    "json_schema",
]

MAX_VOLUME: Final = 10
INAUDIBLE: Final = 20_000

_NUMBER = {"strict": True, "allow_inf_nan": False}  # an int or a finite float; never "2", true


def _listed(value: object) -> list[object]:
    # Any sequence but a string, as a list; anything else (a set, whose order is no order,
    # an iterator) is refused. pydantic's own Sequence rebuilds the input's type, which
    # fails for some (array.array) with a TypeError instead of a validation error.
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    msg = "not a sequence"
    raise ValueError(msg)


_SEQUENCE = BeforeValidator(_listed)

Seconds = Annotated[float, Field(gt=0, **_NUMBER)]
Rate = Annotated[float, Field(gt=0, description="frames per second", **_NUMBER)]
Side = Annotated[int, Field(strict=True, ge=2, le=MAX_SIDE, multiple_of=2)]
Channel = Annotated[int, Field(strict=True, ge=0, le=255)]
Hex = Annotated[
    str,
    # Hex digits only: int(..., 16) would also take a sign, underscores and spaces.
    Field(strict=True, pattern=r"^\s*#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})\s*$"),
]
Colour = Annotated[
    Hex | Annotated[list[Channel], _SEQUENCE, Field(min_length=3, max_length=3)],
    Field(description="'#rrggbb', '#rgb' or [r, g, b] with integers 0-255"),
]
FilePath = Annotated[str, Field(strict=True, pattern=r"\S", description="a file path")]
# PostgreSQL refuses NUL in text and JSON; pydantic itself refuses a lone surrogate.
Text = Annotated[str, Field(strict=True, pattern=r"^[^\x00]*$")]


class SceneSpec(TypedDict):
    """One scene as written in a timeline, its keys in the order they are checked."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    duration: Annotated[Seconds, Field(description="seconds on screen, its crossfade included")]
    crossfade: NotRequired[Annotated[float, Field(ge=0, default=0, **_NUMBER)]]
    font: NotRequired[FilePath | None]
    background: NotRequired[Colour]
    image: NotRequired[FilePath | None]
    title: NotRequired[Annotated[Text, Field(default="")]]
    subtitle: NotRequired[Annotated[Text, Field(default="")]]
    text_color: NotRequired[Colour]


class SoundtrackSpec(TypedDict, total=False):
    """The soundtrack as written: a file or a tone (exactly one, checked with the files)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    volume: Annotated[float, Field(ge=0, le=MAX_VOLUME, default=1.0, **_NUMBER)]
    file: FilePath | None
    tone: Annotated[float, Field(gt=0, lt=INAUDIBLE, description="hertz", **_NUMBER)] | None


class TimelineSpec(TypedDict):
    """A timeline as written in JSON or TOML (see ``docs/timeline.md``)."""

    __pydantic_config__ = ConfigDict(extra="forbid", title="Timeline")  # type: ignore[misc]

    width: NotRequired[Side | None]
    height: NotRequired[Side | None]
    fps: NotRequired[Rate | None]
    background: NotRequired[Annotated[Colour, Field(default="#000000")]]
    text_color: NotRequired[Annotated[Colour, Field(default="#ffffff")]]
    font: NotRequired[FilePath | None]
    scenes: Annotated[list[SceneSpec], _SEQUENCE, Field(min_length=1)]
    soundtrack: NotRequired[SoundtrackSpec | None]


TIMELINE: Final = TypeAdapter(TimelineSpec)
COLOUR: Final = TypeAdapter(Colour)
SIDE: Final = TypeAdapter(Side)
RATE: Final = TypeAdapter(Rate)

TIMELINE_KEYS: Final = tuple(TimelineSpec.__annotations__)
SCENE_KEYS: Final = tuple(SceneSpec.__annotations__)
SOUNDTRACK_KEYS: Final = tuple(SoundtrackSpec.__annotations__)

# ---------------------------------------------------------------- JSON Schema


def json_schema(min_fps: float, max_fps: float, max_duration: float) -> dict[str, Any]:
    """The JSON Schema of :class:`TimelineSpec`, with the limits a schema can carry."""
    schema = TIMELINE.json_schema()
    properties = schema["properties"]
    rate = properties["fps"]["anyOf"][0]
    del rate["exclusiveMinimum"]
    rate.update(minimum=min_fps, maximum=max_fps)
    properties["scenes"]["description"] = (
        f"at least one scene, in playing order; together at most {max_duration:g} s "
        f"(their durations minus their crossfades)"
    )
    properties["width"]["description"] = properties["height"]["description"] = (
        "an even number of pixels; give both width and height, or neither"
    )
    schema["dependentSchemas"] = {
        side: {
            "if": {"properties": {side: {"type": "integer"}}},
            "then": {"required": [other], "properties": {other: {"type": "integer"}}},
        }
        for side, other in (("width", "height"), ("height", "width"))
    }
    # Exactly one of file and tone, either of which may also be written as null.
    schema["$defs"]["SoundtrackSpec"]["oneOf"] = [
        {"required": [key], "properties": {key: {"type": kind}}}
        for key, kind in (("file", "string"), ("tone", "number"))
    ]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
