"""The install instructions a new user follows: from a clone until a release exists."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return set(project["optional-dependencies"])


def test_install_section_says_how_to_install_from_a_clone() -> None:
    """The package is on no index yet: the docs install from a clone, every extra included."""
    section = (ROOT / "docs" / "index.md").read_text("utf-8").split("## Install", 1)[1]
    section = section.split("\n## ", 1)[0]
    assert "not on a package index yet" in section
    assert "git clone" in section
    shown = set(re.findall(r"pip install '\./renderstate\[(\w+)\]'", section))
    assert {"django", "render", "cli", "all"} <= shown <= _extras()


def test_every_documented_extra_exists() -> None:
    """Each `renderstate[extra]` the docs and README name is an extra of pyproject.toml."""
    texts = [p.read_text("utf-8") for p in (ROOT / "docs").rglob("*.md")]
    texts.append((ROOT / "README.md").read_text("utf-8"))
    named = {m for text in texts for m in re.findall(r"renderstate\[(\w+)\]", text)}
    assert named
    assert named <= _extras(), named - _extras()
