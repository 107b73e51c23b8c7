"""Child processes die with the thread that started them (PR_SET_PDEATHSIG), and moviepy's
own children do so only inside a render."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import pytest

from renderstate import _children
from renderstate._children import guard_modules, guarding, popen

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"
)

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def _started_in_a_thread(start: object) -> subprocess.Popen[bytes]:
    """Start a child from a thread that then ends, without waiting for it."""
    started: list[subprocess.Popen[bytes]] = []
    thread = threading.Thread(target=lambda: started.append(start(SLEEP)))  # type: ignore[operator]
    thread.start()
    thread.join()
    return started[0]


def _ended_by_sigkill(child: subprocess.Popen[bytes]) -> bool:
    try:
        return child.wait(timeout=20) == -signal.SIGKILL
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return False


def test_a_child_dies_with_the_thread_that_started_it() -> None:
    """popen()'s child is sent SIGKILL when the thread that started it ends: that is why
    every caller waits for its child in the thread that started it."""
    assert _ended_by_sigkill(_started_in_a_thread(popen))


def test_a_plain_child_outlives_its_thread() -> None:
    """Without the guard, the child outlives the thread (what the guard changes)."""
    child = _started_in_a_thread(subprocess.Popen)
    try:
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_a_child_whose_parent_already_changed_kills_itself() -> None:
    """The parent may die between the fork and the prctl: the child then finds another
    parent (getppid) and kills itself instead of running on unwatched."""
    script = textwrap.dedent(
        """
        import os, signal
        from renderstate._children import die_with_parent

        preexec = die_with_parent()  # prepared for this process as the parent
        assert preexec is not None
        preexec_runs_in_the_right_child = os.fork()
        if preexec_runs_in_the_right_child == 0:
            preexec()
            os._exit(0)
        _, status = os.waitpid(preexec_runs_in_the_right_child, 0)
        print("own child", os.waitstatus_to_exitcode(status))
        middle = os.fork()
        if middle == 0:
            # A grandchild: its parent is not the one preexec was prepared for.
            orphan = os.fork()
            if orphan == 0:
                preexec()
                os._exit(0)
            _, status = os.waitpid(orphan, 0)
            os._exit(0 if os.waitstatus_to_exitcode(status) == -signal.SIGKILL else 1)
        _, status = os.waitpid(middle, 0)
        print("other parent", os.waitstatus_to_exitcode(status))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split("\n")[:2] == ["own child 0", "other parent 0"], done


def test_children_are_started_through_setpriv_with_vfork_not_a_preexec_fn() -> None:
    """Where util-linux's setpriv has --pdeathsig, the guard is an exec chain (setpriv, a
    shell that checks its parent, the program): no preexec_fn, so Python can vfork instead
    of copying a render's memory with fork."""
    if shutil.which("setpriv") is None:
        pytest.skip("no util-linux setpriv here: children are guarded by a preexec_fn")
    child = popen(["true"])
    assert child.wait(timeout=20) == 0
    assert Path(child.args[0]).name == "setpriv", child.args
    assert child.args[1:3] == ["--pdeathsig", "KILL"]
    assert child.args[-1] == shutil.which("true")  # resolved by the parent


def test_a_wrapped_child_whose_parent_already_changed_kills_itself() -> None:
    """The parent may die between the start and setpriv's request: the shell then finds
    another parent than the one expected and kills itself instead of running unwatched."""
    readable, ready = os.pipe()
    chain = _children.wrapped(SLEEP, ready, parent=1)
    if chain is None:
        pytest.skip("no util-linux setpriv here: children are guarded by a preexec_fn")
    child = subprocess.Popen(chain, pass_fds=(ready,))
    os.close(ready)
    assert _ended_by_sigkill(child)
    assert os.read(readable, 1) == b""  # it never said it was ready: it ran nothing
    os.close(readable)


