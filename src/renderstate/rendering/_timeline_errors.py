"""Which error of a timeline is reported, and in what words: pydantic's errors as TimelineErrors.

pydantic reports every error it finds in a timeline with its location; :func:`first_problem`
picks the one the timeline's own order puts first (a timeline-wide key before a scene, scene
0 before scene 1, and within a scene the order of ``docs/timeline.md``) and
:func:`timeline_error` writes its message: the field, what is wrong with the value and what
would be accepted. The file checks in ``_timeline_checks`` take their turns in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from renderstate.exceptions import TimelineError
from renderstate.rendering._timeline_schema import (
    COLOUR,
    INAUDIBLE,
    MAX_VOLUME,
    RATE,
    SCENE_KEYS,
    SIDE,
    SOUNDTRACK_KEYS,
    TIMELINE,
    TIMELINE_KEYS,
    ValidationError,
)
from renderstate.rendering.timeline import MAX_SIDE

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = [
    "COLOUR_PROBLEM",
    "CROSSFADES",
    "END",
    "FONT_FILE",
    "FRAME_RATE_LIMITS",
    "MAPPING_WITH_KNOWN_KEYS",
    "SCENE_LIST",
    "SIZE_PAIR",
    "SOUNDTRACK_CHOICE",
    "SOUNDTRACK_FILE",
    "SOUNDTRACK_TONE",
    "Rank",
    "check_fps",
    "check_side",
    "first_problem",
    "fps_problem",
    "is_colour",
    "scene_end",
    "scene_file",
    "timeline_error",
]

# ---------------------------------------------------------------- order

Rank = tuple[int, ...]
"""Where a check sits in the order a timeline is read; the smallest rank is reported."""

# A timeline-wide key's rank is its place here: 0 is "not a mapping", 1 an unknown key,
# 4 the width/height pair; the scenes' own ranks go under 9 and the soundtrack's under 10.
_TOP_RANK = {"width": 2, "height": 3, "fps": 5, "background": 6, "text_color": 7, "font": 8}
_SCENES, _SOUNDTRACK = 9, 10
_SCENE_RANK = {key: 3 + i for i, key in enumerate(SCENE_KEYS)}  # 2: a missing duration
_SOUNDTRACK_RANK = {"volume": 3, "file": 4, "tone": 5}  # 2: "exactly one of file and tone"


# Where the checks of _timeline_checks take their turns among pydantic's errors: each one
# after every error ranked before it has been raised.
MAPPING_WITH_KNOWN_KEYS: Final = (2,)
SIZE_PAIR: Final = (4,)
FRAME_RATE_LIMITS: Final = (_TOP_RANK["fps"], 1)
FONT_FILE: Final = (_TOP_RANK["font"], 1)
SCENE_LIST: Final = (_SCENES, 1)
CROSSFADES: Final = (_SCENES, 2)
SOUNDTRACK_CHOICE: Final = (_SOUNDTRACK, 2)
SOUNDTRACK_FILE: Final = (_SOUNDTRACK, _SOUNDTRACK_RANK["file"], 1)
SOUNDTRACK_TONE: Final = (_SOUNDTRACK, _SOUNDTRACK_RANK["tone"] + 1)
END: Final = (_SOUNDTRACK + 1,)


def scene_file(index: int, field: str) -> Rank:
    """The turn of scene ``index``'s ``font`` or ``image`` file check."""
    return (_SCENES, 1, index, _SCENE_RANK[field], 1)


def scene_end(index: int) -> Rank:
    """The turn after every check of scene ``index``."""
    return (_SCENES, 1, index + 1)


def _position(container: object, key: object) -> int:
    keys = list(container) if isinstance(container, Mapping) else []
    return keys.index(key) if key in keys else len(keys)


