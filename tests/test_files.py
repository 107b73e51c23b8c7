"""renderstate.files: a file is replaced whole or not at all, and nothing temporary is left."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from renderstate import (
    InvalidOutputPathError,
    ProjectLifecycle,
    RenderOutputError,
    RenderRunner,
    Status,
    UnsafePathError,
)
from renderstate.files import (
    backup,
    backup_path,
    backups,
    create_temporary,
    discard,
    make_durable,
    publish,
    publishing,
    remove_temporary_files,
    restore,
    scratch_path,
    settle_backups,
)
from renderstate.recovery import fail_interrupted
from renderstate.testing import FakeRenderer, InlineExecutor, MemoryAdapter, MemoryProject

CHILD = Path(__file__).with_name("publish_child.py")
OLD = b"the previous, good video"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def final(tmp_path: Path) -> Path:
    path = tmp_path / "media" / "projects" / "42" / "final.mp4"
    path.parent.mkdir(parents=True)
    path.write_bytes(OLD)
    return path


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ------------------------------------------------------------------ the context manager


def test_publishing_replaces_the_final_file_on_success(final: Path) -> None:
    """The block writes a temporary file in a private directory beside final.mp4, named
    like it; leaving the block replaces final.mp4 and removes the directory."""
    with publishing(final) as target:
        private = target.resolve().parent  # the path leads there through a descriptor
        assert private.parent == final.parent
        assert private.name == target.name
        assert private.stat().st_uid == os.geteuid()
        assert stat.S_IMODE(private.stat().st_mode) == 0o700  # nobody else renames in it
        assert target.name.startswith(".final-")
        assert target.name.endswith(".partial.mp4")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600  # private while it is written
        assert target.read_bytes() == b""
        target.write_bytes(b"the new video")
        target.with_name(target.name + ".soundtrack.wav").write_bytes(b"scratch")
        assert final.read_bytes() == OLD  # nothing published before the block ends
    assert final.read_bytes() == b"the new video"
    assert stat.S_IMODE(final.stat().st_mode) == 0o644  # the web server can read it
    assert listing(final.parent) == ["final.mp4"]  # scratch files removed too


def test_publishing_creates_the_final_directory(tmp_path: Path) -> None:
    """A first version of a file needs no directory prepared by the caller."""
    final = tmp_path / "media" / "projects" / "7" / "final.mp4"
    with publishing(final) as target:
        target.write_bytes(b"first")
    assert final.read_bytes() == b"first"


@pytest.mark.parametrize("raised", [RuntimeError("encoder crashed"), KeyboardInterrupt()])
def test_a_failing_block_leaves_the_final_file_byte_identical(
    final: Path, raised: BaseException
) -> None:
    """An exception or Ctrl-C inside the block: final.mp4 untouched, no temporary file left."""
    before = digest(final)
    with pytest.raises(type(raised)), publishing(final) as target:  # noqa: PT012 - the block is under test
        target.write_bytes(b"\0" * 8192)  # a fragment of the new video
        target.with_name(target.name + ".soundtrack.wav").write_bytes(b"scratch")
        raise raised
    assert digest(final) == before
    assert listing(final.parent) == ["final.mp4"]


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (lambda target: target.unlink(), "the file is missing"),
        (lambda target: None, "the file is empty"),
        (lambda target: (target.unlink(), target.mkdir()), "it is not a regular file"),
    ],
)
def test_a_block_that_wrote_no_file_publishes_nothing(
    final: Path, write: object, reason: str
) -> None:
    """Missing, empty or not a file: RenderOutputError naming why; final.mp4 untouched."""
    before = digest(final)
    with pytest.raises(RenderOutputError) as info, publishing(final, project_key=42) as target:
        write(target)  # type: ignore[operator]
    assert info.value.reason == reason
    assert info.value.project_key == 42
    assert "Project 42" in str(info.value) or "project 42" in str(info.value)
    assert digest(final) == before
    assert listing(final.parent) == ["final.mp4"]


def test_a_failed_rename_leaves_the_final_file_and_no_temporary(tmp_path: Path) -> None:
    """A final path the rename cannot replace (a directory) fails cleanly."""
    final = tmp_path / "final.mp4"
    final.mkdir()
    (final / "keep").write_bytes(b"x")
    with pytest.raises(OSError), publishing(final) as target:  # noqa: PT011 - the OS decides which
        target.write_bytes(b"new")
    assert listing(tmp_path) == ["final.mp4"]
    assert (final / "keep").read_bytes() == b"x"


# ------------------------------------------------------------------ a file written elsewhere


def test_publish_moves_a_file_written_elsewhere_on_the_same_file_system(
    final: Path, tmp_path: Path
) -> None:
    """A render function's own output file is renamed over final.mp4."""
    written = tmp_path / "work" / "render-output.mp4"
    written.parent.mkdir()
    written.write_bytes(b"the new video")
    inode = written.stat().st_ino
    assert publish(written, final) == final
    assert final.read_bytes() == b"the new video"
    assert final.stat().st_ino == inode  # renamed, not copied
    assert stat.S_IMODE(final.stat().st_mode) == 0o644
    assert not written.exists()
    assert listing(final.parent) == ["final.mp4"]


