"""What each example app promises beyond the HTTP contract."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from .servers import EXAMPLES, serve
from .test_contract import BUSY, create, poll_until_done

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = EXAMPLES.parent
APPS = ("django_app", "fastapi_app", "flask_app")


def test_django_app_uses_the_reference_model_unmodified() -> None:
    """The Django example's model is the reference model, byte for byte."""
    model = (EXAMPLES / "django_app" / "projects" / "models.py").read_bytes()
    assert model == (REPO / "tests" / "djangoapp" / "models.py").read_bytes()
    reference = REPO.parent / "shared" / "reference" / "phase01_models.py"
    if reference.exists():  # beside the clone on development and CI machines
        assert model == reference.read_bytes()


@pytest.mark.parametrize("app", APPS)
def test_every_status_body_is_the_librarys(app: str) -> None:
    """The apps answer with renderstate.web.status_body and build no status body of their own."""
    called = False
    for source in sorted((EXAMPLES / app).rglob("*.py")):
        tree = ast.parse(source.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.name != "status_body", f"{source} defines its own status_body"
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                assert not {"progress", "error"} <= keys, f"{source} builds a status body"
            if isinstance(node, ast.ImportFrom) and node.module == "renderstate.web":
                called |= any(alias.name == "status_body" for alias in node.names)
    assert called, f"{app} does not import renderstate.web.status_body"


@pytest.mark.slow
@pytest.mark.parametrize("app", APPS)
def test_a_render_killed_with_its_server_is_failed_at_the_next_start(
    app: str, tmp_path: Path
) -> None:
    """kill -9 mid-render leaves the project PROCESSING; the next start fails it (the FastAPI
    app, whose attempt ledger fences each render: once the dead render's lease expired), a
    retry works."""
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    options = LEASED.get(app, ())
    with serve(app, url, tmp_path, options) as server:
        project_id = create(server, BUSY)
        assert server.post(f"/projects/{project_id}/render").status == 202
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(15)
    with serve(app, url, tmp_path, options) as server:
        body = server.get(f"/projects/{project_id}").json()
        deadline = time.monotonic() + 60
        while app in LEASED and body["status"] == "PROCESSING" and time.monotonic() < deadline:
            time.sleep(0.2)  # the recovery every lease fails it once the lease has expired
            body = server.get(f"/projects/{project_id}").json()
        assert body["status"] == "FAILED", (body, server.logs())
        # The reason, for the client: the page shows it rather than "see the server's log".
        assert body["error"] is not None, (body, server.logs())
        assert "was not rendered to the end" in body["error"], body
        assert "Start the render again" in body["error"], body
        leftovers = list((server.media_root / "projects" / project_id).glob(".*"))
        assert not leftovers, leftovers
        assert server.post(f"/projects/{project_id}/render").status == 202
        final, _ = poll_until_done(server, project_id)
        assert final["status"] == "COMPLETED", final


LEASED = {"fastapi_app": ("--lease", "5")}
"""The options of the apps whose renders hold a lease in an attempt ledger."""

FRAMEWORK = {"django_app": "django", "fastapi_app": "uvicorn", "flask_app": "werkzeug"}
"""A module each app's server cannot start without."""
MYSQL_DRIVER = {"django_app": "pymysql", "fastapi_app": "aiomysql", "flask_app": "pymysql"}
"""The MySQL driver each app needs (the FastAPI app has one async engine only)."""


def run_without(
    app: str, module: str, database_url: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run the app's ``serve.py`` as if ``module`` were not installed."""
    hidden = tmp_path / "hidden"
    (hidden / module).mkdir(parents=True)
    (hidden / module / "__init__.py").write_text(
        f"raise ModuleNotFoundError({f'No module named {module!r}'!r}, name={module!r})\n"
    )
    pythonpath = os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])
    serve_py = str(EXAMPLES / app / "serve.py")
    media = str(tmp_path / "media")
    return subprocess.run(
        [sys.executable, serve_py, "--database-url", database_url, "--media-root", media],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize(
    ("missing", "database_url"),
    [
        pytest.param("framework", "sqlite:///app.sqlite3", id="framework"),
        pytest.param("psycopg", "postgresql://nobody@127.0.0.1:1/none", id="postgresql"),
        pytest.param("pymysql", "mysql://nobody@127.0.0.1:1/none", id="mysql"),
    ],
)
def test_serve_without_a_package_says_which_line_installs_it(
    app: str, missing: str, database_url: str, tmp_path: Path
) -> None:
    """A missing framework or database driver: exit 2 with the app's install line, no traceback."""
    module = {"framework": FRAMEWORK[app], "pymysql": MYSQL_DRIVER[app]}.get(missing, missing)
    result = run_without(app, module, database_url, tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"No module named '{module}'" in result.stderr
    assert f"pip install -r examples/{app}/requirements.txt" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("app", APPS)
def test_each_app_has_one_install_line_that_brings_its_drivers(app: str) -> None:
    """requirements.txt installs the clone with the app's extras, its server and every driver;
    the README shows that one line."""
    requirements = (EXAMPLES / app / "requirements.txt").read_text("utf-8")
    lines = [line.split("#")[0].strip() for line in requirements.splitlines()]
    lines = [line for line in lines if line]
    assert lines[0].startswith("-e .["), lines
    names = {re.split(r"[\[<>=]", line)[0] for line in lines[1:]}
    assert {"psycopg", MYSQL_DRIVER[app]} <= names, names
    assert {"django_app": "gunicorn", "fastapi_app": "uvicorn", "flask_app": "flask"}[app] in names
    readme = (EXAMPLES / app / "README.md").read_text("utf-8")
    assert f"pip install -r examples/{app}/requirements.txt" in readme
    assert "pip install 'renderstate[" not in readme


def pip_lines(text: str) -> list[list[str]]:
    """The arguments of every ``pip install`` command in ``text``, comments left out."""
    found = []
    for line in text.splitlines():
        command = line.split("#", 1)[0]
        if "pip install" in command:
            found.append(shlex.split(command.split("pip install", 1)[1]))
    return found


def check_installable(args: list[str], *, origin: str, seen: set[Path]) -> None:
    """Fail unless every argument names a local extra, an existing file or a known package."""
    extras = set(
        tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"][
            "optional-dependencies"
        ]
    )
    words = iter(args)
    for word in words:
        if word in {"-r", "--requirement"}:
            path = REPO / next(words)
            assert path.is_file(), f"{origin}: {path} does not exist"
            if path not in seen:
                seen.add(path)
                for line in path.read_text("utf-8").splitlines():
                    check_installable(
                        shlex.split(line.split("#", 1)[0]), origin=str(path), seen=seen
                    )
        elif word in {"-e", "--editable", "-U", "--upgrade"}:
            continue
        elif word.startswith((".", "/")):  # the clone itself, with its extras
            match = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", word)
            assert match, f"{origin}: {word!r} is not the clone's root"
            asked = set(filter(None, (match[1] or "").split(",")))
            assert asked <= extras, f"{origin}: no extra {sorted(asked - extras)}"
        else:
            requirement = Requirement(word)
            # renderstate is on no index: it is installed from the clone (".[...]").
            assert requirement.name != "renderstate", f"{origin}: {word!r} is on no index"
            try:
                importlib.metadata.distribution(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                pytest.fail(f"{origin}: {requirement.name!r} is not a package we know")


@pytest.mark.parametrize("app", APPS)
def test_the_readmes_install_lines_name_only_installable_things(app: str) -> None:
    """Each README's pip lines name local extras, existing files and real packages only."""
    readme = EXAMPLES / app / "README.md"
    lines = pip_lines(readme.read_text("utf-8"))
    assert lines, f"{readme} has no install line"
    for args in lines:
        check_installable(args, origin=str(readme), seen=set())


def test_the_flask_log_has_no_terminal_colour_codes(tmp_path: Path) -> None:
    """werkzeug colours its request lines for a terminal; the example's log is plain text."""
    with serve("flask_app", f"sqlite:///{tmp_path / 'app.sqlite3'}", tmp_path) as server:
        assert server.post("/projects", {"title": "t"}).status == 201
        assert server.get("/projects/not-an-id").status == 404
        log = server.logs()
    assert '"POST /projects HTTP/1.1" 201' in log, log
    assert '"GET /projects/not-an-id HTTP/1.1" 404' in log, log
    assert "\x1b[" not in log, log
