"""The app's own Celery task, kept by the swap: what the views send, and what renders."""

from typing import Any

from celery import shared_task

from renderstate.runner.celery import run_attempt


@shared_task(bind=True)
def transcode_video(self: Any, video_id: int) -> str:
    """Transcode a video to HLS (sent by the runner as the views sent it before)."""
    # The swap: the runner transcodes the attempt the view started, fenced by it, and
    # publishes the whole HLS directory; QUEUED, DONE and ERROR are its to write.
    return run_attempt(self, video_id)