@pytest.fixture
def other_file_system(tmp_path: Path) -> Iterator[Path]:
    shm = Path("/dev/shm")  # a tmpfs: another file system than tmp_path's
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the test's temporary directory")
    with tempfile.TemporaryDirectory(dir=shm) as directory:
        yield Path(directory)


def test_publish_copies_across_file_systems_then_renames(
    final: Path, other_file_system: Path
) -> None:
    """From another file system the file is copied beside final.mp4, then renamed."""
    written = other_file_system / "render-output.mp4"
    written.write_bytes(b"the new video from tmpfs")
    assert written.stat().st_dev != final.stat().st_dev
    assert publish(written, final) == final
    assert final.read_bytes() == b"the new video from tmpfs"
    assert stat.S_IMODE(final.stat().st_mode) == 0o644
    assert not written.exists()
    assert listing(final.parent) == ["final.mp4"]


def test_a_failed_publish_across_file_systems_keeps_everything(
    tmp_path: Path, other_file_system: Path
) -> None:
    """The copy cannot replace the final path (a directory): it, and the source, stay."""
    final = tmp_path / "media" / "final.mp4"
    final.mkdir(parents=True)
    (final / "keep").write_bytes(OLD)
    written = other_file_system / "render-output.mp4"
    written.write_bytes(b"the new video")
    with pytest.raises(IsADirectoryError):
        publish(written, final)
    assert listing(final.parent) == ["final.mp4"]  # the copy beside it is gone
    assert (final / "keep").read_bytes() == OLD
    assert written.read_bytes() == b"the new video"


@pytest.mark.parametrize(
    ("content", "reason"), [(None, "the file is missing"), (b"", "the file is empty")]
)
def test_publish_refuses_a_missing_or_empty_file(
    final: Path, tmp_path: Path, content: bytes | None, reason: str
) -> None:
    """Nothing to publish: RenderOutputError, final.mp4 untouched."""
    written = tmp_path / "out.mp4"
    if content is not None:
        written.write_bytes(content)
    before = digest(final)
    with pytest.raises(RenderOutputError) as info:
        publish(written, final, project_key=42)
    assert info.value.reason == reason
    assert digest(final) == before
    assert listing(final.parent) == ["final.mp4"]


def test_publish_refuses_a_symbolic_link(final: Path, tmp_path: Path) -> None:
    """A returned link is not published: final.mp4 would become a link into scratch space."""
    written = tmp_path / "out.mp4"
    written.write_bytes(b"the new video")
    link = tmp_path / "link.mp4"
    link.symlink_to(written)
    with pytest.raises(RenderOutputError, match="symbolic link"):
        publish(link, final)
    assert final.read_bytes() == OLD
    assert not final.is_symlink()


def test_publish_refuses_the_final_file_itself(final: Path) -> None:
    """A render that wrote over final.mp4 in place is refused with a typed, actionable error."""
    final.write_bytes(b"written in place")
    link = final.with_name("alias.mp4")
    link.hardlink_to(final)
    for source in (final, link):
        with pytest.raises(InvalidOutputPathError) as info:
            publish(source, final)
        message = str(info.value)
        assert "overwritten while it was written" in message
        assert "renderstate.files.publishing" in message
        assert "relative POSIX path" not in message
    assert pickle.loads(pickle.dumps(info.value)).hint == info.value.hint
    assert final.read_bytes() == b"written in place"


# ------------------------------------------------------------------ the pieces


