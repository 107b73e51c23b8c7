"""Requeuing: a task-queue worker's part in keeping renders moving when workers go away.

- :func:`sweep` (``RenderRunner.sweep``): requeue, through the task queue that holds them,
  the attempts whose owner died, and fail those nobody can requeue
  (:meth:`Ledger.sweep <renderstate.ledger.Ledger.sweep>`); :class:`Sweeper` runs it every
  half lease in a worker process, so a dead worker's render resumes on another within
  about one and a half leases, however long the broker would take to hand its message back.
- :func:`hand_back` (``RenderRunner.hand_back``): a render delivered from a task queue stops
  at its next frame and its attempt goes back to the queue; :class:`Grace` does that on a
  worker's warm shutdown to each render that cannot finish within the shutdown's grace.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from renderstate import telemetry
from renderstate._attempts import Attempt
from renderstate._jobs import JobSpec
from renderstate.ledger import Swept
from renderstate.runner._owning import job_scope
from renderstate.runner._publishing import clean_after
from renderstate.runner._state import RunnerState
from renderstate.typing import ProjectT

if TYPE_CHECKING:
    from renderstate.runner._runner import RenderRunner

__all__ = ["Grace", "Sweeper", "hand_back", "rendering", "sweep"]

logger = logging.getLogger("renderstate.runner")

_TICK: Final = 0.25
"""Seconds between two looks of a shutdown's grace at the renders still running."""
_TURN_MARGIN: Final = 0.02
"""A sweep turn's holder asks again this share of the interval (and as many seconds) after
its turn ends, on its own clock: the database's has moved as far by then."""


def sweep(
    state: RunnerState[ProjectT], executor: str, send: Callable[[JobSpec, str], None]
) -> list[Swept]:
    """Requeue or fail the attempts whose owner is gone; see :meth:`RenderRunner.sweep`."""
    ledger, loader = state.ledger, state.loader
    if ledger is None or loader is None:
        msg = (
            "sweep() needs a runner with a ledger and a loader (RenderRunner(..., "
            "ledger=Ledger(store), loader=store.loader(Project)))"
        )
        raise TypeError(msg)

    def sent(attempt: Attempt) -> None:
        send(spec_of(state, attempt), attempt.executor or executor)

    with job_scope(state.adapter):
        found = ledger.sweep(
            state.adapter,
            loader,
            executor=executor,
            send=sent,
            cleanup=lambda attempt: clean_after(state, attempt),
            **state.failing_options,
        )
    for swept in found:
        if swept.record is not None:
            state.notify(swept.record)
    return found


def spec_of(state: RunnerState[Any], attempt: Attempt) -> JobSpec:
    output_path = attempt.output_path
    if output_path is None:  # an attempt recorded without one: the runner's own path
        assert state.loader is not None
        project = state.loader(attempt.project_key)
        output_path = "" if project is None else state.output_path(project)
    return JobSpec(
        project_key=attempt.project_key,
        output_path=output_path,
        scope=attempt.scope,
        attempt_id=attempt.id,
        actor=attempt.actor,
        # The request's trace: the worker's span joins it, though the first one's is gone.
        trace=telemetry.carried(attempt),
    )


def hand_back(state: RunnerState[ProjectT], reason: str, within: float | None) -> int:
    """Ask the runner's task-queue renders to hand back; see :meth:`RenderRunner.hand_back`."""
    with state.registry.lock:
        jobs = [job for job in state.registry.jobs.values() if not job.done()]
    asked = 0
    for job in jobs:
        if not job._delivered or not job._begun or job.attempt is None:
            continue  # not rendering here for a task queue: nobody would send it again
        if job._hand_back_reason is not None:
            continue
        if within is not None:
            eta = job.progress.eta
            if eta is None or eta <= within:
                continue  # it may still finish in time
        job._hand_back_reason = reason
        asked += 1
    return asked


def rendering(runner: RenderRunner[Any]) -> bool:
    """Whether ``runner`` has a job that has not ended."""
    state = runner._state
    with state.registry.lock:
        return any(not job.done() for job in state.registry.jobs.values())


