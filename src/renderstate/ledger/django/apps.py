"""The Django app that holds the attempt ledger's table (``INSTALLED_APPS`` entry)."""

from __future__ import annotations

from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """``renderstate.ledger.django``: one model, :class:`~.models.RenderAttempt`, one table.

    Its label is ``renderstate``: ``python manage.py migrate renderstate`` creates the table.
    """

    name = "renderstate.ledger.django"
    label = "renderstate"
    verbose_name = "renderstate"
    default_auto_field = "django.db.models.BigAutoField"
