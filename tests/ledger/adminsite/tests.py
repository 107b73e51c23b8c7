"""The admin as support staff use it, through Django's test client."""

from __future__ import annotations

import time

from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.test import TransactionTestCase

from djangoapp.models import Project
from ledger.adminsite.admin import ProjectAdmin
from ledger.adminsite.rendering import failing, hostile, ledger, runner
from renderstate.ledger.django.models import RenderAttempt

CHANGELIST = "/admin/renderstate/renderattempt/"


class AttemptAdminTests(TransactionTestCase):
    def setUp(self):
        User.objects.create_superuser("support", "s@example.com", "pw")
        self.client.login(username="support", password="pw")
        self.good = Project.objects.create(title="good")
        self.bad = Project.objects.create(title="bad")
        runner.submit(self.good, actor="alice")
        failing.submit(self.bad, actor="bob")
        self.good_attempt = RenderAttempt.objects.get(project_key=str(self.good.pk))
        self.bad_attempt = RenderAttempt.objects.get(project_key=str(self.bad.pk))

    def test_the_changelist_shows_each_attempt(self):
        page = self.client.get(CHANGELIST).content.decode()
        for attempt in (self.good_attempt, self.bad_attempt):
            assert f"djangoapp.project {attempt.project_key}" in page
        for text in ("completed", "failed", "alice", "bob", "disk on fire"):
            assert text in page, text
        assert self.good_attempt.worker
        assert self.good_attempt.worker in page

    def test_filters_by_state(self):
        page = self.client.get(CHANGELIST, {"state__exact": "failed"}).content.decode()
        assert self.bad_attempt.project_key in page
        assert self.good_attempt.project_key not in page

    def test_filters_by_date(self):
        RenderAttempt.objects.filter(pk=self.bad_attempt.pk).update(
            created_at=time.time() - 10 * 86_400
        )
        week = self.client.get(CHANGELIST, {"asked": "7d"}).content.decode()
        assert self.good_attempt.project_key in week
        assert self.bad_attempt.project_key not in week
        month = self.client.get(CHANGELIST, {"asked": "30d"}).content.decode()
        assert self.bad_attempt.project_key in month
        today = self.client.get(CHANGELIST, {"asked": "today"}).content.decode()
        assert self.good_attempt.project_key in today
        assert self.bad_attempt.project_key not in today

    def test_searches_by_project_key(self):
        page = self.client.get(CHANGELIST, {"q": self.good_attempt.project_key}).content.decode()
        assert self.good_attempt.project_key in page
        assert self.bad_attempt.project_key not in page

    def test_searches_by_task_id(self):
        task_id = "6f1c2e2a-8d0b-4c55-9a57-0e8e3c0d2b1f"
        RenderAttempt.objects.filter(pk=self.bad_attempt.pk).update(task_id=task_id)
        page = self.client.get(CHANGELIST, {"q": task_id}).content.decode()
        assert self.bad_attempt.project_key in page
        assert self.good_attempt.project_key not in page
        detail = self.client.get(f"{CHANGELIST}{self.bad_attempt.pk}/change/").content.decode()
        assert task_id in detail

    def test_an_attempt_shows_its_progress_label_as_text(self):
        label = "<b>Encoding</b> vid\u00e9o"
        RenderAttempt.objects.filter(pk=self.good_attempt.pk).update(label=label)
        detail = self.client.get(f"{CHANGELIST}{self.good_attempt.pk}/change/").content.decode()
        assert "&lt;b&gt;Encoding&lt;/b&gt; vid\u00e9o" in detail
        assert "<b>Encoding</b>" not in detail

    def test_an_attempt_is_read_only(self):
        url = f"{CHANGELIST}{self.bad_attempt.pk}/change/"
        page = self.client.get(url)
        assert page.status_code == 200
        text = page.content.decode()
        assert "disk on fire" in text
        assert 'name="_save"' not in text
        before = RenderAttempt.objects.get(pk=self.bad_attempt.pk).state
        assert self.client.post(url, {"state": "completed"}).status_code == 403
        assert RenderAttempt.objects.get(pk=self.bad_attempt.pk).state == before
        assert self.client.get(f"{CHANGELIST}add/").status_code == 403
        assert self.client.get(f"{CHANGELIST}{self.bad_attempt.pk}/delete/").status_code == 403
        assert RenderAttempt.objects.count() == 2

    def test_a_project_page_shows_its_attempts(self):
        failing.submit(self.bad)  # a second attempt, newest first
        url = f"/admin/djangoapp/project/{self.bad.pk}/change/"
        text = self.client.get(url).content.decode()
        assert "<table>" in text
        assert text.count("disk on fire") == 2
        first, second = sorted(
            RenderAttempt.objects.filter(project_key=str(self.bad.pk)).values_list("id", flat=True)
        )
        assert text.index(f"<td>{second}</td>") < text.index(f"<td>{first}</td>")

    def test_html_in_an_actor_or_an_error_is_shown_as_text(self):
        project = Project.objects.create(title="hostile")
        hostile.submit(project, actor="<script>alert(1)</script>")
        pages = [
            self.client.get(CHANGELIST).content.decode(),
            self.client.get(f"/admin/djangoapp/project/{project.pk}/change/").content.decode(),
        ]
        attempt = RenderAttempt.objects.get(project_key=str(project.pk))
        pages.append(self.client.get(f"{CHANGELIST}{attempt.pk}/change/").content.decode())
        for page in pages:
            assert "<script>alert(1)" not in page
            assert "<img src=x" not in page
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
            assert "&lt;img src=x onerror=alert(2)&gt;" in page