class Sweeper:
    """Runs ``runner.sweep(executor, send)`` every half lease in a daemon thread, in turn.

    Started once per process (a forked child starts its own); the runner is built, by
    ``runner_of``, in the thread, after any fork. Before each sweep the process takes the
    fleet's sweep turn (:meth:`Ledger.take_sweep_turn
    <renderstate.ledger.Ledger.take_sweep_turn>`, one small ``UPDATE``, sent in the
    runner's heartbeat transaction when it renews any lease): of all the
    processes sweeping the same projects for the same task system, one sweeps per
    interval and the others skip it. Its holder asks again just after its turn ends;
    the others at random within the interval, so one of them takes over within an
    interval of the holder's death.
    """

    def __init__(
        self,
        runner_of: Callable[[], RenderRunner[Any]],
        executor: str,
        send: Callable[[JobSpec, str], None],
        *,
        interval: float | None = None,
    ) -> None:
        self._runner_of = runner_of
        self._executor = executor
        self._send = send
        self._interval = interval
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._pid = 0

    def start(self) -> None:
        """Start sweeping in this process, unless it already does."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stopped = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(self._stopped,), name="renderstate-sweeper", daemon=True
            )
        thread.start()

    def stop(self, **_: object) -> None:
        """Stop sweeping (a sweep under way finishes)."""
        self._stopped.set()

    def _run(self, stopped: threading.Event) -> None:
        try:
            runner = self._runner_of()
        except Exception:
            logger.exception("the sweeper could not build its runner; no sweeps here")
            return
        ledger = runner.ledger
        if ledger is None:
            logger.error("the sweeper's runner has no ledger; no sweeps here")
            return
        interval = self._interval if self._interval is not None else ledger.lease / 2
        loader = runner._state.loader
        failed: list[BaseException] = []

        def send(spec: JobSpec, route: str) -> None:
            try:
                self._send(spec, route)
            except BaseException as exc:
                failed.append(exc)
                raise

        while not stopped.is_set():
            ours = True
            claimed = time.monotonic()
            failed.clear()
            try:
                # One process of the fleet sweeps per interval: the one whose turn it is.
                if loader is not None:
                    ours = self._take_turn(runner, loader.scope, interval)
                    claimed = time.monotonic()  # the turn runs from before this, if it is ours
                if ours:
                    runner.sweep(self._executor, send)
            except Exception as exc:
                failed.append(exc)
                logger.exception("a sweep for renders whose worker died failed")
            if ours and failed and loader is not None:
                # This process could not send a render again (its broker connection is
                # down, say): leave the next turn to another process, which asks at
                # least once an interval. Asking again just after its turn, as a holder
                # does, this one would keep the turn, and every dead worker's render
                # would be taken back here and never sent, for as long as it lives.
                pause = claimed + 3 * interval - time.monotonic()
            elif ours:
                # Just after the turn ends, so its holder usually takes the next one too
                # (a steady one sweep per interval) unless it died or fell behind.
                pause = claimed + interval * (1 + _TURN_MARGIN) + _TURN_MARGIN - time.monotonic()
            else:
                # Spread over the interval: whoever asks first once the turn ran out takes it.
                pause = interval * random.uniform(0.5, 1.0)  # noqa: S311 - not security
            stopped.wait(max(pause, 0.0))

    def _take_turn(self, runner: RenderRunner[Any], scope: str, interval: float) -> bool:
        """Take the fleet's sweep turn: in the heartbeat's transaction if it renews anything."""
        heartbeat = runner._state.heartbeat
        if heartbeat is not None:
            # A worker with renders pays no round trip of its own for it.
            won = heartbeat.take_sweep_turn(self._executor, scope, interval)
            if won is not None:
                return won
        ledger = runner.ledger
        assert ledger is not None
        return ledger.take_sweep_turn(executor=self._executor, scope=scope, seconds=interval)


class Grace:
    """On a warm shutdown, hands back each render that cannot finish within ``grace`` seconds.

    :meth:`begin` starts a daemon thread that, until the deadline, hands back at once the
    renders whose estimated time left exceeds the time left, and at the deadline every
    render still running.
    """

    def __init__(self, runner_of: Callable[[], RenderRunner[Any] | None], grace: float) -> None:
        self._runner_of = runner_of
        self.grace = grace
        """Seconds a render may still take once the shutdown began."""
        self._begun = False
        self._lock = threading.Lock()

    def begin(self, **_: object) -> None:
        """The shutdown began: start counting (once)."""
        with self._lock:
            if self._begun:
                return
            self._begun = True
        deadline = time.monotonic() + self.grace
        threading.Thread(
            target=self._run, args=(deadline,), name="renderstate-grace", daemon=True
        ).start()

    def _run(self, deadline: float) -> None:
        reason = f"the worker shut down and it could not finish within {self.grace:g} s"
        while True:
            runner = self._runner_of()
            if runner is None:
                return
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    runner.hand_back(reason)
                    return
                runner.hand_back(reason, cannot_finish_within=left)
            except Exception:  # pragma: no cover - nothing here writes; logged, not raised
                logger.exception("could not hand the renders back")
                return
            time.sleep(min(_TICK, left))
