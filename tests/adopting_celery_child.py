"""Child process of the transcoding app's tests (examples/adopting_celery_hls), in its cwd.

Usage:
    python adopting_celery_child.py first          # migrate, upload a short clip, wait for DONE
    python adopting_celery_child.py again ID       # transcode a long clip, wait for its progress
    python adopting_celery_child.py state ID       # the video's row and output, as JSON

It is the web process: it submits through Celery (``TRANSCODER_BROKER``, ``TRANSCODER_QUEUE``)
to a worker the test runs, and reads the progress from the ledger.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "examples" / "adopting_celery_hls"
sys.path.insert(0, str(APP))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "transcoder.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from imageio_ffmpeg import get_ffmpeg_exe  # noqa: E402
from videos.models import Video  # noqa: E402


def source(name: str, seconds: int, pattern: str) -> str:
    folder = Path(settings.MEDIA_ROOT) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"{pattern}:rate=25:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(folder / name),
        ],
        check=True,
    )
    return f"uploads/{name}"


def tree(pk: int) -> dict[str, str] | None:
    folder = Path(settings.MEDIA_ROOT) / "videos" / str(pk) / "hls"
    if not folder.is_dir():
        return None
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def wait_for(client: Client, pk: int, done: object, timeout: float = 120.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, object] = client.get(f"/videos/{pk}/").json()
        if done(body):  # type: ignore[operator]
            return body
        time.sleep(0.05)
    msg = f"video {pk} never got there: {body}"
    raise TimeoutError(msg)


def first() -> None:
    call_command("migrate", verbosity=0)
    client = Client()
    clip = source("short.mp4", 2, "color=c=red:size=64x36")
    response = client.post("/videos/", {"title": "clip", "source": clip}, "application/json")
    pk = response.json()["id"]
    wait_for(client, pk, lambda b: b["status"] == "DONE")
    print(json.dumps({"id": pk, "tree": tree(pk)}), flush=True)


def again(pk: int) -> None:
    Video.objects.filter(pk=pk).update(source=source("long.mp4", 300, "testsrc2=size=320x180"))
    client = Client()
    assert client.post(f"/videos/{pk}/transcode/").status_code == 202
    body = wait_for(client, pk, lambda b: (b["progress"] or 0) >= 0.05)
    print(json.dumps(body), flush=True)


def state(pk: int) -> None:
    video = Video.objects.get(pk=pk)
    folder = Path(settings.MEDIA_ROOT) / "videos" / str(pk)
    print(
        json.dumps(
            {
                "status": video.status,
                "error": video.error,
                "task_id": video.task_id,
                "tree": tree(pk),
                "listing": sorted(p.name for p in folder.iterdir()),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "first":
        first()
    elif command == "again":
        again(int(args[0]))
    else:
        state(int(args[0]))