def test_remove_temporary_files_removes_only_the_temporary_files_of_that_final(
    final: Path,
) -> None:
    """Temporary files of final.mp4 and their scratch files go; nothing else does."""
    mine = [create_temporary(final), create_temporary(final)]
    scratch = mine[0].with_name(mine[0].name + ".soundtrack.wav")
    scratch.write_bytes(b"s")
    other_final = final.with_name("final-v2.mp4")
    theirs = create_temporary(other_final)
    unrelated = final.with_name(".final-notatoken.partial.mp4")
    unrelated.write_bytes(b"u")
    removed = remove_temporary_files(final)
    assert sorted(removed) == sorted([*mine, scratch])
    assert listing(final.parent) == sorted(["final.mp4", theirs.name, unrelated.name])
    assert final.read_bytes() == OLD
    assert remove_temporary_files(final) == []
    assert remove_temporary_files(final.parent / "missing" / "final.mp4") == []


def test_discard_removes_a_temporary_file_and_its_scratch_files(final: Path) -> None:
    """discard() is the clean-up of one temporary file; a second call is harmless."""
    temporary = create_temporary(final)
    temporary.with_name(temporary.name + ".x").write_bytes(b"x")
    discard(temporary)
    discard(temporary)
    assert listing(final.parent) == ["final.mp4"]


def test_scratch_paths_are_short_and_removed_with_their_temporary_file(final: Path) -> None:
    """scratch_path() names fit beside a 255-byte name; both clean-ups remove them, and
    only those of the temporary file they were named after."""
    long_final = final.with_name("f" * 221 + ".mp4")  # its temporary files: 251 bytes
    mine, other = create_temporary(long_final), create_temporary(long_final)
    theirs = create_temporary(final)
    for temporary in (mine, other, theirs):
        for label in ("soundtrack.wav", "piece000000.mp4"):
            path = scratch_path(temporary, label)
            assert path.parent == final.parent
            assert path.name.startswith(".renderstate-")
            assert path.name.endswith(f".{label}")
            assert len(path.name) <= len(".renderstate-") + 16 + 1 + len(label)
            path.write_bytes(b"s")
    assert scratch_path(mine, "x") != scratch_path(other, "x")
    discard(other)
    assert sorted(remove_temporary_files(long_final)) == sorted(
        [mine, scratch_path(mine, "soundtrack.wav"), scratch_path(mine, "piece000000.mp4")]
    )
    assert listing(final.parent) == sorted(
        [
            "final.mp4",
            theirs.name,
            scratch_path(theirs, "soundtrack.wav").name,
            scratch_path(theirs, "piece000000.mp4").name,
        ]
    )
    discard(theirs)
    assert listing(final.parent) == ["final.mp4"]


@pytest.mark.parametrize("label", ["", ".wav", "a/b", "a\nb", "caf\u00e9", "x" * 65, "a b"])
def test_a_scratch_label_that_is_not_a_plain_name_is_refused(final: Path, label: str) -> None:
    """Labels are short plain names: anything else is a ValueError saying what is allowed."""
    with pytest.raises(ValueError, match="ASCII letters, digits") as info:
        scratch_path(final, label)
    assert repr(label) in str(info.value)


LONGEST = ["x" * 251 + ".mp4", "\u00e9" * 125 + ".mp4", os.fsdecode(b"\xe9" * 251) + ".mp4"]
"""Final names of 254 and 255 bytes: "." + stem + "-<16 hex>.partial" would be 281 bytes."""


@pytest.mark.parametrize("name", LONGEST, ids=["ascii", "utf8", "not-utf8"])
def test_a_final_name_as_long_as_the_file_system_allows_is_published(
    final: Path, name: str
) -> None:
    """Its temporary file's name is cut to 255 bytes; publishing, discard() and
    remove_temporary_files() work as for any name, and another final sharing all but
    its last characters keeps its own temporary files."""
    long_final = final.with_name(name)
    sibling = final.with_name(name[:-5] + "y.mp4")
    theirs = create_temporary(sibling)
    with publishing(long_final) as target:
        assert len(os.fsencode(target.name)) <= 255
        assert target.name.startswith("." + name[:100])
        assert target.name.endswith(".partial.mp4")
        target.write_bytes(b"new")
    assert long_final.read_bytes() == b"new"
    mine = create_temporary(long_final)
    scratch = scratch_path(mine, "soundtrack.wav")
    scratch.write_bytes(b"s")
    assert sorted(remove_temporary_files(long_final)) == sorted([mine, scratch])
    assert listing(final.parent) == sorted(["final.mp4", name, theirs.name])
    assert remove_temporary_files(sibling) == [theirs]


