"""Pre-composited scene pictures and the crossfading frame function (Pillow + numpy only).

Each scene is drawn once, background, image and text together, into one RGB array. The frame
function hands that same array back for every frame of the scene, and computes a blend only
during a crossfade; nothing here carries a mask, so ffmpeg is fed plain ``rgb24``. Scenes are
drawn when first shown and only the last two are kept (a crossfade needs both), so memory
does not grow with the number of scenes.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from renderstate.rendering._fonts import load_font
from renderstate.rendering.timeline import Scene, Timeline, TimelineError

Frame = Any
"""An ``(height, width, 3)`` ``uint8`` numpy array."""


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, max_width: float) -> str:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if line and draw.textlength(candidate, font=font) > max_width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return "\n".join(lines)


def draw_scene(scene: Scene, width: int, height: int, *, index: int) -> Frame:
    """Draw ``scene`` at ``width`` x ``height`` into one RGB ``uint8`` array.

    Raises:
        TimelineError: the scene's image cannot be decoded.
    """
    picture = Image.new("RGB", (width, height), scene.background)
    if scene.image is not None:
        try:
            with Image.open(scene.image) as source:
                cover = ImageOps.fit(
                    source.convert("RGB"), (width, height), Image.Resampling.LANCZOS
                )
        except (OSError, UnidentifiedImageError) as exc:
            raise TimelineError(
                scene=index,
                field="image",
                problem=f"{scene.image.name!r} is not a readable picture ({exc}); use PNG or JPEG",
            ) from exc
        picture.paste(cover)
    draw = ImageDraw.Draw(picture)
    blocks = []
    for text, scale in ((scene.title, 0.1), (scene.subtitle, 0.05)):
        if not text.strip():
            continue
        # The scene's font, or the bundled DejaVu Sans: identical output on every machine.
        font = load_font(scene.font, max(8, round(height * scale)))
        wrapped = _wrap(draw, text, font, width * 0.9)
        _, top, _, bottom = draw.multiline_textbbox((0, 0), wrapped, font=font, align="center")
        blocks.append((wrapped, font, bottom - top, top))
    gap = round(height * 0.03)
    total = sum(block[2] for block in blocks) + gap * max(0, len(blocks) - 1)
    y = (height - total) / 2
    shadow = max(1, height // 240)
    for wrapped, font, block_height, top in blocks:
        origin = (width / 2, y - top)
        if scene.image is not None:
            # A dark offset copy keeps light text legible on a busy picture.
            draw.multiline_text(
                (origin[0] + shadow, origin[1] + shadow),
                wrapped,
                font=font,
                fill=(0, 0, 0),
                anchor="ma",
                align="center",
            )
        draw.multiline_text(
            origin, wrapped, font=font, fill=scene.text_color, anchor="ma", align="center"
        )
        y += block_height + gap
    return np.ascontiguousarray(np.asarray(picture, dtype=np.uint8))


def verify_images(timeline: Timeline) -> None:
    """Check that every scene's image is a picture Pillow can read, without decoding it all.

    Raises:
        TimelineError: naming the first scene whose image is not a readable picture.
    """
    for index, scene in enumerate(timeline.scenes):
        if scene.image is None:
            continue
        try:
            with Image.open(scene.image) as source:
                source.verify()
        # Pillow's verify() reports a corrupt PNG chunk as SyntaxError.
        except (OSError, SyntaxError, ValueError) as exc:
            raise TimelineError(
                scene=index,
                field="image",
                problem=f"{scene.image.name!r} is not a readable picture ({exc}); use PNG or JPEG",
            ) from exc


class SceneFrames:
    """The scenes' pictures, each drawn on first use; the two most recent are kept."""

    def __init__(self, timeline: Timeline, width: int, height: int) -> None:
        self._scenes = timeline.scenes
        self._width = width
        self._height = height
        self._drawn: dict[int, Frame] = {}

    def __len__(self) -> int:
        return len(self._scenes)

    def __getitem__(self, index: int) -> Frame:
        frame = self._drawn.get(index)
        if frame is None:
            frame = draw_scene(self._scenes[index], self._width, self._height, index=index)
            if len(self._drawn) >= 2:
                # Frames are asked for in time order: the scene furthest away is done with.
                del self._drawn[max(self._drawn, key=lambda drawn: abs(drawn - index))]
            self._drawn[index] = frame
        return frame


