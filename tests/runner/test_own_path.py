"""Renderers that write their own file and return its path (the common app shape)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from renderstate import RenderOutputError, RenderRunner, Status
from renderstate.runner import OnProgress, Phase, Rendered, own_path
from renderstate.testing import InlineExecutor, MemoryAdapter, MemoryProject
from renderstate.typing import ProgressSink

from .sqlite_store import Row, SQLiteStore

CHILD = Path(__file__).with_name("render_child.py")
MOVIEPY = "TEMP_MPY_"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inline(renderer: object, media: Path) -> RenderRunner[MemoryProject]:
    return RenderRunner(MemoryAdapter(), renderer, media_root=media, executor=InlineExecutor())  # type: ignore[arg-type]


def test_a_render_function_that_returns_its_path_is_published(tmp_path: Path) -> None:
    """render(project, on_progress) -> path: the file moves over final.mp4 atomically, with
    its progress reported in (done, total) and (phase, done, total) forms."""
    media = tmp_path / "media"
    own = media / "renders"
    own.mkdir(parents=True)
    steps: list[tuple[str, int, int]] = []

    def render_story(project: MemoryProject, on_progress: OnProgress) -> Path:
        on_progress("tts", 1, 1)
        out = own / f"{project.id}.mp4"
        out.write_bytes(b"NEW VIDEO")
        on_progress(1, 1)
        return out

    def spy(project: MemoryProject, target: Path, progress: ProgressSink) -> object:
        def sink(phase: str, done: int, total: int) -> None:
            steps.append((phase, done, total))
            progress(phase, done, total)

        return own_path(render_story)(project, target, sink)

    project = MemoryProject(id=7)  # type: ignore[arg-type]
    final = media / "projects" / "7" / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"OLD VIDEO")
    job = inline(spy, media).submit(project)
    assert job.wait() is Status.COMPLETED
    assert final.read_bytes() == b"NEW VIDEO"
    assert final.stat().st_mode & 0o777 == 0o644
    assert project.output_path == "projects/7/final.mp4"
    assert list(own.iterdir()) == []  # moved, not copied
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    assert steps == [("tts", 1, 1), ("rendering", 1, 1)]
    assert job.progress.phase is Phase.DONE


def test_a_renderer_returning_a_path_from_call_is_published(tmp_path: Path) -> None:
    """A three-argument renderer may also return a path of its own (str or Path)."""
    scratch = tmp_path / "elsewhere.mp4"

    def renderer(project: object, target: Path, progress: ProgressSink) -> str:
        scratch.write_bytes(b"MINE")
        return str(scratch)

    project = MemoryProject(id=8)  # type: ignore[arg-type]
    assert inline(renderer, tmp_path / "media").submit(project).wait() is Status.COMPLETED
    assert (tmp_path / "media" / "projects" / "8" / "final.mp4").read_bytes() == b"MINE"
    assert not scratch.exists()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: d / "missing.mp4", "the file is missing"),
        (lambda d: ((d / "empty.mp4").write_bytes(b"") and None) or d / "empty.mp4", "empty"),
        (lambda d: 42, "returned int, not the path"),
    ],
)
def test_an_unusable_returned_file_fails_and_keeps_the_previous_video(
    tmp_path: Path, make: object, match: str
) -> None:
    """Missing, empty, or not a path at all: FAILED with RenderOutputError that names why;
    final.mp4 is byte-identical and the message says it was checked."""
    media = tmp_path / "media"
    final = media / "projects" / "9" / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"OLD VIDEO")

    def renderer(project: object, target: Path, progress: ProgressSink) -> object:
        return make(tmp_path)  # type: ignore[operator]

    job = inline(renderer, media).submit(MemoryProject(id=9))  # type: ignore[arg-type]
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, RenderOutputError)
    assert match in str(job.error)
    assert "untouched (checked)" in str(job.error)
    assert final.read_bytes() == b"OLD VIDEO"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def test_a_renderer_that_overwrote_the_final_file_is_refused(tmp_path: Path) -> None:
    """Returning the final file itself (written in place) fails the render and says why;
    nothing claims the previous video is untouched, because it is not."""
    media = tmp_path / "media"
    final = media / "projects" / "3" / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"OLD VIDEO")

    def in_place(project: object, target: Path, progress: ProgressSink) -> Path:
        final.write_bytes(b"HALF")
        return final

    job = inline(in_place, media).submit(MemoryProject(id=3))  # type: ignore[arg-type]
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, RenderOutputError)
    assert "the final file" in str(job.error)
    assert "untouched" not in str(job.error)


def test_own_path_refuses_a_function_that_returns_nothing(tmp_path: Path) -> None:
    """A wrapped function must return the path: None is a TypeError that says so."""

    def forgetful(project: object, on_progress: OnProgress) -> Path:
        return None  # type: ignore[return-value]

    job = inline(own_path(forgetful), tmp_path).submit(MemoryProject())
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, TypeError)
    assert "must return the path" in str(job.error)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_during_a_re_render_through_own_path_keeps_the_previous_video(
    tmp_path: Path,
) -> None:
    """The real app's fault: a re-render of a COMPLETED project, by a function that writes
    its own file, is SIGKILLed mid-way. final.mp4 stays byte-identical; recovery fails the
    project and a new render completes it."""
    store = SQLiteStore(tmp_path / "projects.sqlite3")
    media = tmp_path / "media"
    store.insert(Row("p1", "story", "COMPLETED", "projects/p1/final.mp4"))
    final = media / "projects" / "p1" / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"the previous, good video" * 1000)
    before = digest(final)
    identity = (final.stat().st_ino, final.stat().st_mtime_ns)

    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(store.path), str(media), "p1", "own"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("rendering"), line
        written = Path(line.split(" ", 1)[1].strip())
        assert written.stat().st_size > 0  # the app's own file is half written
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert store.load("p1").status == "PROCESSING"
    assert digest(final) == before
    assert (final.stat().st_ino, final.stat().st_mtime_ns) == identity

    def quick(project: Row, on_progress: OnProgress) -> Path:
        out = media / "renders" / "again.mp4"
        out.write_bytes(b"the new video")
        on_progress(1, 1)
        return out

    runner = RenderRunner(store, own_path(quick), media_root=media, executor=InlineExecutor())
    records = runner.recover_interrupted(store.with_status("PROCESSING"))
    assert [r.project_key for r in records] == ["p1"]
    assert store.load("p1").status == "FAILED"
    assert store.load("p1").output_path == "projects/p1/final.mp4"  # still the good video
    assert digest(final) == before
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    assert runner.submit(store.load("p1")).wait() is Status.COMPLETED
    assert final.read_bytes() == b"the new video"


class OriginApp:
    """The origin app's render function, unchanged: it takes the project's id, writes where
    it is told, leaves moviepy's scratch audio beside its output while it works, reports
    ``(current, total, description)`` and returns a dict."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.labels: list[str] = []

    def __call__(self, project_id: int, on_progress: OnProgress, output_path: Path) -> dict:
        scratch = output_path.with_name(f"{output_path.stem}TEMP_MPY_wvf_snd.mp4")
        scratch.write_bytes(b"scratch audio")
        on_progress("tts")
        on_progress(0.25)
        for frame in range(1, 5):
            if frame == self.fail_at:
                raise RuntimeError("the encoder crashed")
            on_progress(frame, 4, "Rendering frames")
            self.labels.append(on_progress.label or "")
        output_path.write_bytes(b"NEW VIDEO " + str(project_id).encode())
        scratch.unlink()  # moviepy removes it when the write succeeds, not when it fails
        return {"video_path": str(output_path), "duration": 4.0}


