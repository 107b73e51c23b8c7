"""A timeline stored on the project: its attribute read, its JSON text decoded, then parsed.

Pure Python like the timeline module, so checking a project's timeline costs no moviepy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from renderstate.rendering.timeline import Limits, Timeline, TimelineError, parse_timeline

__all__ = ["stored_timeline"]


def stored_timeline(
    project: Any, attribute: str, *, base_dir: Path | None, limits: Limits
) -> Timeline:
    """Return the timeline held by ``project``'s ``attribute`` (a mapping or its JSON text).

    Raises:
        TimelineError: the attribute is missing or ``None``, not JSON, or not a valid timeline.
    """
    data = getattr(project, attribute, None)
    if data is None:
        raise TimelineError(
            field=attribute,
            problem=(
                f"the project has no {attribute!r} value; store a timeline "
                f"there, or configure MoviePyRenderer(timeline_attribute=..., "
                f"timeline_file=... or clip_factory=...)"
            ),
        )
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise TimelineError(field=attribute, problem=f"is not valid JSON ({exc})") from exc
    return parse_timeline(data, base_dir=base_dir, limits=limits)
