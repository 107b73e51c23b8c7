"""Claim guards: a render that was started never stays PROCESSING because something raised.

``start_render()`` claims the project (PROCESSING, so every other start is refused with 409).
From then on something must end the claim with ``complete()`` or ``fail()``. The runner does
that for its jobs; these guards do it for an app that drives :class:`ProjectLifecycle` itself:
whatever raises after the start (the task queue refusing the job, the render, the upload)
fails the project with that error as the reason, and the error propagates.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Iterator

from renderstate._lifecycle import ProjectLifecycle
from renderstate._records import TransitionRecord
from renderstate.exceptions import InvalidTransitionError
from renderstate.typing import ProjectT

__all__ = ["aclaim_render", "afail_on_error", "claim_render", "fail_on_error"]

logger = logging.getLogger("renderstate")


@contextlib.contextmanager
def claim_render(lifecycle: ProjectLifecycle[ProjectT]) -> Iterator[TransitionRecord]:
    """Start the render, and fail the project if the block raises; the block's error propagates.

    Wrap everything that happens between the start and the hand-off of the claim: scheduling
    the job (a broker that is down), or the whole render when it runs inline::

        with claim_render(ProjectLifecycle(project, adapter)):
            render_video.delay(project.pk)  # a refused job fails the project, then raises

    A refused start (:class:`~renderstate.RenderConflictError`, 409) claims nothing and
    propagates before the block runs: the render that holds the project is left alone.

    Leaving the block normally does nothing more: the claim now belongs to whoever the
    block handed it to (a worker, which finishes it under :func:`fail_on_error`), or the
    block ended it itself with ``complete()``. When the block raises, ``BaseException``
    included (``KeyboardInterrupt``, ``SystemExit``), the project is failed through the
    guarded ``fail(error)``, which keeps ``output_path``; if the project is no longer
    PROCESSING (the block completed it before raising) it is left as it is. See
    :func:`fail_on_error` for what happens when ``fail()`` itself cannot be saved.

    Yields:
        The record of the start.

    Raises:
        RenderConflictError: a render of the project is already running (HTTP 409).
        ProjectNotFoundError: the project is not stored.
    """
    record = lifecycle.start_render()
    with fail_on_error(lifecycle):
        yield record


@contextlib.contextmanager
def fail_on_error(lifecycle: ProjectLifecycle[ProjectT]) -> Iterator[None]:
    """Fail the (PROCESSING) project if the block raises, then let the error propagate.

    The worker's half of :func:`claim_render`, for a claim started elsewhere::

        with fail_on_error(lifecycle):
            path = render(project)
            lifecycle.complete(path)

    ``fail(error)`` records the error's class and message as the reason and keeps
    ``output_path``. If the project is no longer PROCESSING (completed, or failed by
    someone else), nothing changes. If ``fail()`` itself raises (the database is down), that
    is logged on the ``renderstate`` logger with its traceback and added as a note to the
    block's error, which still propagates; the project then stays PROCESSING until recovery.
    """
    try:
        yield
    except BaseException as exc:
        try:
            lifecycle.fail(exc)
        except InvalidTransitionError:
            pass  # not PROCESSING any more: nothing is orphaned
        except Exception as failure:  # noqa: BLE001 - reported, and the block's error wins
            _report(lifecycle, exc, failure)
        raise


@contextlib.asynccontextmanager
async def aclaim_render(lifecycle: ProjectLifecycle[ProjectT]) -> AsyncIterator[TransitionRecord]:
    """Await :func:`claim_render`: the same guard with ``astart_render()`` and ``afail()``.

    Task cancellation (``asyncio.CancelledError``) inside the block fails the project too.
    """
    record = await lifecycle.astart_render()
    async with afail_on_error(lifecycle):
        yield record


@contextlib.asynccontextmanager
async def afail_on_error(lifecycle: ProjectLifecycle[ProjectT]) -> AsyncIterator[None]:
    """Await :func:`fail_on_error`: the same guard with ``afail()``."""
    try:
        yield
    except BaseException as exc:
        try:
            await lifecycle.afail(exc)
        except InvalidTransitionError:
            pass  # not PROCESSING any more: nothing is orphaned
        except Exception as failure:  # noqa: BLE001 - reported, and the block's error wins
            _report(lifecycle, exc, failure)
        raise


def _report(
    lifecycle: ProjectLifecycle[ProjectT], error: BaseException, failure: Exception
) -> None:
    key = lifecycle.project_key
    logger.error(
        "project %s could not be marked FAILED after %r; it stays PROCESSING until recovery",
        key,
        error,
        exc_info=failure,
    )
    if sys.version_info >= (3, 11):
        error.add_note(
            f"renderstate could not mark project {key} FAILED ({failure!r}); "
            f"it stays PROCESSING until recovery"
        )