def origin_renderer(app: OriginApp) -> object:
    return own_path(app, argument=lambda p: p.id, target="output_path", result_key="video_path")


def project_with_video(media: Path, key: int) -> tuple[MemoryProject, Path]:
    final = media / "projects" / str(key) / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"OLD VIDEO")
    return MemoryProject(id=key), final  # type: ignore[arg-type]


def test_the_origin_app_s_function_is_published_unchanged(tmp_path: Path) -> None:
    """argument=, target=, result_key= and the (done, total, label) form: no shim."""
    media = tmp_path / "media"
    project, final = project_with_video(media, 11)
    app = OriginApp()
    job = inline(origin_renderer(app), media).submit(project)
    assert job.wait() is Status.COMPLETED, job.error
    assert final.read_bytes() == b"NEW VIDEO 11"
    assert app.labels == ["Rendering frames"] * 4
    assert job.progress.phase is Phase.DONE
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def test_the_app_s_progress_label_reaches_progress(tmp_path: Path) -> None:
    """on_progress(current, total, description): the description is the progress's label,
    read while the render runs on the runner's own thread; the next step has none."""
    media = tmp_path / "media"
    project, _ = project_with_video(media, 13)
    labelled = threading.Event()
    go_on = threading.Event()

    def render(project_id: int, on_progress: OnProgress, output_path: Path) -> dict:
        on_progress(1, 4, "Rendering frames")
        labelled.set()
        assert go_on.wait(60)
        on_progress("compose", 0, 1)
        labelled.set()
        assert go_on.wait(60)
        output_path.write_bytes(b"NEW VIDEO")
        return {"video_path": str(output_path)}

    runner = RenderRunner(
        MemoryAdapter(),
        own_path(render, argument=lambda p: p.id, target="output_path", result_key="video_path"),
        media_root=media,
    )
    try:
        job = runner.submit(project)
        assert labelled.wait(60)
        labelled.clear()
        assert job.progress.label == "Rendering frames"
        assert job.progress.step == "rendering"
        assert job.progress.frames_done == 1
        progress = runner.progress(project)
        assert progress is not None
        assert progress.label == "Rendering frames"
        go_on.set()
        assert labelled.wait(60)
        assert job.progress.label is None, "a step of its own, given no label"
        assert job.wait(60) is Status.COMPLETED, job.error
    finally:
        go_on.set()
        runner.shutdown(cancel_running=True)


