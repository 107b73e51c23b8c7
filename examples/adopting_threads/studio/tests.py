"""The app's own test suite: green before the swap, green after it, unchanged but for the
mixin. ``RenderJobsMixin`` renders each test's export in the request's thread (no job
outlives a test, none writes after the test database is gone)."""

import shutil
import tempfile

from django.test import TestCase, override_settings
from rest_framework.test import APIClient

from renderstate.testing import RenderJobsMixin

from .models import Project

MEDIA = tempfile.mkdtemp(prefix="studio-tests-")
SCENES = [{"color": [200, 30, 30], "seconds": 0.5}, {"color": [30, 30, 200], "seconds": 0.5}]


@override_settings(MEDIA_ROOT=MEDIA)
class RenderApiTests(RenderJobsMixin, TestCase):
    render_immediately = True  # the swap's one change to the tests

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(MEDIA, ignore_errors=True)

    def setUp(self) -> None:
        super().setUp()
        self.client = APIClient()
        self.project = Project.objects.create(title="The fox", scenes=SCENES)

    def test_render_completes_and_serves_the_video(self) -> None:
        response = self.client.post(f"/api/projects/{self.project.pk}/render/")
        self.assertEqual(response.status_code, 202)
        status = self.client.get(f"/api/projects/{self.project.pk}/status/").json()
        self.assertEqual(status["status"], "COMPLETED")
        self.assertEqual(status["video_url"], f"/media/projects/{self.project.pk}/final.mp4")
        self.assertIsNone(status["progress"])

    def test_a_render_already_running_is_refused_with_an_error_sentence(self) -> None:
        Project.objects.filter(pk=self.project.pk).update(status="PROCESSING")
        response = self.client.post(f"/api/projects/{self.project.pk}/render/")
        self.assertEqual(response.status_code, 409)
        self.assertIn("already PROCESSING", response.json()["error"])

    def test_a_failed_render_says_why_and_can_be_retried(self) -> None:
        Project.objects.filter(pk=self.project.pk).update(scenes=[])
        self.client.post(f"/api/projects/{self.project.pk}/render/")
        status = self.client.get(f"/api/projects/{self.project.pk}/status/").json()
        self.assertEqual(status["status"], "FAILED")
        self.assertIn("has no scenes to render", status["error"])
        Project.objects.filter(pk=self.project.pk).update(scenes=SCENES)
        self.client.post(f"/api/projects/{self.project.pk}/render/")
        self.project.refresh_from_db()
        self.assertEqual(self.project.status, "COMPLETED")

    def test_cancel_without_a_render_is_refused(self) -> None:
        response = self.client.post(f"/api/projects/{self.project.pk}/cancel/")
        self.assertEqual(response.status_code, 409)
        self.assertEqual(response.json(), {"error": "This project is not rendering."})

    def test_an_unknown_project_is_404(self) -> None:
        response = self.client.post("/api/projects/999/render/")
        self.assertEqual(response.status_code, 404)
