"""The app's own background task manager (jobs by id, in threads) and its render job."""

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections

from renderstate import ProjectLifecycle, fail_on_error
from renderstate.adapters.django import DjangoAdapter
from renderstate.files import output_path_of, publish

from .models import Project
from .rendering import render_story

_pool = ThreadPoolExecutor(max_workers=2)
_ids = itertools.count(1)
_jobs: dict[int, Future[None]] = {}
_lock = threading.Lock()


def enqueue(job: Callable[[str], None], project_id: str) -> int:
    """Run ``job(project_id)`` in the background; return the job's id."""
    with _lock:
        job_id = next(_ids)
        _jobs[job_id] = _pool.submit(_run, job, project_id)
    return job_id


def wait(job_id: int) -> None:
    """Block until the job has ended (its exception, if any, is the job's business)."""
    _jobs[job_id].exception()


def _run(job: Callable[[str], None], project_id: str) -> None:
    try:
        job(project_id)
    finally:
        close_old_connections()  # each worker thread has its own database connection


def render_job(project_id: str) -> None:
    """Steps 2 and 3 (finish, files): the claim started by the view is always ended."""
    project = Project.objects.get(pk=project_id)
    lifecycle = ProjectLifecycle(project, DjangoAdapter())
    with fail_on_error(lifecycle):  # any exception: FAILED with the reason, then re-raised
        written = render_story(project_id, on_progress=lambda done, total: None)
        final = Path(settings.MEDIA_ROOT) / "projects" / project_id / "final.mp4"
        publish(written, final, project_key=project.pk)  # checked, fsynced, atomic rename
        lifecycle.complete(output_path_of(final, media_root=settings.MEDIA_ROOT))