@pytest.mark.parametrize("how", ["failure", "cancel"])
def test_a_failed_or_cancelled_function_leaves_no_scratch_file(tmp_path: Path, how: str) -> None:
    """With target=, the function's scratch files live in the render's private directory
    and go with it: nothing is left beside the previous video, which is untouched."""
    media = tmp_path / "media"
    project, final = project_with_video(media, 12)
    if how == "failure":
        app = OriginApp(fail_at=3)
        job = inline(origin_renderer(app), media).submit(project)
    else:
        app = OriginApp()
        runner = inline(origin_renderer(app), media)
        real = app.__call__

        def cancelling(project_id: int, on_progress: OnProgress, output_path: Path) -> dict:
            def report(*args: object) -> None:
                if args == (2, 4, "Rendering frames"):
                    assert runner.job(project) is not None
                    runner.job(project).cancel("the user cancelled")  # type: ignore[union-attr]
                on_progress(*args)  # type: ignore[call-overload]

            report.label = None  # type: ignore[attr-defined]
            return real(project_id, report, output_path)  # type: ignore[arg-type]

        runner = RenderRunner(
            MemoryAdapter(),
            own_path(
                cancelling, argument=lambda p: p.id, target="output_path", result_key="video_path"
            ),
            media_root=media,
            executor=InlineExecutor(),
        )
        job = runner.submit(project)
    assert job.wait() is Status.FAILED
    assert final.read_bytes() == b"OLD VIDEO"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def test_on_progress_understands_every_common_form() -> None:
    seen: list[tuple[str, int, int]] = []
    on_progress = OnProgress(lambda *a: seen.append(a), "rendering")
    on_progress(3, 10)
    on_progress("tts", 1, 2)
    on_progress(4, 10, "Rendering frames")
    on_progress(0.5)
    on_progress("compose")
    assert seen == [
        ("rendering", 3, 10),
        ("tts", 1, 2),
        ("rendering", 4, 10),
        ("rendering", 500, 1000),
        ("compose", 0, 0),
    ]
    assert on_progress.label == "Rendering frames"
    with pytest.raises(ValueError, match=r"from 0\.0 to 1\.0"):
        on_progress(1.5)
    for bad in [(True,), (1, 2, 3, 4), ("a", "b", "c"), (1.0, 2)]:
        with pytest.raises(TypeError, match=r"on_progress takes \(done, total\)"):
            on_progress(*bad)  # type: ignore[call-overload]
    assert len(seen) == 5, "a refused call reports nothing"


def test_a_dict_result_needs_its_key_named(tmp_path: Path) -> None:
    def returns_dict(project: object, on_progress: OnProgress) -> dict:
        out = tmp_path / "out.mp4"
        out.write_bytes(b"V")
        return {"video_path": str(out)}

    job = inline(own_path(returns_dict), tmp_path / "m").submit(MemoryProject())
    assert job.wait() is Status.FAILED
    assert "own_path(..., result_key='...')" in str(job.error)
    job = inline(own_path(returns_dict, result_key="path"), tmp_path / "n").submit(MemoryProject())
    assert job.wait() is Status.FAILED
    assert "without 'path'" in str(job.error)
    with pytest.raises(ValueError, match="target='output_path'"):
        own_path(returns_dict, target="output path")


