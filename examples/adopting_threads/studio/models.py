"""The app's model, unchanged by the swap: renderstate adds no field, mixin or manager."""

from django.db import models


class Project(models.Model):
    STATUS_CHOICES = [
        ("DRAFT", "Draft"),
        ("PROCESSING", "Processing"),
        ("COMPLETED", "Completed"),
        ("FAILED", "Failed"),
    ]

    title = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default="DRAFT")
    output_path = models.CharField(max_length=500, blank=True, null=True)
    # The scenes to render: [{"color": [r, g, b], "seconds": 1.5}, ...]
    scenes = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
