from django.urls import path
from studio import views

urlpatterns = [
    path("api/projects/<int:pk>/render/", views.render_project_view),
    path("api/projects/<int:pk>/status/", views.project_status_view),
    path("api/projects/<int:pk>/cancel/", views.cancel_render_view),
]
