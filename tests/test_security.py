"""A group-writable media folder cannot turn a render against the files around it.

An attacker with another uid and only group write on the media folder (``tests/attacker.py``)
races real renders with inotify: each test shows one finding of issue 24 changes nothing
outside the media root, and that what was published (if anything) is the render's own file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from attacker import (
    SCRATCH_LABELS,
    Attacker,
    SharedMedia,
    link_project,
    plant_scratch,
    shared_media,
    swap_scratch_directory,
    swap_temporary,
    why_not,
)
from renderstate import RenderRunner, Status, UnsafePathError
from renderstate.files import create_temporary, publishing, scratch_path
from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")

OLD = b"the previous, good video"
TIMELINE = {
    "width": 64,
    "height": 36,
    "fps": 5,
    "scenes": [{"duration": 0.4, "background": "#ff0000"}],
}


@pytest.fixture
def shared() -> Any:
    with shared_media() as layout:
        yield layout


def moviepy_renderer() -> Any:
    moviepy = pytest.importorskip(
        "renderstate.rendering.moviepy",
        reason="needs the render extra: pip install 'renderstate[render]'",
    )
    return moviepy.MoviePyRenderer(timeline=TIMELINE, preset="ultrafast")


def project_folder(shared: SharedMedia, project: MemoryProject) -> Path:
    """``projects/<id>``, made by the app beforehand (group-writable), with a previous video."""
    folder = shared.projects() / str(project.id)
    folder.mkdir()
    os.chown(folder, 0, shared.media.stat().st_gid)
    folder.chmod(0o2775)
    (folder / "final.mp4").write_bytes(OLD)
    return folder


def render(shared: SharedMedia, renderer: Any, project: MemoryProject) -> tuple[Status, Any]:
    runner = RenderRunner(
        MemoryAdapter(), renderer, media_root=shared.media, executor=InlineExecutor()
    )
    with runner:
        job = runner.submit(project)
        status = job.wait(120)
    return status, job.error


# ------------------------------------------------------------------ finding 2


def test_a_temporary_file_swapped_for_a_link_writes_and_publishes_nothing_outside(
    shared: SharedMedia,
) -> None:
    """A link renamed over the temporary file the moment it appears: the real render writes
    nothing through it, chmods nothing, publishes no link; the swap fails the render and
    the previous video stays."""
    project = MemoryProject(status="COMPLETED")
    folder = project_folder(shared, project)
    with Attacker(shared, folder, swap_temporary) as attacker:
        status, error = render(shared, moviepy_renderer(), project)
    assert attacker.actions, "the attacker never saw the temporary file"
    assert shared.untouched(), "the render wrote or chmodded the private file"
    final = folder / "final.mp4"
    assert not final.is_symlink()
    assert status is Status.FAILED, "a swapped temporary file was published"
    assert isinstance(error, UnsafePathError), error
    # Replaced before the render opened it, or moved away while it rendered: either way
    # the render wrote through its own descriptor and refused to publish.
    assert "the render's private directory was" in str(error)
    assert final.read_bytes() == OLD


def test_publishing_alone_is_not_turned_by_a_swapped_temporary_file(
    shared: SharedMedia,
) -> None:
    """renderstate.files.publishing() with a writer that opens the path by name (as ffmpeg
    does): the swap is refused and nothing outside the media root is written."""
    folder = project_folder(shared, MemoryProject())
    final = folder / "final.mp4"
    with Attacker(shared, folder, swap_temporary) as attacker, pytest.raises(UnsafePathError):
        write_by_name_after_the_attack(final, shared)
    assert attacker.actions
    assert shared.untouched()
    assert final.read_bytes() == OLD


def write_by_name_after_the_attack(final: Path, shared: SharedMedia) -> None:
    """Publish a file written by name, once the attacker has had time to act (as an encoder's
    set-up gives it)."""
    with publishing(final) as target:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            p.name.endswith(".moved") for p in final.parent.iterdir()
        ):
            time.sleep(0.01)
        target.write_bytes(b"the new video, written by name")


# ------------------------------------------------------------------ finding 1, through the runner


def test_scratch_names_planted_as_links_are_never_followed_by_a_runner_render(
    shared: SharedMedia,
) -> None:
    """Links at the predictable scratch names (pieces list, AAC soundtrack, first piece),
    planted the moment the temporary name appears: the runner's real render makes its
    scratch files in its private directory, writes nothing through them and completes."""
    project = MemoryProject(status="COMPLETED")
    folder = project_folder(shared, project)
    timeline = {
        **TIMELINE,
        "scenes": [{"duration": 4, "background": "#ff0000"}],  # repeated pieces: a listing
        "soundtrack": {"tone": 440},
    }
    moviepy = pytest.importorskip("renderstate.rendering.moviepy")
    renderer = moviepy.MoviePyRenderer(timeline=timeline, preset="ultrafast")
    with Attacker(shared, folder, plant_scratch) as attacker:
        status, error = render(shared, renderer, project)
    assert attacker.actions, "the attacker never saw the temporary name"
    assert shared.untouched(), "the render wrote through a planted scratch link"
    assert status is Status.COMPLETED, error
    final = folder / "final.mp4"
    assert not final.is_symlink()
    assert final.read_bytes() != OLD


# ------------------------------------------------------------------ finding 1, called directly

PIECES_AND_SOUND = {
    "width": 64,
    "height": 36,
    "fps": 10,
    "scenes": [{"duration": 4, "background": "#ff0000"}],  # repeated pieces: a listing
    "soundtrack": {"tone": 440},
}


def wait_for(condition: Any, what: str) -> None:
    """Poll ``condition`` for up to 10 s (the attacker acts on inotify, in milliseconds)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"the attacker did not act: {what}"
        time.sleep(0.01)