def rank(error: ErrorDetails, data: Any) -> Rank:
    """The place of a pydantic ``error`` in the order ``data`` is read (see the module doc)."""
    loc = error["loc"]
    if len(loc) < 2 or loc[0] not in ("scenes", "soundtrack"):
        return _top_rank(loc, data)
    if loc[0] == "soundtrack":
        return _soundtrack_rank(loc[1], data["soundtrack"])
    index = int(loc[1])
    if len(loc) == 2:
        return (_SCENES, 1, index, 0)
    field = loc[2]
    if field not in _SCENE_RANK:
        return (_SCENES, 1, index, 1, _position(data["scenes"][index], field))
    if len(loc) == 3 and error["type"] == "missing":
        return (_SCENES, 1, index, 2)
    return (_SCENES, 1, index, _SCENE_RANK[str(field)])


def _soundtrack_rank(field: int | str, raw: object) -> Rank:
    if field in _SOUNDTRACK_RANK:
        return (_SOUNDTRACK, _SOUNDTRACK_RANK[str(field)])
    return (_SOUNDTRACK, 1, _position(raw, field))


def _top_rank(loc: tuple[int | str, ...], data: object) -> Rank:
    if not loc:
        return (0,)
    key = loc[0]
    if key in ("scenes", "soundtrack"):
        return (_SCENES if key == "scenes" else _SOUNDTRACK, 0)
    return (_TOP_RANK[str(key)],) if key in _TOP_RANK else (1, _position(data, key))


def first_problem(data: object) -> tuple[Rank, ErrorDetails] | None:
    """The first error pydantic finds in ``data`` by the timeline's order, or ``None``."""
    try:
        TIMELINE.validate_python(data)
    except ValidationError as exc:
        errors = [(rank(e, data), e) for e in exc.errors() if not _left_to_files(e)]
        return min(errors, key=lambda pair: pair[0]) if errors else None
    return None


def _left_to_files(error: ErrorDetails) -> bool:
    # A path with a lone surrogate is a str pydantic refuses; the file checks judge it
    # (confinement first), as they judge every other path string.
    return error["type"] == "string_unicode" and error["loc"][-1] in ("font", "image", "file")


# ---------------------------------------------------------------- messages

COLOUR_PROBLEM: Final = (
    "{value!r} is not a colour; write it as '#rrggbb' (for example '#1e3a5f'), "
    "'#rgb' or a list [r, g, b] of integers 0-255"
)


def short(value: object) -> str:
    """``repr(value)``, cut short: a 400-digit number makes an unreadable message."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def size_problem(value: object) -> str:
    """Why ``value`` is not a frame side, and the sides that would do."""
    if isinstance(value, int) and not isinstance(value, bool) and 2 <= value <= MAX_SIDE:
        return (
            f"{value} is odd; H.264 in yuv420p (what browsers play) needs even sides, "
            f"use {value - 1} or {value + 1}"
        )
    return f"must be an integer number of pixels from 2 to {MAX_SIDE}, got {value!r}"


def fps_problem(value: object, min_fps: float, max_fps: float) -> str:
    """Why ``value`` is not a frame rate within ``min_fps`` .. ``max_fps``."""
    return (
        f"must be a number of frames per second from {min_fps:g} to {max_fps:g}, got {short(value)}"
    )


def _text_problem(value: object) -> str:
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if "\x00" in value:
        return "contains a NUL character (\\u0000); remove it"
    lone = next((c for c in value if 0xD800 <= ord(c) <= 0xDFFF), value)
    return (
        f"contains an unpaired surrogate ({lone!r}), which is not text; "
        f"send the character itself or its UTF-16 pair"
    )


def _keys_problem(what: str, keys: tuple[str, ...]) -> str:
    return (
        f"is not a {what} key; the {what} keys are {', '.join(sorted(keys))} (check the spelling)"
    )


def _scene_problem(field: str, value: object, error: ErrorDetails) -> str:
    if len(error["loc"]) == 3 and error["type"] == "missing":
        return "is missing; give every scene a duration"
    if field == "duration":
        return f"must be a number of seconds greater than 0, got {short(value)}"
    if field == "crossfade":
        return f"must be a number of seconds, 0 or more, got {short(value)}"
    if field in ("background", "text_color"):
        return COLOUR_PROBLEM.format(value=value)
    if field in ("title", "subtitle"):
        return _text_problem(value)
    return f"must be a file path string, got {value!r}"  # font, image


def _finite(value: object) -> float | None:
    """``value`` as a float if the schema's numbers would take it (not a bool, not too big)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # a JSON integer of 309+ digits: no float holds it
        return None
    return number if math.isfinite(number) else None