def test_a_function_returning_its_target_as_a_relative_path_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A function that wrote the target it was told and returns that path relative to the
    working directory (os.path.relpath) wrote the target: it is published, not refused as
    'the file being published itself'."""
    media = tmp_path / "media"
    project, final = project_with_video(media, 13)
    monkeypatch.chdir(tmp_path)

    def render(project_id: int, on_progress: OnProgress, output_path: Path) -> dict:
        output_path.write_bytes(b"NEW VIDEO")
        return {"video_path": os.path.relpath(output_path)}

    renderer = own_path(
        render, argument=lambda p: p.id, target="output_path", result_key="video_path"
    )
    job = inline(renderer, media).submit(project)
    assert job.wait() is Status.COMPLETED, job.error
    assert final.read_bytes() == b"NEW VIDEO"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


@pytest.mark.parametrize("value", [42, b"out.mp4", ["out.mp4"]])
def test_a_dict_entry_that_is_not_a_path_fails_clearly(tmp_path: Path, value: object) -> None:
    """With target=, a result_key entry holding a non-path is the runner's clear
    RenderOutputError naming its type, not pathlib's TypeError; the previous video stays."""
    media = tmp_path / "media"
    project, final = project_with_video(media, 14)

    def render(project_id: int, on_progress: OnProgress, output_path: Path) -> dict:
        output_path.write_bytes(b"NEW VIDEO")
        return {"video_path": value}

    renderer = own_path(
        render, argument=lambda p: p.id, target="output_path", result_key="video_path"
    )
    job = inline(renderer, media).submit(project)
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, RenderOutputError), job.error
    assert f"returned {type(value).__name__}, not the path" in str(job.error)
    assert final.read_bytes() == b"OLD VIDEO"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def test_a_function_returning_its_target_resolved_is_published(tmp_path: Path) -> None:
    """A function that resolves the path it is told (Path(output_path).resolve(), common
    before handing it to an encoder) and returns it wrote the target: it is published, not
    refused as 'the file being published itself' with the previous version 'overwritten'."""
    media = tmp_path / "media"
    project, final = project_with_video(media, 15)

    def render(project_id: int, on_progress: OnProgress, output_path: Path) -> dict:
        out = Path(output_path).resolve()
        out.write_bytes(b"NEW VIDEO")
        return {"video_path": str(out)}

    renderer = own_path(
        render, argument=lambda p: p.id, target="output_path", result_key="video_path"
    )
    job = inline(renderer, media).submit(project)
    assert job.wait() is Status.COMPLETED, job.error
    assert final.read_bytes() == b"NEW VIDEO"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def test_sigkill_during_a_function_told_its_target_leaves_nothing_after_recovery(
    tmp_path: Path,
) -> None:
    """target=: the function writes the runner's temporary file and its scratch audio beside
    it, in the render's private directory, and is SIGKILLed mid-way. final.mp4 stays
    byte-identical and, after recovery, is the only thing in its folder."""
    store = SQLiteStore(tmp_path / "projects.sqlite3")
    media = tmp_path / "media"
    store.insert(Row("p1", "story", "COMPLETED", "projects/p1/final.mp4"))
    final = media / "projects" / "p1" / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"the previous, good video" * 1000)
    before = digest(final)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(store.path), str(media), "p1", "own-target"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("rendering"), line
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert store.load("p1").status == "PROCESSING"
    assert digest(final) == before
    assert len(list(final.parent.iterdir())) > 1, "the killed render left its private files"

    def quick(project_id: str, on_progress: OnProgress, output_path: Path) -> None:
        output_path.write_bytes(b"the new video")

    runner = RenderRunner(
        store,
        own_path(quick, argument=lambda p: p.id, target="output_path"),
        media_root=media,
        executor=InlineExecutor(),
    )
    records = runner.recover_interrupted(store.with_status("PROCESSING"))
    assert [r.project_key for r in records] == ["p1"]
    assert store.load("p1").status == "FAILED"
    assert digest(final) == before
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    assert runner.submit(store.load("p1")).wait() is Status.COMPLETED
    assert final.read_bytes() == b"the new video"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def test_a_hard_link_of_the_target_returned_is_refused_clearly(tmp_path: Path) -> None:
    """A function that wrote its target and returns a hard link of it elsewhere is refused
    as that, not as 'the file being published itself ... the previous version was
    overwritten' (it was not); the previous video stays and nothing is left beside it."""
    media = tmp_path / "media"
    project, final = project_with_video(media, 16)
    link = tmp_path / "link.mp4"

    def render(project_id: int, on_progress: OnProgress, output_path: Path) -> Path:
        output_path.write_bytes(b"NEW VIDEO")
        os.link(output_path, link)
        return link

    job = inline(own_path(render, argument=lambda p: p.id, target="output_path"), media).submit(
        project
    )
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, RenderOutputError), job.error
    assert "a second name (a hard link) of the target" in str(job.error)
    assert "overwritten" not in str(job.error)
    assert final.read_bytes() == b"OLD VIDEO"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]


