"""The URLs of the example: the two endpoints, the status, and the rendered videos."""

from __future__ import annotations

from django.urls import path, re_path
from projects import views
from projects.media import serve_media

urlpatterns = [
    path("projects", views.create_project, name="create-project"),
    path("projects/<str:pk>", views.project_status, name="project-status"),
    path("projects/<str:pk>/render", views.render_project, name="render-project"),
    # In production the web server (nginx, a CDN) serves MEDIA_ROOT; this view does it here,
    # with byte ranges so a video can seek.
    re_path(r"^media/(?P<path>.+)$", serve_media, name="media"),
]
