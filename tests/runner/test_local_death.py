"""A render process killed on this machine: `renderstate recover` right after fails its
render at once (its 60 s lease still running), and no ffmpeg it started is left running.

Real processes throughout: the render runs in a child process (the runner's thread
executor, the real MoviePyRenderer and its ffmpeg processes), is SIGKILLed mid-soundtrack or
mid-encoding, and `renderstate recover` runs as its own process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rendering.media import write_tone
from renderstate import RenderRunner, Status
from renderstate.cli._store import Project, Store
from renderstate.ledger import AttemptState, Ledger

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG are Linux's"
    ),
]

CHILD = Path(__file__).with_name("death_child.py")
LEASE = 60.0
GONE_WITHIN = 20.0
"""How long the test waits for a SIGKILLed process to be reaped (it takes milliseconds):
the processes it watches were stopped, so without the fix they would stay forever."""


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return text[text.rfind(b")") + 2 :].decode().split()


def _command(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def ffmpeg_children(parent: int) -> dict[int, list[str]]:
    """The live ffmpeg processes whose parent is ``parent``, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            command = _command(int(entry.name))
            if (
                fields is not None
                and fields[0] not in {"Z", "X"}
                and fields[1] == str(parent)
                and command
                and "ffmpeg" in Path(command[0]).name
            ):
                found[int(entry.name)] = command
    return found


_RENDERS: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_render_left() -> Iterator[None]:
    """A render child still running when a test ends (it failed early) is killed."""
    yield
    while _RENDERS:
        process = _RENDERS.pop()
        if process.poll() is None:
            process.kill()
        process.communicate()


class Render:
    """The child process rendering the project, stopped for good at a chosen moment."""

    def __init__(self, store: Store, media: Path, key: str, kind: str, *extra: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), store.url, str(media), key, kind, *map(str, extra)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _RENDERS.append(self.process)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.process.kill()
            _, err = self.process.communicate()
            pytest.fail(f"the render child did not get ready: {line!r} {err}")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.communicate()
        assert self.process.returncode == -signal.SIGKILL


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(f"sqlite:///{tmp_path / 'renders.db'}")
    yield made
    made.close()


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Processes to kill at the end of the test, should any still run."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        fields = _stat(pid)
        if fields is not None and fields[0] not in {"Z", "X"}:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def recover_cli(store: Store, media: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "renderstate", "recover", "--db", store.url, "--media", str(media)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
        check=False,
    )


def assert_failed_at_once(
    store: Store, project: Project, done: subprocess.CompletedProcess[str]
) -> None:
    """`recover` failed the project, its attempt ended before its lease ran out."""
    assert done.returncode == 0, done.stderr
    assert f"{project.id}: PROCESSING -> FAILED" in done.stdout, done.stdout
    assert "is gone" in done.stdout
    assert store.get(project.id).status == "FAILED"
    (attempt,) = store.ledger.history(store.ledger.scope(project), project.id)
    assert attempt.state is AttemptState.INTERRUPTED
    assert attempt.finished_at is not None
    assert attempt.lease_expires_at is not None
    assert attempt.finished_at < attempt.lease_expires_at, "no lease was waited out"


def assert_all_gone(pids: list[int]) -> None:
    """Every process in ``pids`` ended (gone, or a zombie its new parent has yet to reap)."""
    deadline = time.monotonic() + GONE_WITHIN
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if (f := _stat(p)) is not None and f[0] not in {"Z", "X"}]
        time.sleep(0.05)
    assert not alive, {p: (_stat(p), _command(p)) for p in alive}


def test_a_killed_render_is_failed_by_recover_at_once(tmp_path: Path, store: Store) -> None:
    """A render process SIGKILLed mid-render (FakeRenderer, 60 s lease): `renderstate
    recover` right after fails it at once, with the reason that its process is gone."""
    media = tmp_path / "media"
    project = store.create("killed", {})
    render = Render(store, media, project.id, "fake")
    render.kill()
    assert_failed_at_once(store, project, recover_cli(store, media, tmp_path))
    assert not list((media / "projects" / project.id).glob("*")), "its temporary file went"


@pytest.mark.parametrize(
    ("kind", "needle"),
    [("soundtrack", "s16le"), ("encoding", "rawvideo")],
)
def test_a_render_killed_with_ffmpeg_running_leaves_no_ffmpeg_and_is_failed_at_once(
    tmp_path: Path, store: Store, leftovers: list[int], kind: str, needle: str
) -> None:
    """The MoviePyRenderer SIGKILLed while moviepy's reader decodes the soundtrack, or
    while ffmpeg encodes the video: every ffmpeg it started (stopped first, so none could
    finish on its own) is killed with it, and `renderstate recover` right after fails the
    render at once."""
    media = tmp_path / "media"
    sound = tmp_path / "music.wav"
    write_tone(sound, seconds=20, rate=44100)
    project = store.create("killed", {})
    render = Render(store, media, project.id, kind, sound)
    children = ffmpeg_children(render.process.pid)
    leftovers += children
    assert any(needle in part for command in children.values() for part in command), children
    for pid in children:
        os.kill(pid, signal.SIGSTOP)
    render.kill()
    assert_all_gone(list(children))
    assert_failed_at_once(store, project, recover_cli(store, media, tmp_path))


def test_a_thread_executor_render_keeps_its_ffmpeg_until_it_ends(
    tmp_path: Path, store: Store
) -> None:
    """The runner's worker thread starts every ffmpeg of a render (the soundtrack's
    reader and encoder, the video's) and the render completes: the children die with the
    thread that started them, not sooner."""
    pytest.importorskip("moviepy")
    from renderstate.rendering.moviepy import MoviePyRenderer  # noqa: PLC0415 - the extra

    sound = tmp_path / "music.wav"
    write_tone(sound, seconds=4, rate=44100)
    renderer = MoviePyRenderer(
        timeline={
            "width": 64,
            "height": 36,
            "fps": 10,
            "scenes": [{"duration": 2, "title": "a"}, {"duration": 2, "title": "b"}],
            "soundtrack": {"file": "music.wav"},
        },
        base_dir=tmp_path,
        preset="ultrafast",
    )
    project = store.create("thread", {})
    with RenderRunner(
        store.adapter,
        renderer,
        media_root=tmp_path / "media",
        ledger=Ledger(store.ledger.store, lease=LEASE),
        loader=store.loader,
    ) as runner:
        job = runner.submit(project)
        assert job.wait(timeout=300) is Status.COMPLETED, runner.error(project)
        assert runner.file_path(project).stat().st_size > 0