def test_a_target_the_function_cannot_take_is_refused_when_wrapped() -> None:
    """own_path(target=) naming no keyword of the function (a typo), or one of the two it
    gets by position, is refused when the renderer is built, not by every render FAILING
    with Python's 'unexpected keyword argument'."""

    def render_video(project_id: int, on_progress: OnProgress, output_path: Path) -> None:
        output_path.write_bytes(b"V")

    with pytest.raises(ValueError, match=r"takes no keyword argument 'output'"):
        own_path(render_video, target="output")
    with pytest.raises(ValueError, match=r"takes no keyword argument 'on_progress'"):
        own_path(render_video, target="on_progress")
    assert own_path(render_video, target="output_path").target == "output_path"

    def anything(project_id: int, on_progress: OnProgress, **options: object) -> None:
        pass

    assert own_path(anything, target="dest").target == "dest"


def test_on_progress_takes_numpy_counts() -> None:
    """Counts an app computes with numpy (np.int64 frame indices) are integers too: they
    report as ints, rather than failing the render with 'int counts'; numpy's bool is not."""
    np = pytest.importorskip("numpy")
    seen: list[tuple[str, int, int]] = []
    on_progress = OnProgress(lambda *a: seen.append(a), "rendering")
    on_progress(np.int64(3), np.int64(10))
    on_progress("compose", np.int32(1), np.uint16(2))
    on_progress(np.int64(4), np.int64(10), "Rendering frames")
    assert seen == [("rendering", 3, 10), ("compose", 1, 2), ("rendering", 4, 10)]
    assert all(type(n) is int for _, *counts in seen for n in counts)
    with pytest.raises(TypeError, match=r"on_progress takes \(done, total\)"):
        on_progress(np.bool_(1), 10)  # type: ignore[call-overload]


@dataclasses.dataclass(eq=False)
class Video(MemoryProject):
    """The transcoding app's model: its own columns for what the render learns."""

    duration: float | None = None
    metadata: dict[str, object] | None = None


def test_the_function_s_fields_are_saved_with_the_completion(tmp_path: Path) -> None:
    """own_path(fields=): entries of the returned dict go to the app's columns, in the
    completion itself (a list names key and column alike; a mapping renames)."""
    media = tmp_path / "media"
    project_with_video(media, 12)
    project = Video(id=12)  # type: ignore[arg-type]
    renderer = own_path(
        OriginApp(),
        argument=lambda p: p.id,
        target="output_path",
        result_key="video_path",
        fields=["duration"],
    )
    job = inline(renderer, media).submit(project)
    assert job.wait() is Status.COMPLETED, job.error
    assert project.duration == 4.0
    assert project.output_path == "projects/12/final.mp4"

    def plain(project: Video, target: Path, progress: ProgressSink) -> Rendered:
        target.write_bytes(b"NEWER")
        return Rendered(None, {"metadata": {"codec": "h264"}, "duration": 2.5})

    assert inline(plain, media).submit(project).wait() is Status.COMPLETED
    assert (project.duration, project.metadata) == (2.5, {"codec": "h264"})


def test_a_field_the_model_lacks_fails_the_render_before_publishing(tmp_path: Path) -> None:
    """A returned field that is no column of the model: the render fails with the
    ValueError naming it, the previous video stays, nothing of the render is saved."""
    media = tmp_path / "media"
    _, final = project_with_video(media, 13)
    project = Video(id=13, status="COMPLETED", output_path="projects/13/final.mp4")  # type: ignore[arg-type]
    renderer = own_path(
        OriginApp(),
        argument=lambda p: p.id,
        target="output_path",
        result_key="video_path",
        fields={"duration": "durration"},
    )
    job = inline(renderer, media).submit(project)
    assert job.wait() is Status.FAILED
    assert isinstance(job.error, ValueError)
    assert "'durration'" in str(job.error)
    assert final.read_bytes() == b"OLD VIDEO"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    assert project.duration is None
    assert not hasattr(project, "durration")


