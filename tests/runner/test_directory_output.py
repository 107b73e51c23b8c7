"""Directory outputs (an HLS playlist and its segments): published whole, or not at all.

``own_path(..., output="directory")`` hands the function an empty directory in the
render's private directory; the runner swaps it with the output directory in one step
once it is complete. A failure or a cancel leaves the previous directory as it was, file
for file, and nothing beside it; a reader in another process never sees a mix.
(Crashes at every system call: ``tests/test_directory_crashpoints.py``.)
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from renderstate import (
    InvalidOutputPathError,
    RenderCancelledError,
    RenderOutputError,
    RenderRunner,
    Status,
)
from renderstate.runner import OnProgress, own_path
from renderstate.testing import InlineExecutor, MemoryAdapter, MemoryProject

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

READER = Path(__file__).parents[1] / "directory_child.py"


def tree(directory: Path) -> dict[str, str]:
    """Every file below ``directory``, by relative path, with its digest."""
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# --8<-- [start:hls]
def render_hls(project_id: object, on_progress: OnProgress, out_dir: Path) -> None:
    """An app's HLS render: a tiny test pattern cut into segments by ffmpeg's hls muxer."""
    on_progress(0, 1)
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=1.5",
            "-c:v",
            "mpeg4",
            "-g",
            "5",
            "-f",
            "hls",
            "-hls_time",
            "0.5",
            "-hls_list_size",
            "0",
            "-hls_segment_filename",
            str(out_dir / "segment%03d.ts"),
            str(out_dir / "playlist.m3u8"),
        ],
        check=True,
    )
    on_progress(1, 1)


def hls_runner(media: Path, render: object = render_hls) -> RenderRunner[MemoryProject]:
    renderer = own_path(
        render,  # type: ignore[arg-type]
        argument=lambda project: project.id,  # it takes the id
        target="out_dir",  # and writes into the directory it is given
        output="directory",  # its output is a directory: swapped in whole
    )
    return runner_for(renderer, media)


def runner_for(renderer: object, media: Path) -> RenderRunner[MemoryProject]:
    return RenderRunner(
        MemoryAdapter(),
        renderer,  # type: ignore[arg-type]
        media_root=media,
        executor=InlineExecutor(),
        output_path_for=lambda project: f"projects/{project.id}/hls",  # a directory
    )


# --8<-- [end:hls]


@pytest.fixture
def previous(tmp_path: Path) -> tuple[Path, MemoryProject, dict[str, str], int]:
    """A project COMPLETED with an HLS output, rendered by the runner."""
    project = MemoryProject(id=5)  # type: ignore[arg-type]
    runner = hls_runner(tmp_path)
    assert runner.submit(project).wait() is Status.COMPLETED
    output = tmp_path / "projects" / "5" / "hls"
    return output, project, tree(output), output.stat().st_ino


def test_an_hls_render_publishes_the_whole_directory(tmp_path: Path) -> None:
    """The playlist and every segment it names are at the output path, readable by the web
    server (0644 files, a 0755 directory), the project COMPLETED with the directory's path,
    and nothing else beside it."""
    project = MemoryProject(id=1)  # type: ignore[arg-type]
    job = hls_runner(tmp_path).submit(project)
    assert job.wait() is Status.COMPLETED
    output = tmp_path / "projects" / "1" / "hls"
    playlist = (output / "playlist.m3u8").read_text()
    segments = [line for line in playlist.splitlines() if line.endswith(".ts")]
    assert len(segments) >= 2
    assert sorted(p.name for p in output.iterdir()) == sorted(["playlist.m3u8", *segments])
    assert all((output / s).stat().st_size > 0 for s in segments)
    assert all(stat.S_IMODE((output / n).stat().st_mode) == 0o644 for n in segments)
    assert stat.S_IMODE(output.stat().st_mode) == 0o755
    assert project.output_path == "projects/1/hls"
    assert [p.name for p in output.parent.iterdir()] == ["hls"]


def test_a_re_render_replaces_the_directory_in_one_swap(
    tmp_path: Path, previous: tuple[Path, MemoryProject, dict[str, str], int]
) -> None:
    """The new directory is a new inode at the output path (swapped, not rewritten in place):
    a segment the new render does not write is gone with the previous directory."""
    output, project, _, inode = previous
    (output / "segment099.ts").write_bytes(b"a segment of the previous render only")

    def render_shorter(project_id: object, on_progress: OnProgress, out_dir: Path) -> None:
        (out_dir / "playlist.m3u8").write_text("#EXTM3U\nsegment000.ts\n#EXT-X-ENDLIST\n")
        (out_dir / "segment000.ts").write_bytes(b"new")

    assert hls_runner(tmp_path, render_shorter).submit(project).wait() is Status.COMPLETED
    assert output.stat().st_ino != inode
    assert sorted(p.name for p in output.iterdir()) == ["playlist.m3u8", "segment000.ts"]
    assert [p.name for p in output.parent.iterdir()] == ["hls"]


def test_a_failure_leaves_the_previous_directory_byte_identical(
    tmp_path: Path, previous: tuple[Path, MemoryProject, dict[str, str], int]
) -> None:
    """A function that wrote some segments (and a scratch file) and then raised: the
    previous directory is the same directory, file for file, with nothing beside it."""
    output, project, before, inode = previous

    def render_and_crash(project_id: object, on_progress: OnProgress, out_dir: Path) -> None:
        (out_dir / "segment000.ts").write_bytes(b"half")
        (out_dir.parent / "ffmpeg2pass-0.log").write_bytes(b"scratch")
        msg = "the encoder crashed"
        raise RuntimeError(msg)

    runner = hls_runner(tmp_path, render_and_crash)
    assert runner.submit(project).wait() is Status.FAILED
    assert "the encoder crashed" in str(runner.error(project))
    assert tree(output) == before
    assert output.stat().st_ino == inode
    assert [p.name for p in output.parent.iterdir()] == ["hls"]
    assert project.output_path == "projects/5/hls"


def test_a_cancel_leaves_the_previous_directory_byte_identical(
    tmp_path: Path, previous: tuple[Path, MemoryProject, dict[str, str], int]
) -> None:
    """Cancelled between two segments: the same previous directory, nothing beside it."""
    output, project, before, inode = previous
    runners: list[RenderRunner[MemoryProject]] = []

    def render_cancelled(project_id: object, on_progress: OnProgress, out_dir: Path) -> None:
        (out_dir / "segment000.ts").write_bytes(b"first")
        assert runners[0].cancel(project, reason="the user cancelled")
        on_progress(1, 2)  # the cancel is seen here
        (out_dir / "segment001.ts").write_bytes(b"never")

    runner = hls_runner(tmp_path, render_cancelled)
    runners.append(runner)
    job = runner.submit(project)
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, RenderCancelledError)
    assert tree(output) == before
    assert output.stat().st_ino == inode
    assert [p.name for p in output.parent.iterdir()] == ["hls"]


def test_an_output_path_holding_a_file_is_refused_before_rendering(tmp_path: Path) -> None:
    """A file where the directory goes (an earlier version published a manifest there):
    the render fails saying so and how to fix it, before the function runs; the file stays."""
    output = tmp_path / "projects" / "2" / "hls"
    output.parent.mkdir(parents=True)
    output.write_bytes(b"a manifest the earlier swap published")
    ran: list[object] = []

    def never(project_id: object, on_progress: OnProgress, out_dir: Path) -> None:
        ran.append(project_id)

    project = MemoryProject(id=2)  # type: ignore[arg-type]
    job = hls_runner(tmp_path, never).submit(project)
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, InvalidOutputPathError)
    assert "it is a file" in str(job.error)
    assert "output_path_for" in str(job.error)
    assert ran == []
    assert output.read_bytes() == b"a manifest the earlier swap published"
    assert [p.name for p in output.parent.iterdir()] == ["hls"]


@pytest.mark.parametrize(
    ("what", "said"),
    [
        ("nothing", "wrote no file"),
        ("a symbolic link", "segment000.ts in its output directory is a symbolic link"),
        ("a named pipe", "segment000.ts in its output directory is not a regular file"),
    ],
)
def test_an_output_that_is_not_files_and_directories_is_refused(
    tmp_path: Path,
    previous: tuple[Path, MemoryProject, dict[str, str], int],
    what: str,
    said: str,
) -> None:
    """An empty directory, or one holding a link (it could lead a web server outside the
    media root) or a special file, fails the render; the previous directory stays."""
    output, project, before, inode = previous

    def render_odd(project_id: object, on_progress: OnProgress, out_dir: Path) -> None:
        if what == "a symbolic link":
            (out_dir / "playlist.m3u8").write_text("#EXTM3U\n")
            (out_dir / "segment000.ts").symlink_to("/etc/passwd")
        elif what == "a named pipe":
            os.mkfifo(out_dir / "segment000.ts")

    job = hls_runner(tmp_path, render_odd).submit(project)
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, RenderOutputError)
    assert said in str(job.error)
    assert tree(output) == before
    assert output.stat().st_ino == inode
    assert [p.name for p in output.parent.iterdir()] == ["hls"]


def test_a_directory_written_elsewhere_and_returned_is_published(tmp_path: Path) -> None:
    """render(project_id, on_progress) -> its own folder: moved in whole, none left behind."""
    own = tmp_path / "renders" / "3"

    def render_own(project_id: object, on_progress: OnProgress) -> dict[str, object]:
        (own / "frames").mkdir(parents=True)
        (own / "frames" / "0001.png").write_bytes(b"png")
        (own / "index.txt").write_text("frames/0001.png\n")
        return {"folder": str(own), "frames": 1}

    renderer = own_path(
        render_own, argument=lambda p: p.id, result_key="folder", output="directory"
    )
    project = MemoryProject(id=3)  # type: ignore[arg-type]
    assert runner_for(renderer, tmp_path / "media").submit(project).wait() is Status.COMPLETED
    output = tmp_path / "media" / "projects" / "3" / "hls"
    assert tree(output) == {
        "frames/0001.png": hashlib.sha256(b"png").hexdigest(),
        "index.txt": hashlib.sha256(b"frames/0001.png\n").hexdigest(),
    }
    assert not own.exists()


def test_returning_the_live_directory_itself_is_refused(
    tmp_path: Path, previous: tuple[Path, MemoryProject, dict[str, str], int]
) -> None:
    """A function that wrote into the published directory in place and returns it: refused
    as that, and nothing is swapped."""
    output, project, _, inode = previous

    def render_in_place(project_id: object, on_progress: OnProgress) -> Path:
        return output

    renderer = own_path(render_in_place, argument=lambda p: p.id, output="directory")
    job = runner_for(renderer, tmp_path).submit(project)
    assert job.wait() is Status.FAILED
    assert "in place" in str(job.error)
    assert output.stat().st_ino == inode
    assert [p.name for p in output.parent.iterdir()] == ["hls"]


def test_an_unknown_output_kind_is_a_value_error() -> None:
    """own_path(output=...) takes 'file' or 'directory', and says so."""
    with pytest.raises(ValueError, match=r"'file' \(a video\) or 'directory'"):
        own_path(render_hls, target="out_dir", output="folder")  # type: ignore[arg-type]


def test_a_reader_in_another_process_never_sees_a_half_written_directory(
    tmp_path: Path,
) -> None:
    """A process polling the output (listing it, reading each file it lists) while it is
    re-rendered over and over sees the previous directory or the new one, whole, and never
    an empty, missing or partly written one at the output path."""
    versions = {
        "a": {f"segment{i:03d}.ts": f"a{i}".encode() * 2000 for i in range(12)},
        "b": {f"part{i:03d}.ts": f"b{i}".encode() * 2000 for i in range(9)},
    }
    for files in versions.values():
        files["playlist.m3u8"] = "\n".join(sorted(files)).encode()
    rounds: list[str] = []

    def render_version(project_id: object, on_progress: OnProgress, out_dir: Path) -> None:
        for name, data in versions[rounds[-1]].items():
            (out_dir / name).write_bytes(data)

    project = MemoryProject(id=4)  # type: ignore[arg-type]
    runner = hls_runner(tmp_path, render_version)
    rounds.append("a")
    assert runner.submit(project).wait() is Status.COMPLETED
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, str(READER), "reader", str(tmp_path), "4", str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "reading"
        for n in range(40):
            rounds.append("ab"[n % 2])
            assert runner.submit(project).wait() is Status.COMPLETED
    finally:
        stop.touch()
    out, _ = reader.communicate(timeout=60)
    seen: dict[str, int] = json.loads(out)
    seen.pop("overtaken by a swap", None)  # a look that straddled a swap proves nothing
    whole = {
        json.dumps({n: hashlib.sha256(d).hexdigest() for n, d in files.items()}, sort_keys=True)
        for files in versions.values()
    }
    assert set(seen) <= whole, [label[:200] for label in set(seen) - whole]
    assert set(seen) == whole  # both versions were seen: the reader ran through the swaps


def test_where_directories_cannot_be_exchanged_two_renames_publish_it(
    tmp_path: Path,
    previous: tuple[Path, MemoryProject, dict[str, str], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a system without renameat2(RENAME_EXCHANGE) (simulated: no renameat2 at all), the
    previous directory is renamed aside and the new one into place; a failure still leaves
    the previous one, and nothing is left beside the output either way."""
    output, project, before, inode = previous
    monkeypatch.setattr("renderstate._directories._renameat2", None)

    def render_crash(project_id: object, on_progress: OnProgress, out_dir: Path) -> None:
        (out_dir / "segment000.ts").write_bytes(b"half")
        msg = "the encoder crashed"
        raise RuntimeError(msg)

    assert hls_runner(tmp_path, render_crash).submit(project).wait() is Status.FAILED
    assert tree(output) == before
    assert output.stat().st_ino == inode
    assert hls_runner(tmp_path).submit(project).wait() is Status.COMPLETED
    assert output.stat().st_ino != inode
    assert (output / "playlist.m3u8").read_text().startswith("#EXTM3U")
    assert [p.name for p in output.parent.iterdir()] == ["hls"]


