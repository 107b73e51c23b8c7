from django.urls import path
from videos import views

urlpatterns = [
    path("videos/", views.create_video),
    path("videos/<int:pk>/", views.video_detail),
    path("videos/<int:pk>/transcode/", views.transcode_again),
]