def test_without_setpriv_a_preexec_fn_guards_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where there is no setpriv with --pdeathsig, the preexec_fn guard is used instead."""
    monkeypatch.setattr(_children, "_wrapper", lambda: None)
    child = _started_in_a_thread(popen)
    assert child.args == SLEEP
    assert _ended_by_sigkill(child)


def test_a_missing_program_raises_as_popen_does() -> None:
    """A program not found is FileNotFoundError, as from subprocess itself, not a shell's 127."""
    with pytest.raises(FileNotFoundError):
        popen(["renderstate-no-such-program-anywhere"])


def test_moviepy_style_modules_guard_only_inside_a_render() -> None:
    """guard_modules() rebinds a module's own ``sp``: inside guarding() (a render) its
    children die with the thread; outside, they are started as before, and the
    subprocess module itself is untouched."""
    module = types.ModuleType("fake_moviepy_io")
    module.sp = subprocess  # type: ignore[attr-defined]
    guard_modules(module)
    assert module.sp is not subprocess  # type: ignore[attr-defined]
    assert module.sp.PIPE == subprocess.PIPE  # type: ignore[attr-defined]
    assert subprocess.Popen is not module.sp.Popen  # type: ignore[attr-defined]

    def inside(command: list[str]) -> subprocess.Popen[bytes]:
        with guarding():
            return module.sp.Popen(command)  # type: ignore[attr-defined,no-any-return]

    assert _ended_by_sigkill(_started_in_a_thread(inside))
    outside = _started_in_a_thread(module.sp.Popen)  # type: ignore[attr-defined]
    try:
        assert outside.poll() is None
    finally:
        outside.kill()
        outside.wait()


def test_the_moviepy_renderer_guards_moviepy_s_own_ffmpeg_modules() -> None:
    """Importing the renderer gives moviepy's readers and writers the guarded Popen."""
    pytest.importorskip("moviepy")
    import moviepy.audio.io.readers  # noqa: PLC0415
    import moviepy.video.io.ffmpeg_reader  # noqa: PLC0415
    import moviepy.video.io.ffmpeg_writer  # noqa: PLC0415

    import renderstate.rendering.moviepy  # noqa: F401, PLC0415

    for module in (
        moviepy.audio.io.readers,
        moviepy.video.io.ffmpeg_reader,
        moviepy.video.io.ffmpeg_writer,
    ):
        assert module.sp.Popen is _children._Popen, module


def test_in_a_subinterpreter_children_still_start(tmp_path: Path) -> None:
    """A subinterpreter (mod_wsgi's default for each app) refuses any preexec_fn: the
    renderer's ffmpeg would not start at all. There, children start through setpriv's exec
    chain, which needs none, and where there is no setpriv, unguarded as before."""
    testcapi = pytest.importorskip("_testcapi")
    out = tmp_path / "out.txt"
    code = textwrap.dedent(
        f"""
        import subprocess, sys
        sys.path[:0] = {sys.path!r}
        try:
            subprocess.run(["true"], preexec_fn=lambda: None)
            plain = "allowed"
        except RuntimeError:
            plain = "refused"
        from renderstate._children import guard_modules, guarding, popen, run
        import types
        module = types.ModuleType("fake_moviepy_io")
        module.sp = subprocess
        guard_modules(module)
        with guarding():
            moviepy_like = module.sp.Popen(["true"]).wait()
        started = popen(["true"]).wait()
        ran = run(["true"], check=True).returncode
        from renderstate import _children
        _children._wrapper = lambda: None  # no setpriv here
        unguarded = popen(["true"]).wait()
        with guarding():
            moviepy_unguarded = module.sp.Popen(["true"]).wait()
        open({str(out)!r}, "w").write(
            f"{{plain}} {{started}} {{ran}} {{moviepy_like}} {{unguarded}} {{moviepy_unguarded}}"
        )
        """
    )
    assert testcapi.run_in_subinterp(code) == 0
    assert out.read_text() == "refused 0 0 0 0 0"
