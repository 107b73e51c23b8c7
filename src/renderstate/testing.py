"""Test doubles for code that uses renderstate; the library's own tests use them too."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from renderstate._memory import MemoryAdapter
from renderstate._records import TransitionRecord
from renderstate.adapters.memory import AsyncMemoryAdapter
from renderstate.runner._immediate import RUNNERS, forced, running_states
from renderstate.typing import Job, ProgressSink

__all__ = [
    "AsyncMemoryAdapter",
    "FakeRenderer",
    "InlineExecutor",
    "MemoryAdapter",
    "MemoryProject",
    "RecordingObserver",
    "RenderJobsMixin",
    "immediate_renders",
    "stop_all_jobs",
    "stopping_jobs",
]


@dataclasses.dataclass(eq=False)
class MemoryProject:
    """A plain project with the reference model's fields and defaults."""

    title: str = "Untitled"
    id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    status: str = "DRAFT"
    output_path: str | None = None
    resolution_width: int = 1920
    resolution_height: int = 1080
    framerate: int = 30
    timeline: dict[str, object] = dataclasses.field(default_factory=dict)


class RecordingObserver:
    """An observer that keeps every record it is given, safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[TransitionRecord] = []

    def __call__(self, record: TransitionRecord, /) -> None:
        """Keep ``record``."""
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[TransitionRecord]:
        """A copy of the records received so far, oldest first."""
        with self._lock:
            return list(self._records)


class _StopsJobs(Protocol):
    def stop_jobs(self, *, reason: str = ..., timeout: float | None = None) -> int: ...


@contextlib.contextmanager
def stopping_jobs(runner: _StopsJobs, *, timeout: float | None = 60.0) -> Iterator[None]:
    """No render job of ``runner`` outlives the block.

    On the way out (normally or on an exception), every unfinished job is cancelled:
    queued ones end at once, running ones at their next progress report, and saves being
    retried give up; then it waits for them. The runner stays open for the next test.
    Use it around a test whose runner is shared (a module-level runner in a Django app),
    so that no job reaches the database after the test database is gone::

        class ExportTests(TransactionTestCase):
            def setUp(self):
                stack = contextlib.ExitStack()
                stack.enter_context(stopping_jobs(app.runner))
                self.addCleanup(stack.close)

    Raises:
        TimeoutError: a job had not ended ``timeout`` seconds after it was cancelled.
    """
    try:
        yield
    finally:
        runner.stop_jobs(reason="the test ended", timeout=timeout)


@contextlib.contextmanager
def immediate_renders(enabled: bool = True) -> Iterator[None]:
    """Within the block, every runner of this process renders in the submitting thread.

    ``submit()`` returns once the render has ended, with no executor, broker or
    heartbeat thread involved, whatever executor the app built its runner with
    (``enabled=False``: never, even where the settings ask for it). The innermost open
    block decides; it beats a runner's ``immediate=`` and ``RENDERSTATE_IMMEDIATE``.
    """
    with forced(enabled):
        yield


def stop_all_jobs(*, timeout: float | None = 60.0, reason: str = "the test ended") -> int:
    """Cancel every unfinished job of every runner in this process, and wait for them.

    What an app's test suite runs after each test (:class:`RenderJobsMixin` and the
    ``render_jobs`` pytest fixture do), so that no job reaches the database after the
    test, or its database, is gone. A runner shut down without waiting has its last
    jobs stopped too, and so does a runner garbage-collected while a job of its runs or
    still waits in its executor's queue (an app that builds a runner per request and
    drops it): a queued job is cancelled before it runs, its attempt ended as a cancel
    ends it.

    Returns:
        How many jobs were cancelled.

    Raises:
        TimeoutError: a job had not ended ``timeout`` seconds after it was cancelled.
    """
    from renderstate.runner._stopping import stop_all  # noqa: PLC0415 - the runner, on use

    states: dict[int, Any] = {}
    for runner in list(RUNNERS):
        states.setdefault(id(runner._state), runner._state)
    # A runner collected while its job runs is no longer in RUNNERS; its state is kept
    # while the job runs.
    for state in running_states():
        states.setdefault(id(state), state)
    # A job still queued in an executor when its runner was collected is in neither:
    # stop_all finds it among the jobs the executors hold.
    return stop_all(states.values(), reason, timeout)


class RenderJobsMixin:
    """Mix into a ``unittest.TestCase`` (a Django ``TestCase`` too): no job outlives a test.

    After each test (before Django rolls its transaction back or destroys the test
    database), every unfinished render job of every runner in the process is cancelled
    and waited for (:func:`stop_all_jobs`). With ``render_immediately = True`` each test
    runs in immediate mode (:func:`immediate_renders`): ``submit()`` renders before it
    returns, inside the test's transaction::

        class ExportTests(RenderJobsMixin, TestCase):
            render_immediately = True

            def test_export(self):
                response = self.client.post(f"/projects/{self.project.pk}/render/")
                self.project.refresh_from_db()
                self.assertEqual(self.project.status, "COMPLETED")

    Put it before the ``TestCase`` class, and call ``super().setUp()`` in ``setUp``.
    """

    render_immediately: bool = False
    """Whether each test renders in the submitting thread (:func:`immediate_renders`)."""
    render_jobs_timeout: float | None = 60.0
    """Seconds to wait for the cancelled jobs after each test."""

    def setUp(self) -> None:
        """Stop the jobs after the test; render immediately during it if asked."""
        super().setUp()  # type: ignore[misc]
        case: Any = self
        case.addCleanup(stop_all_jobs, timeout=self.render_jobs_timeout)
        if self.render_immediately:
            stack = contextlib.ExitStack()
            stack.enter_context(immediate_renders())
            case.addCleanup(stack.close)


class InlineExecutor:
    """An executor that runs each job in the caller's thread, before ``schedule`` returns.

    With it, ``RenderRunner.submit()`` returns once the render has ended, which makes
    tests deterministic. It implements :class:`~renderstate.typing.Executor`.
    """

    def __init__(self) -> None:
        self.scheduled = 0
        """How many jobs were scheduled."""
        self.closed = False
        """Whether :meth:`shutdown` was called."""

    def schedule(self, job: Job, /) -> None:
        """Run ``job`` now (``job.run()``), before returning.

        Raises:
            RuntimeError: the executor was shut down.
        """
        if self.closed:
            msg = "the InlineExecutor was shut down"
            raise RuntimeError(msg)
        self.scheduled += 1
        job.run()

    def shutdown(self, wait: bool = True) -> None:
        """Accept no more jobs (every job has already run)."""
        self.closed = True


class FakeRenderer:
    """A renderer that writes a small non-video file frame by frame, reporting each frame.

    Args:
        frames: How many frames to "render"; one line of the file each.
        fail_at_frame: Raise ``exception`` once this many frames are written, leaving a
            partial file behind, as a crashing encoder does.
        exception: What to raise at ``fail_at_frame``: an exception instance or class
            (``KeyboardInterrupt`` and ``SystemExit`` included).
        audio_chunks: Report this many "writing audio" steps before the frames, as
            moviepy does.
        frame_delay: Seconds to sleep per frame, to make a render slow.
    """

    def __init__(
        self,
        frames: int = 10,
        *,
        fail_at_frame: int | None = None,
        exception: BaseException | type[BaseException] = RuntimeError,
        audio_chunks: int = 0,
        frame_delay: float = 0.0,
    ) -> None:
        self.frames = frames
        self.fail_at_frame = fail_at_frame
        self.exception = exception
        self.audio_chunks = audio_chunks
        self.frame_delay = frame_delay
        self._lock = threading.Lock()
        self._targets: list[Path] = []

    @property
    def targets(self) -> list[Path]:
        """The paths it was asked to write, oldest first."""
        with self._lock:
            return list(self._targets)

    def __call__(self, project: object, target: Path, progress: ProgressSink) -> None:
        """Write ``target`` and report progress; see :class:`~renderstate.typing.Renderer`."""
        with self._lock:
            self._targets.append(target)
        for chunk in range(1, self.audio_chunks + 1):
            progress("writing audio", chunk, self.audio_chunks)
        with target.open("wb") as out:
            out.write(f"FAKE VIDEO of {project!r}\n".encode())
            for frame in range(self.frames):
                if self.fail_at_frame is not None and frame == self.fail_at_frame:
                    out.flush()
                    raise self._error(frame)
                out.write(f"frame {frame}\n".encode())
                if self.frame_delay:
                    time.sleep(self.frame_delay)
                progress("rendering", frame + 1, self.frames)

    def _error(self, frame: int) -> BaseException:
        if isinstance(self.exception, BaseException):
            return self.exception
        if issubclass(self.exception, Exception):
            return self.exception(f"FakeRenderer failed at frame {frame}")
        return self.exception()