def _locator(timeline: Timeline) -> Callable[[float], tuple[int, bool]]:
    """Return ``t -> (scene index, whether the frame at t is a crossfade blend)``."""
    starts = timeline.starts
    fades = [scene.crossfade for scene in timeline.scenes]
    last = len(timeline.scenes) - 1

    def locate(t: float) -> tuple[int, bool]:
        index = min(max(bisect.bisect_right(starts, t) - 1, 0), last)
        return index, bool(index and t - starts[index] < fades[index])

    return locate


_BLEND_ROWS = 64
"""Rows blended at a time: the float32 scratch stays a few MB even for 4K frames."""


def _blend(before: Frame, after: Frame, weight: np.float32) -> Frame:
    """Return ``before + (after - before) * weight``, rounded, as ``uint8``.

    Computed in bands of rows: the same float32 arithmetic per pixel as on whole frames,
    without whole-frame float32 temporaries (four of them, 25 MB each at 1080p).
    """
    out = np.empty_like(after)
    for top in range(0, after.shape[0], _BLEND_ROWS):
        band = slice(top, top + _BLEND_ROWS)
        low = before[band].astype(np.float32)
        low += (after[band].astype(np.float32) - low) * weight
        low += np.float32(0.5)
        out[band] = low.astype(np.uint8)
    return out


def frame_function(timeline: Timeline, frames: SceneFrames) -> Callable[[float], Frame]:
    """Return ``t -> frame`` over the scenes' ``frames``, blending only during crossfades."""
    starts = timeline.starts
    fades = [scene.crossfade for scene in timeline.scenes]
    locate = _locator(timeline)

    def frame_at(t: float) -> Frame:
        index, blend = locate(t)
        if blend:
            weight = np.float32((t - starts[index]) / fades[index])
            return _blend(frames[index - 1], frames[index], weight)
        return frames[index]

    return frame_at


class Run(NamedTuple):
    """Consecutive output frames ``start`` .. ``end - 1`` that show one kind of picture."""

    start: int
    end: int
    scene: int
    """The scene shown (for a crossfade, the scene faded into)."""
    moving: bool
    """``False``: every frame is the scene's one picture. ``True``: each frame is computed."""


def frame_runs(timeline: Timeline, fps: float, count: int) -> list[Run]:
    """Split output frames ``0 .. count - 1`` (frame ``i`` at ``i / fps``) into runs.

    Uses the very test :func:`frame_function` uses to pick a frame, evaluated at a few
    frames per run (an exponential then binary search for each run's end), so the work
    grows with the number of scenes, not with the video's length.
    """
    locate = _locator(timeline)

    def kind(frame: int) -> tuple[int, bool]:
        return locate(frame / fps)

    runs: list[Run] = []
    start = 0
    while start < count:
        current = kind(start)
        known, step = start, 1  # kind(known) == current
        while known + step < count and kind(known + step) == current:
            known += step
            step *= 2
        beyond = min(known + step, count)  # the first frame known not to be in the run
        while beyond - known > 1:
            middle = (known + beyond) // 2
            if kind(middle) == current:
                known = middle
            else:
                beyond = middle
        runs.append(Run(start, beyond, current[0], current[1]))
        start = beyond
    return runs


def tone_function(frequency: float, volume: float) -> Callable[[Any], Any]:
    """Return moviepy's stereo audio frame function for a sine tone.

    moviepy calls it with a scalar ``t`` once to count the channels, then with arrays of
    times: the answer must be ``(2,)`` for a scalar and ``(N, 2)`` for an array, or moviepy
    infers the wrong channel count and writes audio of twice the video's length.
    """
    amplitude = 0.25 * volume

    def sound(t: Any) -> Any:
        wave = amplitude * np.sin(2 * np.pi * frequency * np.asarray(t, dtype=np.float64))
        if wave.ndim == 0:
            return np.array([wave, wave])
        return np.column_stack([wave, wave])

    return sound
