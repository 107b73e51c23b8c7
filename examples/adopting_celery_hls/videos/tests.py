"""The app's own test suite, no broker. Its test settings run Celery tasks eagerly
(``CELERY_TASK_ALWAYS_EAGER``): the app's task, sent by the swap as the app sent it, runs in
the request's thread and transcodes for real, with ffmpeg, before the request returns; a
test that mocks the task's ``apply_async`` sees the app's own call."""

import shutil
import subprocess
import tempfile
from pathlib import Path
from unittest import mock

from django.test import TestCase, override_settings
from imageio_ffmpeg import get_ffmpeg_exe

from .models import Video

MEDIA = Path(tempfile.mkdtemp(prefix="transcoder-tests-"))


def make_source(name: str, seconds: int, colour: str) -> str:
    """A small source video below the media root; its path relative to it."""
    (MEDIA / "uploads").mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603 - our own ffmpeg, our own arguments
        [
            get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"color=c={colour}:size=64x36:rate=10:duration={seconds}",
            "-pix_fmt",
            "yuv420p",
            str(MEDIA / "uploads" / name),
        ],
        check=True,
    )
    return f"uploads/{name}"


@override_settings(MEDIA_ROOT=MEDIA)
class TranscodeTests(TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.red = make_source("red.mp4", 2, "red")
        cls.blue = make_source("blue.mp4", 3, "blue")

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(MEDIA, ignore_errors=True)

    def upload(self, source: str) -> dict[str, object]:
        response = self.client.post(
            "/videos/", {"title": "clip", "source": source}, content_type="application/json"
        )
        self.assertEqual(response.status_code, 201)
        return response.json()

    @mock.patch("videos.tasks.transcode_video.apply_async")
    def test_an_upload_is_queued(self, apply_async: mock.Mock) -> None:
        apply_async.return_value.id = "task-1"
        body = self.upload(self.red)
        apply_async.assert_called_once_with(args=[body["id"]])
        self.assertEqual(body["status"], "QUEUED")
        video = Video.objects.get(pk=body["id"])
        self.assertEqual(video.task_id, "task-1")

    def test_an_upload_is_transcoded_to_hls(self) -> None:
        body = self.upload(self.red)
        self.assertEqual(body["status"], "DONE")
        self.assertEqual(body["hls_url"], f"/media/videos/{body['id']}/hls/playlist.m3u8")
        self.assertAlmostEqual(body["duration"], 2.0, places=1)
        self.assertEqual(body["metadata"], {"playlist": "playlist.m3u8", "segments": 2})
        folder = MEDIA / "videos" / str(body["id"])
        self.assertEqual(sorted(p.name for p in folder.iterdir()), ["hls"])
        self.assertIn("segment000.ts", (folder / "hls" / "playlist.m3u8").read_text())

    def test_a_queued_or_processing_video_is_not_transcoded_twice(self) -> None:
        for status in ("QUEUED", "PROCESS"):
            video = Video.objects.create(title="busy", source=self.red, status=status)
            response = self.client.post(f"/videos/{video.pk}/transcode/")
            self.assertEqual(response.status_code, 409)
            video.refresh_from_db()
            self.assertEqual(video.status, status)

    def test_a_transcode_again_replaces_the_whole_directory(self) -> None:
        body = self.upload(self.red)
        Video.objects.filter(pk=body["id"]).update(source=self.blue)
        response = self.client.post(f"/videos/{body['id']}/transcode/")
        self.assertEqual(response.status_code, 202)
        self.assertEqual(response.json()["status"], "DONE")
        self.assertEqual(response.json()["metadata"]["segments"], 3)
        hls = MEDIA / "videos" / str(body["id"]) / "hls"
        self.assertEqual(len(list(hls.glob("segment*.ts"))), 3)

    def test_a_broken_source_ends_in_error_and_keeps_the_previous_output(self) -> None:
        body = self.upload(self.red)
        Video.objects.filter(pk=body["id"]).update(source="uploads/missing.mp4")
        self.client.post(f"/videos/{body['id']}/transcode/")
        again = self.client.get(f"/videos/{body['id']}/").json()
        self.assertEqual(again["status"], "ERROR")
        self.assertIn("is not a video ffmpeg can read", again["error"])
        self.assertEqual(again["hls_url"], body["hls_url"])  # the previous playlist stays
        video = Video.objects.get(pk=body["id"])
        self.assertIn("is not a video ffmpeg can read", video.error)