def test_the_runner_renders_to_a_final_name_of_255_bytes(tmp_path: Path) -> None:
    """An output path whose file name is as long as the file system allows completes."""
    output_path = "projects/42/" + "v" * 251 + ".mp4"
    project = MemoryProject()
    runner = RenderRunner(
        MemoryAdapter(),
        FakeRenderer(frames=3),
        media_root=tmp_path / "media",
        executor=InlineExecutor(),
        output_path_for=lambda _: output_path,
    )
    with runner:
        job = runner.submit(project)
    assert job.wait() is Status.COMPLETED
    assert project.output_path == output_path
    assert listing(tmp_path / "media" / "projects" / "42") == ["v" * 251 + ".mp4"]


def test_make_durable_opens_the_file_to_the_web_server(tmp_path: Path) -> None:
    """A checked file is mode 0644, whatever it was created with."""
    temporary = create_temporary(tmp_path / "v.mp4")
    temporary.write_bytes(b"v")
    make_durable(temporary)
    assert stat.S_IMODE(temporary.stat().st_mode) == 0o644


def test_make_durable_never_chmods_or_syncs_through_a_link(tmp_path: Path) -> None:
    """A temporary name swapped for a link to a private file: refused, the file's mode kept."""
    private = tmp_path / "private.mp4"
    private.write_bytes(b"someone's own file")
    private.chmod(0o600)
    temporary = create_temporary(tmp_path / "v.mp4")
    temporary.unlink()
    temporary.symlink_to(private)
    with pytest.raises(RenderOutputError, match="symbolic link"):
        make_durable(temporary)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_publishing_with_a_media_root_refuses_a_linked_directory(tmp_path: Path) -> None:
    """Below the media root, a directory that is a link is refused before anything is
    written through it; the error names it."""
    media, outside = tmp_path / "media", tmp_path / "outside"
    outside.mkdir()
    (media / "projects").mkdir(parents=True)
    (media / "projects" / "42").symlink_to(outside)
    final = media / "projects" / "42" / "final.mp4"
    with pytest.raises(UnsafePathError, match=r"projects/42'.*symbolic link"):  # noqa: SIM117
        with publishing(final, media_root=media) as target:
            target.write_bytes(b"never")
    with pytest.raises(UnsafePathError):
        remove_temporary_files(final, media_root=media)
    assert list(outside.iterdir()) == []


def test_a_path_outside_the_media_root_is_refused(tmp_path: Path) -> None:
    """The journal's functions given a final file outside their media root refuse it."""
    with pytest.raises(UnsafePathError, match="not below the media root"):
        backup(tmp_path / "elsewhere" / "final.mp4", 1, media_root=tmp_path / "media")


# ------------------------------------------------------------------ a killed writer


def start_killed_writer(final: Path) -> Path:
    """Run a child that writes inside publishing(final), SIGKILL it mid-write."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(final)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("writing"), line
        temporary = Path(line.split(" ", 1)[1].strip())
        assert temporary.stat().st_size == 8192
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return temporary


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_writer_sigkilled_inside_publishing_leaves_the_final_file_byte_identical(
    final: Path,
) -> None:
    """The real app's fault: a re-render killed mid-write never touches final.mp4."""
    before = digest(final)
    temporary = start_killed_writer(final)
    assert digest(final) == before  # not a fragment, not deleted
    leftovers = set(listing(final.parent)) - {"final.mp4"}
    assert leftovers == {temporary.name}  # the render's private directory, named like it
    private = final.parent / temporary.name
    assert listing(private) == sorted([temporary.name, temporary.name + ".soundtrack.wav"])
    assert sorted(p.name for p in remove_temporary_files(final)) == sorted(leftovers)
    assert listing(final.parent) == ["final.mp4"]
    assert digest(final) == before


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_runner_recovery_cleans_up_after_a_writer_killed_inside_publishing(
    tmp_path: Path, final: Path
) -> None:
    """A ProjectLifecycle app whose render process died: the runner's recovery finds its files."""
    adapter = MemoryAdapter()
    project = MemoryProject(status="COMPLETED", output_path="projects/42/final.mp4")
    ProjectLifecycle(project, adapter).start_render()
    before = digest(final)
    start_killed_writer(final)
    runner = RenderRunner(
        adapter,
        FakeRenderer(),
        media_root=tmp_path / "media",
        executor=InlineExecutor(),
        output_path_for=lambda _: "projects/42/final.mp4",
    )
    with runner:
        records = runner.recover_interrupted([project])
    assert [r.target for r in records] == [Status.FAILED]
    assert project.output_path == "projects/42/final.mp4"
    assert digest(final) == before
    assert listing(final.parent) == ["final.mp4"]


