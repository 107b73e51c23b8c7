"""Invalid timelines, each with the scene index and field its TimelineError must name."""

from __future__ import annotations

from typing import Any

BAD_TIMELINES: list[tuple[str, Any, int | None, str]] = [
    ("not a mapping", [1, 2], None, "timeline"),
    ("unknown top-level key", {"scenes": [{"duration": 1}], "sceens": []}, None, "sceens"),
    ("no scenes", {"width": 160, "height": 90}, None, "scenes"),
    ("empty scenes", {"scenes": []}, None, "scenes"),
    ("scene not a mapping", {"scenes": [{"duration": 1}, 3]}, 1, "scene"),
    ("unknown scene key", {"scenes": [{"duration": 1}, {"duration": 1, "titel": "x"}]}, 1, "titel"),
    ("missing duration", {"scenes": [{"duration": 1}, {"title": "x"}]}, 1, "duration"),
    ("zero duration", {"scenes": [{"duration": 0}]}, 0, "duration"),
    ("negative duration", {"scenes": [{"duration": 1}, {"duration": -1}]}, 1, "duration"),
    ("text duration", {"scenes": [{"duration": "2s"}]}, 0, "duration"),
    ("boolean duration", {"scenes": [{"duration": True}]}, 0, "duration"),
    ("infinite duration", {"scenes": [{"duration": float("inf")}]}, 0, "duration"),
    ("bad colour", {"scenes": [{"duration": 1, "background": "reddish"}]}, 0, "background"),
    ("bad hex", {"scenes": [{"duration": 1, "background": "#ggg"}]}, 0, "background"),
    (
        "channel out of range",
        {"scenes": [{"duration": 1, "text_color": [0, 0, 256]}]},
        0,
        "text_color",
    ),
    ("bad default colour", {"background": 7, "scenes": [{"duration": 1}]}, None, "background"),
    ("title not text", {"scenes": [{"duration": 1, "title": 5}]}, 0, "title"),
    ("missing image", {"scenes": [{"duration": 1, "image": "nowhere.png"}]}, 0, "image"),
    ("empty image path", {"scenes": [{"duration": 1, "image": ""}]}, 0, "image"),
    ("odd width", {"width": 161, "height": 90, "scenes": [{"duration": 1}]}, None, "width"),
    ("odd height", {"width": 160, "height": 91, "scenes": [{"duration": 1}]}, None, "height"),
    ("zero width", {"width": 0, "height": 90, "scenes": [{"duration": 1}]}, None, "width"),
    ("huge width", {"width": 10000, "height": 90, "scenes": [{"duration": 1}]}, None, "width"),
    ("float width", {"width": 160.0, "height": 90, "scenes": [{"duration": 1}]}, None, "width"),
    ("width alone", {"width": 160, "scenes": [{"duration": 1}]}, None, "height"),
    ("zero fps", {"fps": 0, "scenes": [{"duration": 1}]}, None, "fps"),
    ("absurd fps", {"fps": 1000, "scenes": [{"duration": 1}]}, None, "fps"),
    ("first scene crossfade", {"scenes": [{"duration": 1, "crossfade": 0.5}]}, 0, "crossfade"),
    (
        "negative crossfade",
        {"scenes": [{"duration": 1}, {"duration": 1, "crossfade": -1}]},
        1,
        "crossfade",
    ),
    (
        "crossfade longer than the previous scene",
        {"scenes": [{"duration": 1}, {"duration": 3, "crossfade": 2}]},
        1,
        "crossfade",
    ),
    (
        "crossfades that overlap each other",
        {
            "scenes": [
                {"duration": 2},
                {"duration": 1, "crossfade": 0.6},
                {"duration": 2, "crossfade": 0.6},
            ]
        },
        2,
        "crossfade",
    ),
    (
        "soundtrack not a mapping",
        {"scenes": [{"duration": 1}], "soundtrack": "beep"},
        None,
        "soundtrack",
    ),
    ("soundtrack empty", {"scenes": [{"duration": 1}], "soundtrack": {}}, None, "soundtrack"),
    (
        "soundtrack file and tone",
        {"scenes": [{"duration": 1}], "soundtrack": {"tone": 440, "file": "a.wav"}},
        None,
        "soundtrack",
    ),
    (
        "unknown soundtrack key",
        {"scenes": [{"duration": 1}], "soundtrack": {"tone": 440, "loop": True}},
        None,
        "loop",
    ),
    (
        "missing audio file",
        {"scenes": [{"duration": 1}], "soundtrack": {"file": "missing.mp3"}},
        None,
        "soundtrack.file",
    ),
    (
        "inaudible tone",
        {"scenes": [{"duration": 1}], "soundtrack": {"tone": 30000}},
        None,
        "soundtrack.tone",
    ),
    (
        "negative volume",
        {"scenes": [{"duration": 1}], "soundtrack": {"tone": 440, "volume": -1}},
        None,
        "soundtrack.volume",
    ),
    # JSON integers too large for a float (309+ digits) are refused, not an OverflowError.
    ("huge integer duration", {"scenes": [{"duration": 10**400}]}, 0, "duration"),
    (
        "huge integer crossfade",
        {"scenes": [{"duration": 1}, {"duration": 1, "crossfade": 10**400}]},
        1,
        "crossfade",
    ),
    ("huge integer fps", {"fps": 10**400, "scenes": [{"duration": 1}]}, None, "fps"),
    (
        "huge integer tone",
        {"scenes": [{"duration": 1}], "soundtrack": {"tone": 10**400}},
        None,
        "soundtrack.tone",
    ),
    (
        "huge integer volume",
        {"scenes": [{"duration": 1}], "soundtrack": {"tone": 440, "volume": 10**400}},
        None,
        "soundtrack.volume",
    ),
    # Frame rates outside 1..240 fps.
    ("vanishing fps", {"fps": 1e-9, "scenes": [{"duration": 1}]}, None, "fps"),
    ("fps below one", {"fps": 0.5, "scenes": [{"duration": 1}]}, None, "fps"),
    # Colours: hex digits only, not what int(..., 16) also takes.
    ("signed hex colour", {"scenes": [{"duration": 1, "background": "#-11111"}]}, 0, "background"),
    ("plus hex colour", {"scenes": [{"duration": 1, "background": "#+1234f"}]}, 0, "background"),
    (
        "underscored hex colour",
        {"scenes": [{"duration": 1, "background": "#12_345"}]},
        0,
        "background",
    ),
    ("spaced hex colour", {"scenes": [{"duration": 1, "background": "# 1234f"}]}, 0, "background"),
    # Durations are bounded (one hour by default).
    ("one-day scene", {"scenes": [{"duration": 86400}]}, 0, "duration"),
    ("1e12 s scene", {"scenes": [{"duration": 1e12}]}, 0, "duration"),
    (
        "scenes adding up to more than an hour",
        {"scenes": [{"duration": 1800}, {"duration": 1800}, {"duration": 1}]},
        2,
        "duration",
    ),
    # A video shorter than one frame has no picture.
    ("shorter than a frame", {"fps": 24, "scenes": [{"duration": 0.04}]}, None, "duration"),
    # Text a database column or a font cannot hold: PostgreSQL refuses NUL, and a lone
    # surrogate (JSON "\ud800") cannot be encoded at all.
    ("NUL in a title", {"scenes": [{"duration": 1, "title": "a\x00b"}]}, 0, "title"),
    (
        "lone surrogate in a subtitle",
        {"scenes": [{"duration": 1, "subtitle": "\ud800"}]},
        0,
        "subtitle",
    ),
    # A name longer than the file system allows (ENAMETOOLONG) is a missing file, not a 500.
    (
        "image name too long",
        {"scenes": [{"duration": 1, "image": "a" * 5000 + ".png"}]},
        0,
        "image",
    ),
    (
        "soundtrack name too long",
        {"scenes": [{"duration": 1}], "soundtrack": {"file": "b" * 300}},
        None,
        "soundtrack.file",
    ),
]
