"""The built documentation shows every included file as its content, never as a marker."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.slow

# Anything that looks like a snippets marker, even one a formatter took apart
# (`--8 < --"file"`, `-- 8<--`): pymdownx.snippets would have replaced a well-formed one.
MARKER_AS_TEXT = re.compile(r"-\s*-\s*8\s*<\s*-\s*-")
# A well-formed include line in a Markdown source: `--8<-- "path"` or `--8<-- "path:section"`.
INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.MULTILINE)


class _Text(HTMLParser):
    """The text a reader sees on a page: tags dropped, entities decoded, scripts skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _text_of(page: Path) -> str:
    parser = _Text()
    parser.feed(page.read_text("utf-8"))
    return html.unescape("".join(parser.parts))


def _snippet(target: str) -> list[str]:
    """The lines an include stands for (a `path:section` names a `[start:section]` block)."""
    path, _, section = target.partition(":")
    lines = (ROOT / path).read_text("utf-8").splitlines()
    if not section:
        return lines
    start = next(i for i, line in enumerate(lines) if f"--8<-- [start:{section}]" in line)
    end = next(i for i, line in enumerate(lines) if f"--8<-- [end:{section}]" in line)
    return lines[start + 1 : end]


def _page_of(source: Path, site: Path) -> Path:
    relative = source.relative_to(DOCS).with_suffix("")
    if relative.name == "index":
        return site / relative.parent / "index.html"
    return site / relative / "index.html"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One strict build of the documentation, as `mkdocs build --strict` makes it."""
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mkdocs is not installed (the `docs` dependency group)")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    # A missing include fails here: `check_paths: true` makes it an error under --strict.
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_no_page_shows_an_include_marker(site: Path) -> None:
    """No built page shows `--8<--` (or a reformatted `--8 < --`) as text."""
    pages = sorted(site.rglob("*.html"))
    assert pages
    shown = {str(page.relative_to(site)): MARKER_AS_TEXT.findall(_text_of(page)) for page in pages}
    assert {page: found for page, found in shown.items() if found} == {}


def test_no_source_page_has_a_broken_include_marker() -> None:
    """Every marker line in docs/ is well formed, so that snippets includes it."""
    broken = {
        f"{source.relative_to(ROOT)}:{number}": line
        for source in sorted(DOCS.rglob("*.md"))
        for number, line in enumerate(source.read_text("utf-8").splitlines(), start=1)
        if MARKER_AS_TEXT.search(line) and not INCLUDE.match(line) and "[start:" not in line
    }
    assert broken == {}


def test_every_include_is_shown_on_its_page(site: Path) -> None:
    """Each included file's code appears on the page that includes it."""
    missing = []
    for source in sorted(DOCS.rglob("*.md")):
        targets = INCLUDE.findall(source.read_text("utf-8"))
        if not targets:
            continue
        text = _text_of(_page_of(source, site))
        for target in targets:
            if target.endswith(".md"):  # rendered as Markdown, not shown as code
                continue
            code = [line.strip() for line in _snippet(target) if line.strip()]
            # The longest lines are the most distinctive; the highlighter keeps their text.
            sample = sorted(code, key=len, reverse=True)[:3]
            if not sample or not all(line in text for line in sample):
                missing.append(f"{source.relative_to(ROOT)}: {target}")
    assert missing == []