# ------------------------------------------------------------------ the journal


def renew(final: Path, data: bytes) -> None:
    """Replace ``final`` by a new file, as a publish does (writing in place would change its
    backup too: a backup is a second name of the same file)."""
    new = final.with_name("new.tmp")
    new.write_bytes(data)
    new.replace(final)


def test_a_backup_is_a_durable_link_that_no_clean_up_removes(final: Path) -> None:
    """backup() keeps the previous file under its tag, a name no temporary-file clean-up takes."""
    path = backup(final, 17)
    assert path == final.with_name(".final-17.backup.mp4")
    assert path.samefile(final)
    assert backups(final) == {"17": path}
    temporary = create_temporary(final)
    discard(temporary)
    assert remove_temporary_files(final) == []
    assert path.read_bytes() == OLD
    # A second backup of the same tag keeps the first: it holds the older version.
    renew(final, b"newer")
    assert backup(final, "17") == path
    assert path.read_bytes() == OLD


def test_restore_puts_the_previous_file_back_whatever_point_the_publish_reached(
    final: Path,
) -> None:
    """Before the rename (the backup is the final file) and after it, restore() gives OLD."""
    backup(final, 5)
    assert restore(final, 5)
    assert final.read_bytes() == OLD
    assert listing(final.parent) == ["final.mp4"]
    backup(final, 6)
    temporary = create_temporary(final)
    temporary.write_bytes(b"new")
    temporary.replace(final)
    assert restore(final, 6)
    assert final.read_bytes() == OLD
    assert not restore(final, 6)  # nothing left to restore
    assert listing(final.parent) == ["final.mp4"]


def test_a_first_version_is_backed_up_as_its_absence(tmp_path: Path) -> None:
    """No final yet: the backup says so, and restoring it removes the new file."""
    final = tmp_path / "final.mp4"
    path = backup(final, "abc")
    assert path.stat().st_size == 0
    renew(final, b"new")
    assert restore(final, "abc")
    assert listing(tmp_path) == []


def test_settle_restores_the_uncommitted_and_drops_the_committed(final: Path) -> None:
    """The oldest uncommitted backup wins; committed ones are removed."""
    backup(final, 3)  # committed leftover (an older version)
    renew(final, b"v3")
    backup(final, 4)  # holds v3: attempt 4 never committed
    renew(final, b"v4")
    backup(final, 5)  # holds v4: attempt 5 never committed either
    renew(final, b"v5")
    settled = settle_backups(final, lambda tag: tag == "3")
    assert settled.restored == ["5", "4"]
    assert settled.dropped == ["3"]
    assert final.read_bytes() == b"v3"
    assert listing(final.parent) == ["final.mp4"]


@pytest.mark.parametrize("tag", ["", "A", "a-b", "1" * 21, -1, True, "x/y"])
def test_a_tag_that_is_not_a_short_plain_name_is_refused(final: Path, tag: object) -> None:
    """Tags are 1 to 20 lower-case letters and digits, or an id >= 0."""
    with pytest.raises(ValueError, match="backup tag"):
        backup_path(final, tag)  # type: ignore[arg-type]


def test_a_backup_name_fits_the_file_system_for_the_longest_final_name(tmp_path: Path) -> None:
    """A 255-byte final name: its backup's name is cut to fit, and still found by its tag."""
    final = tmp_path / ("é" * 125 + "x.mp4")
    assert len(os.fsencode(final.name)) == 256 - 1
    final.write_bytes(OLD)
    path = backup(final, "1" * 20)
    assert len(os.fsencode(path.name)) <= 255
    assert backups(final) == {"1" * 20: path}
    assert restore(final, "1" * 20)
    assert final.read_bytes() == OLD


def test_backups_of_another_final_are_not_its_own(tmp_path: Path) -> None:
    """intro.mp4's backups are not intro-v2.mp4's, nor the reverse."""
    intro, v2 = tmp_path / "intro.mp4", tmp_path / "intro-v2.mp4"
    intro.write_bytes(b"a")
    v2.write_bytes(b"b")
    backup(v2, 1)
    assert backups(intro) == {}
    backup(intro, 2)
    assert set(backups(v2)) == {"1"}


def test_publishing_with_commit_drops_the_backup_once_committed(final: Path) -> None:
    """The commit runs after the rename; then the backup is gone."""
    seen: list[bytes] = []
    with publishing(final, commit=lambda: seen.append(final.read_bytes())) as target:
        target.write_bytes(b"new")
        scratch_path(target, "sound.wav").write_bytes(b"scratch")
    assert seen == [b"new"]
    assert final.read_bytes() == b"new"
    assert listing(final.parent) == ["final.mp4"]


