"""The render runner of this process: created once, on first use, shared by every request.

A runner owns a pool of render threads and the progress of the renders it runs, so there is
exactly one per process, never one per request. ``serve.py`` runs a single gunicorn worker
process (with threads), which therefore sees the progress of every render.
"""

from __future__ import annotations

import functools

from django.conf import settings

from renderstate import RenderRunner
from renderstate.adapters.django import AsyncDjangoAdapter, DjangoAdapter
from renderstate.rendering.moviepy import MoviePyRenderer

from .models import STATUS_PROCESSING, Project


@functools.cache
def get_runner() -> RenderRunner[Project]:
    """Return this process's runner, creating it on first use."""
    return RenderRunner(
        DjangoAdapter(),
        # Timelines name pictures and sounds relative to the uploads directory, and may
        # name nothing outside it.
        MoviePyRenderer(base_dir=settings.MEDIA_ROOT / "uploads"),
        # For the async views: asubmit() awaits the guarded start through Django's async ORM.
        async_adapter=AsyncDjangoAdapter(),
        media_root=settings.MEDIA_ROOT,
        max_workers=2,
        find_processing=lambda: Project.objects.filter(status=STATUS_PROCESSING),
    )
