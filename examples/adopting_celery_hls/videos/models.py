"""The app's model, unchanged by the swap: five statuses, and no column for the output path."""

from django.db import models


class Video(models.Model):
    class Status(models.TextChoices):
        CREATED = "CREATED"
        QUEUED = "QUEUED"
        PROCESS = "PROCESS"
        DONE = "DONE"
        ERROR = "ERROR"

    title = models.CharField(max_length=200)
    source = models.CharField(max_length=500)  # the uploaded file, below MEDIA_ROOT
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CREATED)
    duration = models.FloatField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=255, blank=True, default="")