def _soundtrack_problem(field: str, value: object) -> str:
    if field == "volume":
        return f"must be a number from 0 to {MAX_VOLUME} (1.0 keeps the level), got {short(value)}"
    if field == "file":
        return f"must be a file path string, got {value!r}"
    number = _finite(value)
    if number is not None and number > 0:
        return f"{number:g} Hz is inaudible; use 20 to {INAUDIBLE} Hz"
    return f"must be a number of hertz greater than 0, got {short(value)}"


def timeline_error(data: Any, error: ErrorDetails, min_fps: float, max_fps: float) -> TimelineError:
    """The :class:`TimelineError` for one pydantic ``error`` in ``data``: field, problem, fix."""
    loc = error["loc"]
    if not loc:
        return TimelineError(
            field="timeline",
            problem=f"expected a mapping with a 'scenes' list, got {type(data).__name__}",
        )
    if loc[0] == "scenes":
        return _scenes_error(data.get("scenes"), error)
    if loc[0] == "soundtrack":
        return _soundtrack_error(data["soundtrack"], loc)
    field = str(loc[0])
    value = data.get(loc[0])
    if field in ("width", "height"):
        problem = size_problem(value)
    elif field == "fps":
        problem = fps_problem(value, min_fps, max_fps)
    elif field in ("background", "text_color"):
        problem = COLOUR_PROBLEM.format(value=value)
    elif field == "font":
        problem = f"must be a file path string, got {value!r}"
    else:
        problem = _keys_problem("timeline", TIMELINE_KEYS)
    return TimelineError(field=field, problem=problem)


def _scenes_error(scenes: Any, error: ErrorDetails) -> TimelineError:
    loc = error["loc"]
    if len(loc) == 1:
        return TimelineError(
            field="scenes",
            problem=(
                f"expected a non-empty list of scenes, got {scenes!r}; "
                f"add at least one scene such as {{'duration': 2, 'title': 'Hello'}}"
            ),
        )
    index = int(loc[1])
    raw = scenes[index]
    if len(loc) == 2:
        problem = f"expected a mapping such as {{'duration': 2}}, got {type(raw).__name__}"
        return TimelineError(scene=index, field="scene", problem=problem)
    field = str(loc[2])
    if field not in SCENE_KEYS:
        problem = _keys_problem("scene", SCENE_KEYS)
    else:
        problem = _scene_problem(field, raw.get(field), error)
    return TimelineError(scene=index, field=field, problem=problem)


def _soundtrack_error(raw: Any, loc: tuple[int | str, ...]) -> TimelineError:
    if len(loc) == 1:
        problem = (
            f"expected a mapping such as {{'tone': 440}} or {{'file': 'music.mp3'}}, "
            f"got {type(raw).__name__}"
        )
        return TimelineError(field="soundtrack", problem=problem)
    field = str(loc[1])
    if field not in SOUNDTRACK_KEYS:
        return TimelineError(field=field, problem=_keys_problem("soundtrack", SOUNDTRACK_KEYS))
    return TimelineError(
        field=f"soundtrack.{field}", problem=_soundtrack_problem(field, raw.get(field))
    )


# ---------------------------------------------------------------- single values


def is_colour(value: object) -> bool:
    """Whether ``value`` is a colour the schema accepts."""
    try:
        COLOUR.validate_python(value)
    except ValidationError:
        return False
    return True


def check_side(value: object, field: str) -> int:
    """``value`` as a frame side (an even integer, 2 to :data:`MAX_SIDE` pixels)."""
    try:
        return SIDE.validate_python(value)
    except ValidationError:
        raise TimelineError(field=field, problem=size_problem(value)) from None


def check_fps(value: object, min_fps: float, max_fps: float) -> float:
    """``value`` as a frame rate from ``min_fps`` to ``max_fps``."""
    try:
        rate = RATE.validate_python(value)
    except ValidationError:
        rate = 0.0
    if not min_fps <= rate <= max_fps:
        raise TimelineError(field="fps", problem=fps_problem(value, min_fps, max_fps))
    return rate