def assert_playable(target: Path) -> None:
    """``target`` holds the 4 s video of PIECES_AND_SOUND (checked as the runner would)."""
    media = pytest.importorskip("renderstate.rendering._media")
    media.check_video(target, duration=4, fps=10)


def test_scratch_names_planted_as_links_are_never_followed_by_a_direct_render(
    shared: SharedMedia,
) -> None:
    """MoviePyRenderer called directly on a temporary file in a group-writable folder, links
    planted at every scratch name derived from the temporary name before the render starts:
    it writes nothing through them (its scratch files are in a private directory it made),
    leaves them as they were, and writes a playable video."""
    folder = shared.shared_folder("renders")
    moviepy = pytest.importorskip("renderstate.rendering.moviepy")
    renderer = moviepy.MoviePyRenderer(timeline=PIECES_AND_SOUND, preset="ultrafast")
    with Attacker(shared, folder, plant_scratch) as attacker:
        target = create_temporary(folder / "final.mp4")
        planted = [scratch_path(target, label) for label in SCRATCH_LABELS]
        wait_for(lambda: all(p.is_symlink() for p in planted), "links at the scratch names")
        renderer(None, target)
    assert attacker.actions
    assert shared.untouched(), "the render wrote through a planted scratch link"
    assert all(p.is_symlink() and p.readlink() == shared.secret for p in planted)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [target.name, *(p.name for p in planted)]
    )
    assert_playable(target)


def test_a_direct_render_keeps_writing_into_its_scratch_directory_when_its_name_is_swapped(
    shared: SharedMedia,
) -> None:
    """The render's scratch directory is moved away the moment it appears and its name linked
    to a private directory outside: the render writes into the directory it made (by its
    descriptor), never through the link, and removes its files; or, had the swap come
    before it opened the directory, refuses to use it."""
    folder = shared.shared_folder("renders")
    moviepy = pytest.importorskip("renderstate.rendering.moviepy")
    renderer = moviepy.MoviePyRenderer(timeline=PIECES_AND_SOUND, preset="ultrafast")
    target = folder / "video.mp4"
    with Attacker(shared, folder, swap_scratch_directory) as attacker:
        try:
            renderer(None, target)
        except UnsafePathError as exc:
            assert "scratch directory was replaced" in str(exc)  # noqa: PT017
            assert not target.exists()
        else:
            assert_playable(target)
    assert attacker.actions, "the attacker never saw the scratch directory"
    assert shared.untouched(), "the render wrote through the swapped scratch directory"
    (moved,) = folder.glob("*.moved")
    assert list(moved.iterdir()) == []


# ------------------------------------------------------------------ finding 3


def link_to_private(name: str) -> Any:
    """An attacker's first move: ``projects/<name>`` is a link to the private directory."""

    def link(layout: SharedMedia) -> list[str]:
        (layout.media / "projects" / name).symlink_to(layout.private)
        return [f"linked projects/{name} to the private directory"]

    return link


def test_a_project_directory_linked_outside_is_refused_before_anything_is_written(
    shared: SharedMedia,
) -> None:
    """projects/<id> replaced by a link to a directory outside the media root: the render
    fails naming the link, and nothing is written there."""
    project = MemoryProject()
    name = str(project.id)
    with Attacker(
        shared, shared.projects(), lambda *_: [], prelude=link_to_private(name)
    ) as attacker:
        status, error = render(shared, FakeRenderer(frames=3), project)
    assert attacker.actions == [f"linked projects/{name} to the private directory"]
    assert status is Status.FAILED
    assert isinstance(error, UnsafePathError), error
    assert f"projects/{name}" in str(error)
    assert "a symbolic link" in str(error)
    assert shared.untouched()


def test_a_project_directory_linked_outside_during_the_render_is_refused(
    shared: SharedMedia,
) -> None:
    """The runner makes projects/<id>; the attacker moves it away and links the name outside
    as soon as it appears: the real render publishes nothing, there or anywhere."""
    projects = shared.projects()
    project = MemoryProject()
    with Attacker(shared, projects, link_project(str(project.id))) as attacker:
        status, error = render(shared, moviepy_renderer(), project)
    assert attacker.actions, "the attacker never saw the project's directory"
    assert shared.untouched()
    assert status is Status.FAILED
    assert isinstance(error, UnsafePathError), error
    moved = projects / f"{project.id}.moved"
    assert not (moved / "final.mp4").exists()


def test_recovery_never_removes_or_restores_through_a_linked_project_directory(
    shared: SharedMedia,
) -> None:
    """Recovery of a project whose directory is a link outside: the look-alike temporary and
    backup files there stay; the project stays PROCESSING (its journal cannot be read, the
    error names the link) until the link is removed."""
    outside = shared.private
    lookalikes = [
        outside / ".final-0123456789abcdef.partial.mp4",
        outside / ".final-1.backup.mp4",
    ]
    for path in lookalikes:
        path.write_bytes(b"not the library's to remove")
    before = sorted(p.name for p in outside.iterdir())

    project = MemoryProject(status="PROCESSING")
    prelude = link_to_private(str(project.id))
    with Attacker(shared, shared.projects(), lambda *_: [], prelude=prelude):
        runner = RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=shared.media)
        with runner:
            records = runner.recover_interrupted([project])
    assert sorted(p.name for p in outside.iterdir()) == before
    assert all(p.read_bytes() == b"not the library's to remove" for p in lookalikes)
    assert records == []
    assert project.status == "PROCESSING"