class RenderActionTests(TransactionTestCase):
    def setUp(self):
        User.objects.create_superuser("support", "s@example.com", "pw")
        self.client.login(username="support", password="pw")

    def act(self, *projects):
        return self.client.post(
            "/admin/djangoapp/project/",
            {"action": "start_render", "_selected_action": [str(p.pk) for p in projects]},
            follow=True,
        )

    def test_the_action_renders_as_the_user_who_asked(self):
        project = Project.objects.create(title="clip")
        text = self.act(project).content.decode()
        project.refresh_from_db()
        assert project.status == "COMPLETED"
        assert "Render started: " in text
        (attempt,) = ledger.history(ledger.scope(project), project.pk)
        assert attempt.actor == "support"

    def test_a_project_rendering_already_gets_409_and_is_left_alone(self):
        busy = Project.objects.create(title="busy", status="PROCESSING")
        idle = Project.objects.create(title="idle")
        text = self.act(busy, idle).content.decode()
        assert "409 Conflict" in text
        busy.refresh_from_db()
        idle.refresh_from_db()
        assert busy.status == "PROCESSING"
        assert idle.status == "COMPLETED"
        assert not RenderAttempt.objects.filter(project_key=str(busy.pk)).exists()

    def test_staff_who_may_only_view_projects_cannot_start_renders(self):
        # A render changes the project (its status, its video): the action needs the
        # change permission, as Django's own delete action needs the delete one.
        viewer = User.objects.create_user("viewer", "v@example.com", "pw", is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_project"))
        self.client.logout()
        self.client.login(username="viewer", password="pw")
        project = Project.objects.create(title="clip")
        page = self.client.get("/admin/djangoapp/project/").content.decode()
        assert page.count("clip") >= 1
        assert "start_render" not in page
        self.act(project)
        project.refresh_from_db()
        assert project.status == "DRAFT"
        assert not RenderAttempt.objects.filter(project_key=str(project.pk)).exists()

    def test_a_missing_runner_names_the_setting(self):
        class Bare(ProjectAdmin):
            render_runner = None

        with self.assertRaisesMessage(
            ImproperlyConfigured, "render_runner = 'exports.rendering.runner'"
        ):
            Bare(Project, admin.site).get_render_runner()
