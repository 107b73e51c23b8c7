"""The swap: the app's transcoding function, driven by RenderRunner through Celery.

The runner guards the start (one transcode at a time per video, in one conditional
``UPDATE``), sends the app's own Celery task as the app did, whose body renders the
attempt on a worker, gives the function an empty staging
directory beside the output, and publishes the whole HLS directory in one atomic swap,
fenced by the attempt: a reader of ``media/videos/<id>/hls`` sees the previous playlist and
segments or the new ones, never a mix, and a killed worker's half-written segments never
reach it. The model has no column for the output path: the ledger keeps it.
"""

import functools

from django.conf import settings

from renderstate import RenderRunner, Status
from renderstate.adapters.django import DjangoAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.django import DjangoAttemptStore
from renderstate.runner import own_path
from renderstate.runner.celery import CeleryExecutor
from renderstate.typing import Executor

from .models import Video
from .transcoding import transcode_to_hls

# The app's five literals: QUEUED and PROCESS both read as PROCESSING (the first is written).
VALUES = {
    Status.DRAFT: "CREATED",
    Status.PROCESSING: ["QUEUED", "PROCESS"],
    Status.COMPLETED: "DONE",
    Status.FAILED: "ERROR",
}


def make_runner(executor: Executor | None = None) -> RenderRunner[Video]:
    """A runner on the app's model; the web process's sends through Celery."""
    store = DjangoAttemptStore()
    return RenderRunner(
        DjangoAdapter(),
        own_path(
            transcode_to_hls,
            argument=lambda video: video.pk,  # it takes the id
            target="out_dir",  # the empty directory to fill, as this keyword
            output="directory",  # a playlist and segments, published whole
            result_key="hls_dir",  # the returned dict's entry naming the directory
            fields=["duration", "metadata"],  # saved with the completion, fenced
        ),
        media_root=settings.MEDIA_ROOT,
        values=VALUES,
        output_field=None,  # no column for it: the ledger keeps the path
        output_path_for=lambda video: f"videos/{video.pk}/hls",
        ledger=Ledger(store),
        loader=store.loader(Video),
        error_field="error",  # why it failed, in the fail's own UPDATE (a start empties it)
        task_id_field="task_id",  # the Celery task's id, in the start's own UPDATE
        executor=executor,
    )


def app_task() -> CeleryExecutor:
    """Sends the app's own task with the app's own arguments: apply_async(args=[video.pk])."""
    from transcoder.celery import app  # noqa: PLC0415 - Celery's app module imports this one

    from .tasks import transcode_video  # noqa: PLC0415 - the task module imports Celery's

    return CeleryExecutor(app, task=transcode_video, args=lambda v: [v.pk])


@functools.cache
def web_runner() -> RenderRunner[Video]:
    """The web process's runner: it submits to the Celery workers."""
    return make_runner(app_task())
