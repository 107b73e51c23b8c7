"""Output-path validation: the one rule for what a stored video path may look like.

A project's output path is stored in the model and served below the media root, so it must
be a URL-relative POSIX path: no scheme, not absolute, no ``..``, normalised, no control or
format characters. :func:`validate_output_path` says which rule a path breaks.

This module imports nothing of renderstate but its exceptions, so the job spec, the
lifecycle and file publishing can all check a path without importing one another.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from typing import Final

from renderstate.exceptions import InvalidOutputPathError

__all__ = ["validate_output_path"]

_SCHEME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
# Paths every rule below accepts: segments of ASCII letters, digits, '_', '-' and '.', each
# starting with a letter, digit, '_' or '-' (so never '', '.' or '..'), no ':' (no scheme).
# One match answers the common case; anything else goes through the rules and their reasons.
_PLAIN_PATH: Final = re.compile(r"[\w\-][\w\-.]*(?:/[\w\-][\w\-.]*)*", re.ASCII)
# Unicode categories refused anywhere in a path: controls (C0, DEL and C1 such as \x85 and
# \x9b), format characters (bidi overrides, zero-width spaces), surrogates, private-use and
# unassigned code points, and the line and paragraph separators.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _refused_character(path: str) -> str | None:
    if path.isascii():
        found = _CONTROL.search(path)
        return None if found is None else found.group()
    for char in path:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def validate_output_path(path: object) -> str:
    """Return ``path`` as a URL-relative POSIX string, or raise :class:`InvalidOutputPathError`."""
    if type(path) is str and _PLAIN_PATH.fullmatch(path) is not None:
        return path
    if isinstance(path, PurePosixPath):
        path = str(path)
    if not isinstance(path, str):
        raise InvalidOutputPathError(path=path, reason=f"it is a {type(path).__name__}, not a str")
    reason = None
    if not path.strip():
        reason = "it is empty"
    elif (char := _refused_character(path)) is not None:
        name = "NUL" if char == "\0" else unicodedata.name(char, "")
        reason = (
            f"it contains the control or format character {char!r} (U+{ord(char):04X}"
            f"{' ' + name if name else ''}); "
            f"paths may not contain control, format, private-use or unassigned characters"
        )
    elif "\\" in path:
        reason = "it contains a backslash; use '/' as the separator"
    elif _SCHEME.match(path):
        reason = "it has a URL scheme; store the path below the media root, not a URL"
    elif path.startswith("/"):
        reason = "it is absolute"
    else:
        segments = path.split("/")
        if ".." in segments:
            reason = "it contains a '..' segment"
        elif "." in segments or "" in segments:
            reason = "it is not normalised (empty or '.' segments)"
    if reason is not None:
        raise InvalidOutputPathError(path=path, reason=reason)
    return path