def test_recovery_leaves_alone_a_staging_look_alike_that_is_not_private(
    tmp_path: Path, previous: tuple[Path, MemoryProject, dict[str, str], int]
) -> None:
    """A directory named like a staging directory but open to others (someone else's, in a
    group-writable folder), whose journal claims the output is an unpublished render:
    recovery neither swaps the output out nor removes anything of it."""
    output, project, before, inode = previous
    fake = output.parent / ".hls-0123456789abcdef.staging"
    fake.mkdir(mode=0o755)
    fake.chmod(0o755)
    found = output.stat()
    (fake / ".journal").write_text(f"1 {found.st_dev} {found.st_ino}\n")
    project.status = "PROCESSING"
    runner = hls_runner(tmp_path)
    assert [r.target for r in runner.recover_interrupted([project])] == [Status.FAILED]
    assert tree(output) == before
    assert output.stat().st_ino == inode
    assert fake.is_dir()


class FramesRenderer:
    """A renderer of an app's own (not own_path) whose output is an image sequence."""

    output = "directory"

    def __call__(self, project: MemoryProject, target: Path, progress: object) -> None:
        for n in range(3):
            (target / f"frame{n:04d}.png").write_bytes(b"png %d" % n)


def test_a_renderer_of_your_own_declares_a_directory_output_by_attribute(
    tmp_path: Path,
) -> None:
    """``output = "directory"`` on a renderer: its target is an empty directory, published
    whole at the output path."""
    project = MemoryProject(id=6)  # type: ignore[arg-type]
    assert runner_for(FramesRenderer(), tmp_path).submit(project).wait() is Status.COMPLETED
    output = tmp_path / "projects" / "6" / "hls"
    assert sorted(p.name for p in output.iterdir()) == [f"frame{n:04d}.png" for n in range(3)]
    assert [p.name for p in output.parent.iterdir()] == ["hls"]


def test_a_refused_completion_swaps_the_previous_directory_back(
    tmp_path: Path, previous: tuple[Path, MemoryProject, dict[str, str], int]
) -> None:
    """The new directory was swapped in, then the save of COMPLETED was refused (the project
    was failed meanwhile by someone else): the previous directory goes back, the same
    directory file for file, and nothing is left beside it."""
    output, project, before, inode = previous

    def render_then_lose(project_id: object, on_progress: OnProgress, out_dir: Path) -> None:
        (out_dir / "playlist.m3u8").write_text("#EXTM3U\n")
        project.status = "FAILED"  # another process failed it: complete() will be refused

    job = hls_runner(tmp_path, render_then_lose).submit(project)
    job.wait()
    assert job.status is Status.FAILED
    assert tree(output) == before
    assert output.stat().st_ino == inode
    assert [p.name for p in output.parent.iterdir()] == ["hls"]
