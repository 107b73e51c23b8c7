"""What the command line tells a newcomer to run next works as written; its help is true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from renderstate.cli import main

HINT = "See all projects with: "
# No activated venv: nothing of this interpreter's environment on the PATH.
BARE_PATH = "/usr/bin:/bin"


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [[sys.executable, "-m", "renderstate"], [str(Path(sys.executable).parent / "renderstate")]],
    ids=["python -m", "the venv's script"],
)
def test_the_demos_closing_hint_works_without_an_activated_venv(
    tmp_path: Path, command: list[str]
) -> None:
    """The demo's last line names a command that runs in a shell where the venv is not active."""
    env = {**os.environ, "PATH": BARE_PATH, "COLUMNS": "200"}
    home = tmp_path / "my demo"  # a space: the hint quotes its paths
    demo = subprocess.run(
        [*command, "demo", "--renderer", "fake", "--dir", str(home)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    (hint,) = [line for line in demo.stdout.splitlines() if line.startswith(HINT)]
    status = subprocess.run(
        hint.removeprefix(HINT),
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert status.returncode == 0, f"{hint}\n{status.stdout}{status.stderr}"
    assert "COMPLETED" in status.stdout


def test_recover_help_says_it_is_safe_while_others_render(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`recover --help` describes the ledger: live leases are spared, expired ones failed."""
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["recover", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Run it only while no other process renders" not in text
    assert "safe to run while other processes and workers render with this database" in text
    assert "whose lease expired" in text
