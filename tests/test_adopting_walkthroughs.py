"""docs/adopting.md's two swaps: every diff it shows is the example app's code.

Each ```diff block names the example file it changes (``+++ examples/...``); every added or
context line is a line of that file, and no removed line is (the example is the app after
the swap). The apps themselves are run by tests/test_examples.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "adopting.md"


def _diffs() -> list[tuple[str, list[str]]]:
    blocks = re.findall(r"^```diff\n(.*?)^```", PAGE.read_text("utf-8"), re.MULTILINE | re.DOTALL)
    found = []
    for block in blocks:
        header, *lines = block.splitlines()
        assert header.startswith("+++ examples/"), f"a diff names its example file: {header!r}"
        found.append((header.removeprefix("+++ "), lines))
    return found


DIFFS = _diffs()


def test_each_walkthrough_has_diffs() -> None:
    """Both apps' walkthroughs show their swap as diffs of their examples."""
    apps = {path.split("/")[1] for path, _ in DIFFS}
    assert apps == {"adopting_threads", "adopting_celery_hls"}


@pytest.mark.parametrize(
    ("path", "lines"), DIFFS, ids=[f"{p}#{n}" for n, (p, _) in enumerate(DIFFS)]
)
def test_a_diff_is_the_examples_code(path: str, lines: list[str]) -> None:
    """Added and context lines are in the example's file; no run of removed lines is."""
    code = [line.strip() for line in (ROOT / path).read_text("utf-8").splitlines()]
    removed: list[str] = []
    runs = []
    for line in [*lines, " "]:
        sign, text = line[:1], line[1:].strip()
        assert sign in ("+", "-", " "), f"a diff line starts with +, - or a space: {line!r}"
        if sign == "-":
            removed.append(text)
            continue
        if removed:
            runs.append(removed)
            removed = []
        if text:
            assert text in code, f"{path} has no line {text!r}"
    for run in runs:
        width = len(run)
        windows = [code[i : i + width] for i in range(len(code) - width + 1)]
        assert run not in windows, f"{path} still has {run}, which the swap removes"
