"""The render runner: starts renders, runs them in an executor, reports their progress.

::

    from renderstate import RenderRunner

    with RenderRunner(adapter, renderer, media_root="media") as runner:
        job = runner.submit(project)  # RenderConflictError (409) if one is running
        job.wait()

Nothing here imports moviepy, rich or an ORM: the renderer and the adapter are passed in.
"""

from __future__ import annotations

from renderstate._jobs import JobSpec
from renderstate._records import Rendered
from renderstate.runner._own_path import OnProgress, OwnPathRenderer, own_path
from renderstate.runner._runner import (
    RenderInterruptedError,
    RenderJob,
    RenderOutputError,
    RenderRunner,
)
from renderstate.runner.executors import ThreadExecutor
from renderstate.runner.progress import Phase, Progress, ProgressTracker

__all__ = [
    "JobSpec",
    "OnProgress",
    "OwnPathRenderer",
    "Phase",
    "Progress",
    "ProgressTracker",
    "RenderInterruptedError",
    "RenderJob",
    "RenderOutputError",
    "RenderRunner",
    "Rendered",
    "ThreadExecutor",
    "own_path",
]
