"""The font titles are drawn with, and the check that it has a glyph for every character.

The default is DejaVu Sans, shipped inside the package (``fonts/``, with its licence): it
covers Latin, Greek and Cyrillic, among others, on every machine, with no system font. A
timeline (``font``) or the renderer (``MoviePyRenderer(font=...)``) can name another TrueType
or OpenType file.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from PIL import ImageFont

from renderstate.rendering.timeline import Timeline, TimelineError

__all__ = ["DEFAULT_FONT", "load_font", "missing_characters", "verify_text"]

DEFAULT_FONT = Path(__file__).with_name("fonts") / "DejaVuSans.ttf"
"""DejaVu Sans 2.37, bundled (Bitstream Vera licence, see ``fonts/LICENSE-DejaVu.txt``)."""

_NOT_A_CHARACTER = "\U0010ffff"
"""A code point no font maps: what it draws is the font's "missing glyph" box."""


def load_font(path: Path | None, size: int) -> ImageFont.FreeTypeFont:
    """Open ``path`` (the bundled font when ``None``) at ``size`` pixels, cached.

    The cache knows a font by its file (device, inode, size, modification time), not by
    its path: a render reads its fonts through paths to files it holds open
    (``/proc/<pid>/fd/<n>``), which a later render's different font can have too.
    """
    return _load(_FontFile.of(path), size)


@dataclasses.dataclass(frozen=True)
class _FontFile:
    """A font file as a cache key: equal to another when it is the same file."""

    path: Path | None = dataclasses.field(compare=False)
    identity: tuple[int, int, int, int] | None

    @classmethod
    def of(cls, path: Path | None) -> _FontFile:
        if path is None:
            return cls(None, None)
        found = path.stat()
        return cls(path, (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns))


@functools.lru_cache(maxsize=32)
def _load(font: _FontFile, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font.path or DEFAULT_FONT), size)


def _drawn(font: ImageFont.FreeTypeFont, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


@functools.lru_cache(maxsize=4096)
def _has_glyph(font_file: _FontFile, char: str) -> bool:
    font = _load(font_file, 32)
    return _drawn(font, char) != _drawn(font, _NOT_A_CHARACTER)


def missing_characters(path: Path | None, text: str) -> list[str]:
    """The characters of ``text`` that the font at ``path`` would draw as an empty box."""
    font_file = _FontFile.of(path)
    return sorted({c for c in text if not c.isspace() and not _has_glyph(font_file, c)})


def verify_text(timeline: Timeline) -> None:
    """Check that every scene's font opens and can draw each character of its text.

    Raises:
        TimelineError: naming the scene, the field and the characters (or the font file).
    """
    for index, scene in enumerate(timeline.scenes):
        try:
            load_font(scene.font, 32)
        except OSError as exc:
            raise TimelineError(
                scene=index,
                field="font",
                problem=(
                    f"{(scene.font or DEFAULT_FONT).name!r} is not a font file Pillow can "
                    f"open ({exc}); use a TrueType (.ttf) or OpenType (.otf) font"
                ),
            ) from exc
        for field in ("title", "subtitle"):
            missing = missing_characters(scene.font, getattr(scene, field))
            if missing:
                name = "the bundled DejaVu Sans" if scene.font is None else repr(scene.font.name)
                shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:10])
                more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
                raise TimelineError(
                    scene=index,
                    field=field,
                    problem=(
                        f"{shown}{more} cannot be drawn with {name}, which has no glyph for "
                        f"{'it' if len(missing) == 1 else 'them'}; remove them, or name a font "
                        f"that has them (the timeline's 'font' key or "
                        f"MoviePyRenderer(font=...))"
                    ),
                )
