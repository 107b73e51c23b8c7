from django.urls import path

from .views import ExportView, ProjectView

urlpatterns = [
    path("projects/<uuid:pk>", ProjectView.as_view()),
    path("projects/<uuid:pk>/export", ExportView.as_view()),
]
