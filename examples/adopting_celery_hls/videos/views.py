"""The API: upload a video (it is transcoded), read it, transcode it again."""

import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .models import Video
from .renders import web_runner


def _body(video: Video) -> dict[str, object]:
    runner = web_runner()
    hls = runner.video(video)  # the ledger's: the model has no column for it
    progress = runner.progress(video) if video.status in ("QUEUED", "PROCESS") else None
    return {
        "id": video.pk,
        "status": video.status,
        "hls_url": hls and f"{settings.MEDIA_URL}{hls}/playlist.m3u8",
        "duration": video.duration,
        "metadata": video.metadata,
        "error": video.error or None,
        "progress": None if progress is None else round(progress.fraction, 3),
    }


@csrf_exempt
@require_POST
def create_video(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    video = Video.objects.create(title=data["title"], source=data["source"])
    web_runner().submit(video)
    video.refresh_from_db()
    return JsonResponse(_body(video), status=201)


@require_GET
def video_detail(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(_body(get_object_or_404(Video, pk=pk)))


@csrf_exempt
@require_POST
def transcode_again(request: HttpRequest, pk: int) -> JsonResponse:
    video = get_object_or_404(Video, pk=pk)
    web_runner().submit(video)  # QUEUED or PROCESS: RenderConflictError, a 409
    video.refresh_from_db()
    return JsonResponse(_body(video), status=202)
