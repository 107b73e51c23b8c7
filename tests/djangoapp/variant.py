"""A model spelled differently from the reference: other names, integer literals, no timestamp."""

from django.db import models

from djangoapp.models import Project


class Clip(models.Model):
    name = models.CharField(max_length=255)
    state = models.IntegerField(default=10)
    video = models.CharField(max_length=500, default="")

    class Meta:
        app_label = "djangoapp"
        db_table = "dj_clip"


class Transcode(models.Model):
    """The transcoding app's Video, as it is: integer statuses (0 to 4, QUEUED and PROCESS
    both rendering), its failure reason as text and Celery's task id as a UUID."""

    status = models.SmallIntegerField(default=0)
    error = models.TextField(blank=True, null=True)
    task_id = models.UUIDField(blank=True, null=True)

    class Meta:
        app_label = "djangoapp"
        db_table = "dj_transcode"


class ProjectProxy(Project):
    """A proxy of the reference model: the same rows, so the same ledger scope."""

    class Meta:
        app_label = "djangoapp"
        proxy = True


class ClipProxy(Clip):
    """A proxy of the variant model."""

    class Meta:
        app_label = "djangoapp"
        proxy = True