@pytest.mark.parametrize("raised", [RuntimeError("the save was refused"), KeyboardInterrupt()])
def test_publishing_puts_the_previous_file_back_when_the_commit_raises(
    final: Path, raised: BaseException
) -> None:
    """A commit that raises: final.mp4 is the previous video again, nothing left beside it."""

    def commit() -> None:
        raise raised

    with pytest.raises(type(raised)), publishing(final, commit=commit) as target:
        target.write_bytes(b"new")
    assert final.read_bytes() == OLD
    assert listing(final.parent) == ["final.mp4"]


def test_publishing_a_first_version_removes_it_when_the_commit_raises(tmp_path: Path) -> None:
    """No previous file: a refused commit leaves none."""
    final = tmp_path / "p" / "final.mp4"

    def commit() -> None:
        raise RuntimeError

    with pytest.raises(RuntimeError), publishing(final, commit=commit) as target:
        target.write_bytes(b"new")
    assert listing(final.parent) == []


def test_publishing_settles_what_an_earlier_committed_publish_left(final: Path) -> None:
    """A backup left by a process killed after its commit is removed on entry."""
    backup(final, "0123456789abcdef")
    with publishing(final, commit=lambda: None) as target:
        assert listing(final.parent) == sorted(["final.mp4", target.name])
        target.write_bytes(b"new")
    assert listing(final.parent) == ["final.mp4"]


def test_publish_with_commit_gives_the_source_back_when_the_commit_raises(
    final: Path, tmp_path: Path
) -> None:
    """publish(commit=...) refused: the source is where it was, final.mp4 the previous video."""
    source = tmp_path / "render.mp4"
    source.write_bytes(b"new")

    def commit() -> None:
        raise RuntimeError

    with pytest.raises(RuntimeError):
        publish(source, final, commit=commit, tag=9)
    assert source.read_bytes() == b"new"
    assert final.read_bytes() == OLD
    assert listing(final.parent) == ["final.mp4"]
    publish(source, final, commit=lambda: None, tag=9)
    assert final.read_bytes() == b"new"
    assert not source.exists()
    assert listing(final.parent) == ["final.mp4"]


def test_recovery_restores_before_failing_and_drops_after_a_commit(final: Path) -> None:
    """fail_interrupted: PROCESSING -> backup restored, FAILED; COMPLETED -> backup dropped."""
    project = MemoryProject(status="PROCESSING", output_path="projects/42/final.mp4")
    lifecycle = ProjectLifecycle(project, MemoryAdapter())
    backup(final, "aa")
    renew(final, b"never committed")
    assert fail_interrupted(lifecycle, final_file=final) is not None
    assert lifecycle.status is Status.FAILED
    assert final.read_bytes() == OLD
    assert listing(final.parent) == ["final.mp4"]

    done = MemoryProject(status="COMPLETED", output_path="projects/42/final.mp4")
    backup(final, "bb")
    renew(final, b"committed")
    assert fail_interrupted(ProjectLifecycle(done, MemoryAdapter()), final_file=final) is None
    assert final.read_bytes() == b"committed"
    assert listing(final.parent) == ["final.mp4"]


def test_temporary_files_named_by_a_token_are_removed_by_that_token_alone(
    tmp_path: Path,
) -> None:
    """create_temporary(token=) names the file by its writer; remove_temporary_files(token=)
    removes that writer's files and scratch files and leaves another's; a token that is not
    16 lower-case hex digits is refused."""
    final = tmp_path / "final.mp4"
    one = create_temporary(final, token="0123456789abcdef")
    assert one.name == ".final-0123456789abcdef.partial.mp4"
    scratch_path(one, "soundtrack.wav").write_bytes(b"x")
    other = create_temporary(final, token="fedcba9876543210")
    with pytest.raises(FileExistsError):
        create_temporary(final, token="0123456789abcdef")
    for bad in ("0123456789ABCDEF", "0123", "*" * 16):
        with pytest.raises(ValueError, match="16 lower-case hex digits"):
            create_temporary(final, token=bad)
        with pytest.raises(ValueError, match="16 lower-case hex digits"):
            remove_temporary_files(final, token=bad)
    removed = remove_temporary_files(final, token="0123456789abcdef")
    assert len(removed) == 2
    assert [p.name for p in tmp_path.iterdir()] == [other.name]
