"""The URLs of the example: the two endpoints, the status, and the rendered videos."""

from __future__ import annotations

from django.conf import settings
from django.urls import path, re_path
from django.views.static import serve
from projects import views

urlpatterns = [
    path("projects", views.create_project, name="create-project"),
    path("projects/<str:pk>", views.project_status, name="project-status"),
    path("projects/<str:pk>/render", views.render_project, name="render-project"),
    # In production the web server (nginx, a CDN) serves MEDIA_ROOT; this view does it here.
    re_path(r"^media/(?P<path>.+)$", serve, {"document_root": settings.MEDIA_ROOT}),
]
