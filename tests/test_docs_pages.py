"""What the integration pages must tell a newcomer, checked against the code they describe."""

from __future__ import annotations

import ast
import builtins
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _undefined_names(code: str, yours: set[str]) -> list[str]:
    """Names the block uses before (or without) importing or assigning them.

    Module-level statements are read in order; a function's body runs later, so it may use
    any name the module defines by its end.
    """
    defined = set(dir(builtins)) | yours
    late: list[ast.Name] = []
    missing: list[str] = []

    def bound(node: ast.AST) -> set[str]:
        names = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, ast.alias):
                names.add((sub.asname or sub.name).split(".")[0])
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
        return names

    for statement in ast.parse(code).body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            local = bound(statement) | {
                a.arg for a in ast.walk(statement.args) if isinstance(a, ast.arg)
            }
            late += [
                n
                for n in ast.walk(statement)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in local
            ]
            defined.add(statement.name)
            continue
        missing += [
            n.id
            for n in ast.walk(statement)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in defined
        ]
        defined |= bound(statement)
    missing += [n.id for n in late if n.id not in defined]
    return missing


def test_undefined_names_are_found() -> None:
    """The checker itself: a name used before its assignment is reported."""
    assert _undefined_names("x = y\ny = 1\n", set()) == ["y"]
    assert _undefined_names("def f():\n    return y\n\ny = 1\n", set()) == []
    assert _undefined_names("import a.b\nz = a.b + len([])\n", set()) == []


def test_celery_setup_defines_every_name_it_uses() -> None:
    """The SQLAlchemy setup to copy declares the ledger's table before `table=attempts`."""
    setup = _python_blocks((DOCS / "celery.md").read_text("utf-8"))[0]
    assert "SQLAlchemyAttemptStore(" in setup
    # What the page tells the reader to bring: their sessionmaker, models and media root.
    yours = {"Session", "Base", "Project", "MEDIA_ROOT"}
    assert _undefined_names(setup, yours) == []
    assert "attempt_table(Base.metadata)" in setup


def test_celery_django_section_installs_and_migrates_the_ledger_app() -> None:
    """With Django, the page adds the ledger's app and migrates it by its real label."""
    pytest.importorskip("django")
    from renderstate.ledger.django.apps import LedgerConfig  # noqa: PLC0415 - needs Django

    django_part = (DOCS / "celery.md").read_text("utf-8").split("With Django", 1)[1]
    django_part = django_part.split("\n## ", 1)[0]
    assert f'INSTALLED_APPS += ["{LedgerConfig.name}"]' in django_part
    assert f"python manage.py migrate {LedgerConfig.label}" in django_part


def _section(text: str, heading: str) -> str:
    assert f"\n{heading}\n" in text, f"no {heading!r} section"
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def _run_as_module(code: str, name: str) -> Any:
    """Run a page's block as a module (SQLAlchemy resolves annotations in the class's module)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    finally:
        del sys.modules[name]
    return module


def test_adopting_page_lists_the_model_fields_for_each_orm() -> None:
    """ "Your model": status defaulting to DRAFT, a nullable output path, per ORM, runnable."""
    section = _section((DOCS / "adopting.md").read_text("utf-8"), "## Your model")
    assert "timeline" in section
    blocks = _python_blocks(section)
    django, sqlalchemy, peewee = (
        next(b for b in blocks if marker in b)
        for marker in ("django.db", "sqlalchemy", "import peewee")
    )
    compile(django, "django", "exec")
    assert 'default="DRAFT"' in django
    assert "null=True" in django

    pytest.importorskip("sqlalchemy")
    columns = _run_as_module(sqlalchemy, "adopting_sqlalchemy").Project.__table__.c
    assert columns.status.default.arg == "DRAFT"
    assert not columns.status.nullable
    assert columns.output_path.nullable

    pytest.importorskip("peewee")
    fields = _run_as_module(peewee, "adopting_peewee").Project._meta.fields
    assert fields["status"].default == "DRAFT"
    assert not fields["status"].null
    assert fields["output_path"].null


FRAMEWORK_PAGES = sorted((DOCS / "frameworks").glob("*.md"))


@pytest.mark.parametrize("page", FRAMEWORK_PAGES, ids=lambda p: p.stem)
def test_framework_page_shows_the_404_pattern(page: Path) -> None:
    """An unknown id answered 404 problem+json, written on the page itself."""
    code = "\n".join(_python_blocks(page.read_text("utf-8")))
    assert "raise ProjectNotFoundError(project_key=" in code
    assert "is None" in code or "DoesNotExist" in code


@pytest.mark.parametrize("page", FRAMEWORK_PAGES, ids=lambda p: p.stem)
def test_framework_page_says_how_the_runner_lives_and_ends(page: Path) -> None:
    """One runner per process, created once and shut down when the process ends."""
    text = page.read_text("utf-8")
    assert "one `renderrunner`" in text.lower()
    assert "process" in text
    code = "\n".join(_python_blocks(text))  # written on the page, not only in an include
    assert re.search(r"\.shutdown\b", code)


@pytest.mark.parametrize("page", FRAMEWORK_PAGES, ids=lambda p: p.stem)
def test_framework_page_reads_raw(page: Path) -> None:
    """Each included file is also linked, so the page read raw says where the code is."""
    text = page.read_text("utf-8")
    included = re.findall(r'^--8<-- "([^"]+)"$', text, flags=re.MULTILINE)
    assert included
    prose = re.sub(r'^--8<-- "[^"]+"$', "", text, flags=re.MULTILINE)
    unlinked = [path for path in included if f"/{path})" not in prose]
    assert unlinked == []
