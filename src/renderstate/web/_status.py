"""The status body of a project, the same JSON for every framework and every source."""

from __future__ import annotations

import uuid
from typing import Any, Final, TypedDict

from renderstate._layout import StatusValues
from renderstate._lifecycle import ProjectLifecycle
from renderstate._status import Status
from renderstate.exceptions import _public_text
from renderstate.typing import ProgressSource, ProjectT

__all__ = ["ProgressBody", "StatusBody", "status_body"]

_MISSING: Final = object()
_UNSHOWN: Final = "The render failed; the server's log says why."


class ProgressBody(TypedDict):
    """How far the current render attempt got, as the status body shows it."""

    phase: str
    """``queued``, ``writing audio``, ``rendering`` or ``finalizing``."""
    fraction: float
    """Share of the video frames rendered, 0.0 to 1.0."""
    done: int
    """Video frames rendered so far in this attempt."""
    total: int
    """Video frames this attempt renders; 0 until the renderer has said."""
    eta_seconds: float | None
    """Estimated seconds until the frames are rendered; ``None`` before the first frame."""
    live: bool
    """``false`` when the worker rendering it stopped renewing its lease (it died or
    hangs): the figures are its last, not current; recovery or a takeover ends it."""
    age_seconds: float
    """Seconds since the worker last wrote the figures (0 for this process's own job)."""
    label: str | None
    """The renderer's description of what it is doing (``"Encoding video"``), from the
    process that renders it; ``null`` when it gave none. At most 255 characters."""


class StatusBody(TypedDict):
    """What ``GET /projects/{id}`` answers: see :func:`status_body`."""

    id: object
    status: str
    output_path: str | None
    progress: ProgressBody | None
    error: str | None


def status_body(
    project: ProjectT,
    source: ProgressSource[ProjectT],
    *,
    key: object = _MISSING,
    status_field: str = "status",
    output_field: str | None = "output_path",
    values: StatusValues | None = None,
) -> StatusBody:
    """Build the JSON-ready status body of ``project``, the same in every framework.

    ::

        {"id": 42, "status": "PROCESSING", "output_path": "projects/42/final.mp4",
         "progress": {"phase": "rendering", "fraction": 0.5, "done": 120,
                      "total": 240, "eta_seconds": 3.2, "live": true, "age_seconds": 0.4,
                      "label": "Encoding video"},
         "error": null}

    ``progress`` is the current attempt's, read from ``source`` (a
    :class:`~renderstate.RenderRunner`, or anything that implements
    :class:`~renderstate.typing.ProgressSource`), and only while the project is
    PROCESSING and that attempt runs: it is ``null`` on any other status (even in the
    moment between the row being written COMPLETED or FAILED and the job ending), and a
    finished attempt's figures are never shown, so the first polls of a re-render never
    show the previous attempt's 100 %. ``error`` is the
    reason the last attempt failed, only while the project is FAILED (and the source
    knows it), as a client may read it: absolute server paths are cut to their last name
    and clauses of advice about the code are left out (the runner logged the whole
    reason, and ``source.error(project)`` still has it). ``output_path`` is ``null`` while
    there is no video (``None`` or ``""`` stored), and is kept while a re-render runs: the
    previous video stays playable.

    The project is not read from the database here: pass the object your view just
    loaded. No I/O is done here; a :class:`~renderstate.RenderRunner` without a ledger
    answers from memory, so the call is safe on an event loop. With a ledger the runner
    reads the attempt's row: in an async view, call it in a thread.

    Args:
        project: The project, as loaded by the view.
        source: Where the progress and the error come from.
        key: The ``id`` to show; by default ``project.pk`` if the object has one
            (Django), else ``project.id``. A UUID is shown as its string.
        status_field: The name of the status attribute, as for
            :class:`~renderstate.ProjectLifecycle`.
        output_field: The name of the output path attribute, or ``None`` for a model
            without one: the path is then ``source.video(project)`` (a
            :class:`~renderstate.RenderRunner` with a ledger reads the project's newest
            completed attempt).
        values: The stored literal of each status, for models that do not store the
            four names (as for :class:`~renderstate.ProjectLifecycle`).

    Raises:
        TypeError: ``project`` is ``None`` (a lookup that found nothing): answer 404 first.
        UnknownStatusError: the project holds a status value outside the map.
        TypeError: ``output_field=None`` with a source that has no ``video()``.
    """
    if project is None:
        # The usual cause is `session.get(Project, id)` or `.first()` finding nothing: the
        # field names are right, the project is missing.
        msg = (
            "status_body() got None instead of a project: the lookup found no project. "
            "Answer 404 before building the body: `if project is None: raise "
            "ProjectNotFoundError(project_key=project_id)`, which renderstate's web helpers "
            "answer with a 404 problem+json."
        )
        raise TypeError(msg)
    # Only reads the object: the lifecycle maps the literal (and raises on an unknown one).
    lifecycle = ProjectLifecycle(
        project, status_field=status_field, output_field=output_field, values=values
    )
    status = lifecycle.status
    if output_field is not None:
        output = getattr(project, output_field)
    else:
        video = getattr(source, "video", None)
        if video is None:
            msg = (
                f"status_body(output_field=None) reads the video's path from the source, "
                f"and {type(source).__name__} has no video(project): pass the RenderRunner "
                "(with a ledger), or output_field naming the model's column"
            )
            raise TypeError(msg)
        output = video(project)
    # Only a PROCESSING row has a render running: the row is written (COMPLETED, FAILED)
    # a moment before the job that wrote it has ended, and that job's last figures
    # ("finalizing" at 100 %) are not progress any more.
    progress = source.progress(project) if status is Status.PROCESSING else None
    shown: ProgressBody | None = None
    if progress is not None and not progress.finished:
        shown = {
            "phase": progress.phase.value,
            "fraction": progress.fraction,
            "done": progress.frames_done,
            "total": progress.frames_total,
            "eta_seconds": progress.eta,
            "live": progress.live,
            "age_seconds": round(progress.age, 3),
            "label": progress.label,
        }
    error = source.error(project) if status is Status.FAILED else None
    return {
        "id": _json_key(lifecycle.project_key if key is _MISSING else key),
        "status": status.value,
        "output_path": output or None,
        "progress": shown,
        # For the client: the runner logged the whole reason when the render failed.
        "error": None if error is None else _public_text(error, _UNSHOWN),
    }


def _json_key(key: object) -> Any:
    if key is None or isinstance(key, (int, str)):
        return key
    if isinstance(key, uuid.UUID):
        return str(key)
    if isinstance(key, tuple):
        return [_json_key(part) for part in key]
    return str(key)
