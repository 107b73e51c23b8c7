"""A model spelled differently from the reference: other names, integer literals, no timestamp."""

from django.db import models


class Clip(models.Model):
    name = models.CharField(max_length=255)
    state = models.IntegerField(default=10)
    video = models.CharField(max_length=500, default="")

    class Meta:
        app_label = "djangoapp"
        db_table = "dj_clip"