def test_own_path_fields_need_the_result_key() -> None:
    """fields= reads a returned dict: without result_key it is refused when wrapped."""
    with pytest.raises(ValueError, match="result_key='video_path'"):
        own_path(OriginApp(), fields=["duration"])
    with pytest.raises(TypeError, match="list of keys"):
        own_path(OriginApp(), result_key="video_path", fields="duration")


class MoviePyApp:
    """A render function that writes with moviepy as most apps do: ``write_videofile()`` with
    no ``temp_audiofile_path``, so moviepy's soundtrack goes to the working directory, named
    after the file it was told to write; its progress comes from a proglog logger."""

    def __init__(self, stop_at: int, stop: object) -> None:
        self.stop_at, self.stop = stop_at, stop

    def __call__(self, project_id: int, on_progress: OnProgress, output_path: Path) -> dict:
        import numpy as np  # noqa: PLC0415 - the render extra, as the app's own imports
        import proglog  # noqa: PLC0415
        from moviepy import AudioClip, ColorClip  # noqa: PLC0415

        app = self

        class Frames(proglog.ProgressBarLogger):  # type: ignore[misc]
            def bars_callback(self, bar: str, attr: str, value: int, old: object = None) -> None:
                if bar == "frame_index" and attr == "index":
                    if value == app.stop_at:
                        app.stop()  # type: ignore[operator]
                    on_progress(value, self.bars[bar]["total"] or 1, "Exporting MP4")

        tone = AudioClip(lambda t: np.sin(2 * np.pi * 440 * np.asarray(t)), duration=1, fps=8000)
        clip = ColorClip((32, 32), color=(0, 0, 255)).with_duration(1).with_audio(tone)
        clip.write_videofile(str(output_path), fps=10, audio_codec="aac", logger=Frames())
        return {"video_path": str(output_path)}


@pytest.mark.parametrize("how", ["failure", "cancel"])
def test_moviepy_s_soundtrack_in_the_working_directory_goes_with_the_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A function told where to write, whose moviepy puts its scratch soundtrack in the
    working directory (its default): a failure or a cancel mid-encode leaves nothing there,
    nor beside the previous video; another writer's soundtrack there stays."""
    media = tmp_path / "media"
    cwd = tmp_path / "server"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    (cwd / ".final-0123456789abcdef.partialTEMP_MPY_wvf_snd.mp4").write_bytes(b"another's")
    project, final = project_with_video(media, 13)
    runner: RenderRunner[MemoryProject]

    def stop() -> None:
        assert any(MOVIEPY in p.name for p in cwd.iterdir() if "0123" not in p.name)
        if how == "failure":
            raise RuntimeError("the encoder crashed")
        runner.cancel(project, "the user cancelled")

    renderer = own_path(
        MoviePyApp(3, stop), argument=lambda p: p.id, target="output_path", result_key="video_path"
    )
    runner = inline(renderer, media)
    job = runner.submit(project)
    assert job.wait() is Status.FAILED
    assert final.read_bytes() == b"OLD VIDEO"
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    another = ".final-0123456789abcdef.partialTEMP_MPY_wvf_snd.mp4"
    assert [p.name for p in cwd.iterdir()] == [another]


def test_recovery_removes_a_killed_render_s_soundtrack_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a SIGKILL leaves: the render's private directory beside the video and moviepy's
    soundtrack, named after its temporary file, in the working directory. Recovery, run
    where the server runs, removes both; the soundtrack of another project's render stays."""
    from renderstate.files import remove_temporary_files  # noqa: PLC0415

    cwd = tmp_path / "server"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    final = tmp_path / "media" / "projects" / "14" / "final.mp4"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"OLD VIDEO")
    dead = final.parent / ".final-00000000000000aa.partial.mp4"
    dead.mkdir()
    (dead / dead.name).write_bytes(b"half a vid")
    (cwd / ".final-00000000000000aa.partialTEMP_MPY_wvf_snd.mp4").write_bytes(b"its audio")
    (cwd / ".final-00000000000000bb.partialTEMP_MPY_wvf_snd.mp4").write_bytes(b"another's")
    remove_temporary_files(final)
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.mp4"]
    another = ".final-00000000000000bb.partialTEMP_MPY_wvf_snd.mp4"
    assert [p.name for p in cwd.iterdir()] == [another]
