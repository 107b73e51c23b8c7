"""The app's own model, unchanged: renderstate adds no field, mixin or manager."""

import uuid

from django.db import models

STATUS_CHOICES = [
    ("DRAFT", "Draft"),
    ("PROCESSING", "Processing"),
    ("COMPLETED", "Completed"),
    ("FAILED", "Failed"),
]


class Project(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=255)
    updated_at = models.DateTimeField(auto_now=True)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default="DRAFT")
    # URL-relative path of the last successful render, e.g. "projects/<id>/final.mp4".
    output_path = models.CharField(max_length=500, blank=True, null=True)

    class Meta:
        app_label = "storyapp"
