"""The user's own moviepy clip (``clip_factory``), checked before it is written, and closing clips.

A clip from ``clip_factory`` can be anything moviepy draws; before any frame is written it
must have a duration, even sides, a frame rate and a length within the limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from renderstate.rendering.timeline import Limits, TimelineError, check_frames, check_output_format

__all__ = ["close_clip", "user_clip"]


def user_clip(
    clip_factory: Callable[[Any], Any],
    project: Any,
    owned: list[Any],
    *,
    fps: float | None,
    fallback_fps: object,
    limits: Limits,
) -> tuple[Any, Any, float]:
    """Return ``(video clip without audio or mask, audio clip or None, fps)`` of the user's clip.

    The rate is ``fps`` (the renderer's) if set, else the clip's own, else ``fallback_fps``
    (the project's, or the default). The clip is appended to ``owned`` before it is
    checked, so the caller closes it whatever happens.

    Raises:
        TimelineError: the clip has no duration, odd sides, a rate or length beyond limits.
    """
    clip = clip_factory(project)
    owned.append(clip)
    if getattr(clip, "duration", None) is None:
        raise TimelineError(
            field="clip_factory",
            problem="returned a clip without a duration; call .with_duration() on it",
        )
    width, height = clip.size
    if width % 2 or height % 2:
        raise TimelineError(
            field="clip_factory",
            problem=(
                f"returned a {width}x{height} clip; H.264 in yuv420p needs even sides, "
                f"resize it (clip.resized(...)) to even dimensions"
            ),
        )
    rate_asked = fps or getattr(clip, "fps", None) or fallback_fps
    _, _, rate = check_output_format(width, height, rate_asked, limits=limits)
    duration = float(clip.duration)
    if duration > limits.max_duration:
        raise TimelineError(
            field="clip_factory",
            problem=(
                f"returned a {duration:g} s clip, longer than the "
                f"{limits.max_duration:g} s limit; pass "
                f"MoviePyRenderer(limits=Limits(max_duration=...)) to allow it"
            ),
        )
    check_frames(duration, rate)
    audio = clip.audio
    video = clip.without_audio()
    if video.mask is not None:
        # A mask would make moviepy feed ffmpeg RGBA; the picture over black is what
        # a browser would show anyway.
        video = video.without_mask()
    return video, audio, rate


def close_clip(clip: Any) -> None:
    """Close ``clip`` and the ffmpeg pipes its file readers leave open.

    moviepy 2.2.1's readers close their pipes only when ffmpeg is still running; after a
    file has been read to its end they leave stdout and stderr open (a ResourceWarning and
    two file descriptors per render).
    """
    procs = [
        getattr(getattr(owner, "reader", None), "proc", None)
        for owner in (clip, getattr(clip, "audio", None))
    ]
    clip.close()
    for proc in procs:
        if proc is None:
            continue
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait()
