"""The swap: the app's render function and task manager, driven by one RenderRunner.

New in the swap, and the only new module. The runner guards the start (one render at a
time), leaves the job to the app's own task (``render_task``, which its own task manager
runs as before), tells the render function where to write (a temporary file in a private
directory beside ``final.mp4``), publishes what it wrote atomically, and ends the project
COMPLETED or FAILED in a fenced save; the attempt ledger keeps the progress, the cancel
requests and the leases in the database, so another server process sees them and recovery
knows a dead render from a live one.
"""

import functools

from django.conf import settings

from renderstate import RenderRunner
from renderstate.adapters.django import DjangoAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.django import DjangoAttemptStore
from renderstate.runner import own_path
from renderstate.runner.executors import AppTaskExecutor

from .models import Project
from .rendering import render_project


@functools.cache
def get_runner() -> RenderRunner[Project]:
    """This process's runner, created on first use."""
    store = DjangoAttemptStore()
    return RenderRunner(
        DjangoAdapter(),
        own_path(
            render_project,
            argument=lambda project: project.pk,  # it takes the id, not the object
            target="output_path",  # told where to write, by this keyword
            result_key="video_path",  # the returned dict's entry naming the file
        ),
        media_root=settings.MEDIA_ROOT,
        executor=AppTaskExecutor(),  # the app's task manager runs render_task, which renders
        ledger=Ledger(store),
        loader=store.loader(Project),
    )
