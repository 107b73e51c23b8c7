"""RenderJob: one render attempt of one project, what the runner hands its executor.

It carries the attempt through the flow (its progress, its cancel request, whether its
lease was lost) and ends with the project's status; the runner's concern modules drive it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Generic

from renderstate import telemetry
from renderstate._attempts import Attempt, AttemptState, encode_key
from renderstate._deciding import extra_fields
from renderstate._jobs import JobSpec
from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import Rendered
from renderstate._status import Status
from renderstate.exceptions import (
    RenderCancelledError,
    RenderHandedBackError,
    RenderInterruptedError,
    RenderStateError,
)
from renderstate.ledger import Ledger, new_owner
from renderstate.runner.progress import Phase, Progress, ProgressTracker, progress_of
from renderstate.typing import ProjectT

# How often wait() of a handed-off job reads the ledger, at most and at least.
_MIN_POLL: Final = 0.05
_MAX_POLL: Final = 1.0
_LOST: Final = "its attempt was recovered or superseded in another process (its lease was lost)"


class RenderJob(Generic[ProjectT]):
    """One render attempt of one project, as returned by :meth:`RenderRunner.submit`.

    It is also what the runner hands its executor (a :class:`~renderstate.typing.Job`):
    :attr:`spec` is the job as data, to send to another process whose runner calls
    :meth:`RenderRunner.execute`; :meth:`run` runs it here, in the calling thread.
    Calling the job is the same as :meth:`run`, so an executor that calls what it is
    given (written for the plain callables of earlier versions) keeps working.
    """

    def __init__(
        self,
        project: ProjectT,
        lifecycle: ProjectLifecycle[ProjectT],
        output_path: str,
        tracker: ProgressTracker,
        *,
        runner: Callable[[RenderJob[ProjectT]], None],
        hand_off: Callable[[RenderJob[ProjectT]], None],
        cancel: Callable[[RenderJob[ProjectT], str], bool],
        final: Path | None = None,
        actor: str | None = None,
    ) -> None:
        self.attempt: Attempt | None = None
        """The attempt's record in the ledger (``None`` without a ledger)."""
        self.project = project
        """The project being rendered."""
        self.project_key = lifecycle.project_key
        """The project's primary key."""
        self.output_path = output_path
        """The URL-relative path the video is stored at when the render succeeds."""
        self.actor = actor
        """Who asked for the render, if the caller said."""
        self.task_id: str | None = None
        """The task system's id of the render, if its executor gave one before the start
        (``Executor.new_task_id``); recorded with the start, and the id the executor
        sends the task under."""
        self._lifecycle = lifecycle
        self._tracker = tracker
        self._runner = runner
        self._hand_off = hand_off
        self._cancel = cancel
        self._finished = threading.Event()
        self._claim_lock = threading.Lock()
        self._claimed = False
        self._status: Status | None = None
        self._error: BaseException | None = None
        self._failure: BaseException | None = None  # set as its FAILED is being saved
        self._lost = False
        self._hand_back_reason: str | None = None  # set by RenderRunner.hand_back()
        self._delivered = False  # sent by another process's executor (execute())
        # Set by hand_off(): the ledger this job's attempt is followed in from here on.
        self._away: Ledger | None = None
        # Cancel: requested (the reason), refused once the video is being published.
        self._cancel_lock = threading.Lock()
        self._cancel_reason: str | None = None
        self._publishing = False
        self._abandoned = False  # stop_jobs()/shutdown(cancel_running): no save retries
        # Ownership: the token this job holds its attempt under (the start's, then its
        # begin's), the heartbeat keys it registered, whether it has begun, and whether it
        # is its project's current job in the runner's registry.
        self.owner: str = new_owner()
        """The owner token this job holds (or will hold) its attempt under."""
        self._beats: list[str] = []
        self._immediate = False  # rendered in the submitting thread: no heartbeat
        self._begun = False
        self._registered = False
        self._final = final
        self._before = None if final is None else _identity(final)
        self._trail: telemetry.Trail | None = None  # its span and counts (renderstate.telemetry)
        # The app's columns its renderer returned (Rendered.fields), checked, for complete().
        self._fields: dict[str, object] | None = None

    def __repr__(self) -> str:
        return f"<RenderJob project={self.project_key!r} {self.progress.phase}>"

    @property
    def progress(self) -> Progress:
        """The latest published progress of this attempt.

        After :meth:`hand_off`, read from the ledger (what the process rendering it wrote).
        """
        away = self._away
        if away is not None and not self._finished.is_set():
            attempt = self._follow(away)
            if attempt is not None:
                return progress_of(attempt, away.now(), away.lease)
        return self._tracker.latest

    @property
    def error(self) -> BaseException | None:
        """Why the render failed (or the save that gave up), ``None`` while all is well."""
        return self._error

    @property
    def status(self) -> Status | None:
        """The project's status when the job ended, ``None`` while it runs."""
        return self._status if self.done() else None

    def done(self) -> bool:
        """Whether the job has ended, successfully or not.

        After :meth:`hand_off`, whether the ledger shows its attempt ended.
        """
        if self._away is not None and not self._finished.is_set():
            self._follow(self._away)
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> Status:
        """Block until the job has ended and return the project's final status.

        That is COMPLETED or FAILED, except when saving it failed for longer than the
        runner's ``persist_timeout`` (see :attr:`error`): then the project is still
        PROCESSING and :meth:`RenderRunner.recover_interrupted` is what repairs it. A job
        superseded by a newer attempt of the same project in this runner (its
        :attr:`error` is a :class:`~renderstate.RenderInterruptedError`) saves nothing and
        reports the status the newer attempt has left, PROCESSING while that one runs.

        Raises:
            TimeoutError: the job had not ended after ``timeout`` seconds.
        """
        away = self._away
        if away is None:
            ended = self._finished.wait(timeout)
        else:
            # Rendered elsewhere: follow the ledger, at the pace its progress is written.
            deadline = None if timeout is None else time.monotonic() + timeout
            pause = min(max(away.progress_interval, _MIN_POLL), _MAX_POLL)
            while not self.done():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._finished.wait(pause if left is None else min(pause, left))
            ended = self._finished.is_set()
        if not ended:
            msg = f"the render of project {self.project_key} had not ended after {timeout} s"
            raise TimeoutError(msg)
        assert self._status is not None
        return self._status

    def hand_off(self) -> None:
        """Say that this job runs in another process (once its :attr:`spec` was sent).

        An executor that sends the spec to a task system calls it after sending. From
        then on this process does not run the job (:meth:`run` returns at once) and no
        longer renews its attempt's lease: while the attempt waits in the task queue its
        lease is the ledger's ``queue_timeout`` (:meth:`Ledger.hand_off
        <renderstate.ledger.Ledger.hand_off>`), so a long queue is not mistaken for a dead
        worker, and a spec lost on the way is recovered once that has passed. The
        worker's runner renews the usual lease once it has begun the attempt.
        :attr:`progress`, :meth:`done`, :meth:`wait` and :attr:`status` follow the
        attempt in the ledger.

        Raises:
            TypeError: the job has no attempt (a runner without a ledger): nothing could
                fence it in another process.
            RuntimeError: the job already started or ended in this process.
        """
        self._hand_off(self)

    def _follow(self, ledger: Ledger) -> Attempt | None:
        """Read the handed-off attempt; end this job if the ledger says it ended."""
        assert self.attempt is not None
        attempt = ledger.get(self.attempt.id)
        if attempt is None or attempt.active or self._finished.is_set():
            return attempt
        self.attempt = attempt
        try:
            status = self._lifecycle.refresh()
        except RenderStateError:  # pragma: no cover - deleted meanwhile
            completed = attempt.state is AttemptState.COMPLETED
            status = Status.COMPLETED if completed else Status.FAILED
        error: BaseException | None = None
        if attempt.state is not AttemptState.COMPLETED:
            error = RenderInterruptedError(
                project_key=self.project_key,
                reason=f"its attempt {attempt.id} ended {attempt.state.value} in "
                f"{attempt.worker or 'another process'}: {attempt.error or 'no reason recorded'}",
            )
        self._finish(status, error)
        return attempt

    @property
    def attempt_id(self) -> int | None:
        """The attempt's id in the ledger, its fencing token (``None`` without a ledger)."""
        return None if self.attempt is None else self.attempt.id

    @property
    def spec(self) -> JobSpec:
        """This job as data (JSON-serialisable with ``spec.to_dict()``), for an executor.

        With a ledger it names the attempt (``scope``, ``attempt_id``), so the process
        that receives it runs exactly that attempt, fenced by its id.
        """
        attempt = self.attempt
        return JobSpec(
            project_key=encode_key(self.project_key),
            output_path=self.output_path,
            scope=None if attempt is None else attempt.scope,
            attempt_id=None if attempt is None else attempt.id,
            actor=self.actor,
            trace=telemetry.carrier(self),
        )

    def run(self) -> None:
        """Run the job in the calling thread, to its end (what an executor calls).

        It handles its own errors: a failing render fails the project and returns. Only
        ``KeyboardInterrupt`` and ``SystemExit`` propagate, after the project was failed
        and the temporary file removed. A job runs at most once: a second call, or a call
        after :meth:`RenderRunner.shutdown` cancelled it, returns at once.
        """
        self._runner(self)

    def __call__(self) -> None:
        """The same as :meth:`run`."""
        self.run()

    def cancel(self, reason: str | None = None) -> bool:
        """Ask the render to stop; it ends FAILED with a :class:`~renderstate.RenderCancelledError`.

        Cooperative: a queued job ends at once; a running one stops at its next progress
        report (between frames, between phases) or when its renderer returns, before its
        file is published. Its temporary file is removed and the previous video stays as
        it was. ``reason`` is kept in the error (default ``"cancelled"``).

        Returns:
            ``True`` if the job will end FAILED as cancelled (or already has, by this
            call); ``False`` if there was nothing to cancel: the job has ended, or its video
            is already being published (it completes), or it was handed off to another
            process.
        """
        return self._cancel(self, reason or "cancelled")

    def _returned(
        self, written: str | os.PathLike[str] | Rendered | None
    ) -> str | os.PathLike[str] | None:
        """What the renderer wrote; the app's columns it returned with it kept, checked.

        A name that is no column of the model fails the render here, before anything is
        published or saved.
        """
        if not isinstance(written, Rendered):
            return written
        self._fields = extra_fields(self._lifecycle, written.fields)
        return written.path

    def _check_cancelled(self) -> None:
        reason = self._cancel_reason
        if reason is not None:
            raise RenderCancelledError(
                project_key=self.project_key, reason=reason, untouched=self._untouched()
            )

    def _begin_publishing(self) -> None:
        # From here on a cancel is refused: the video replaces the final file.
        with self._cancel_lock:
            self._check_cancelled()
            self._publishing = True

    def _request_cancel(self, reason: str) -> bool:
        with self._cancel_lock:
            if self._finished.is_set() or self._publishing or self._away is not None:
                return False
            if self._cancel_reason is None:
                self._cancel_reason = reason
            return True

    def _untouched(self) -> bool | None:
        """Whether the final file is still the one there was when the job was made."""
        if self._final is None:
            return None
        return _identity(self._final) == self._before

    def _report(self, phase: str, done: int, total: int, label: str | None = None) -> None:
        # The renderer's progress sink: a render whose attempt was taken away, or that was
        # cancelled, stops here (between frames and between phases).
        if self._lost:
            raise RenderInterruptedError(
                project_key=self.project_key, reason=_LOST, untouched=self._untouched()
            )
        self._check_cancelled()
        reason = self._hand_back_reason
        if reason is not None:
            raise RenderHandedBackError(
                project_key=self.project_key, reason=reason, untouched=self._untouched()
            )
        self._tracker(phase, done, total, label)

    def _lose(self) -> None:
        self._lost = True

    def _claim(self) -> bool:
        # Exactly one of "a worker starts it" and "shutdown cancels it" wins.
        with self._claim_lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def _finish(self, status: Status, error: BaseException | None) -> None:
        self._status = status
        self._error = error
        # DONE only for the attempt that completed the project itself: a superseded one
        # may find the project COMPLETED by the newer attempt.
        succeeded = status is Status.COMPLETED and error is None
        self._tracker.enter(Phase.DONE if succeeded else Phase.FAILED)
        self._finished.set()


def _identity(final: Path) -> tuple[int, ...] | None:
    """What tells one version of ``final`` from another; ``None`` while there is none."""
    try:
        stat = final.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
