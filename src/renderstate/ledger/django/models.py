"""The attempt ledger's Django model: one row per render attempt, in table ``renderstate_attempt``.

The columns and index names are those of
:func:`renderstate.ledger.sqlalchemy.attempt_table`. Times are UNIX seconds in double
precision, which every database compares alike.
"""

from __future__ import annotations

from django.db import models

from renderstate._attempts import AttemptState
from renderstate.ledger import _turns

__all__ = ["RenderAttempt", "SweepTurn"]


class RenderAttempt(models.Model):
    """One render attempt of one project; written by :class:`~renderstate.ledger.Ledger` only.

    Read it like any model (the admin, a report), but change attempts through the ledger:
    its conditional updates are what fence late workers.
    """

    id: models.BigAutoField[int, int] = models.BigAutoField(primary_key=True)
    scope: models.CharField[str, str] = models.CharField(max_length=100)
    project_key: models.CharField[str, str] = models.CharField(max_length=255)
    state: models.CharField[str, str] = models.CharField(
        max_length=16, choices=[(s.value, s.value.capitalize()) for s in AttemptState]
    )
    output_path: models.CharField[str | None, str | None] = models.CharField(
        max_length=500, null=True
    )
    actor: models.CharField[str | None, str | None] = models.CharField(max_length=255, null=True)
    worker: models.CharField[str | None, str | None] = models.CharField(max_length=255, null=True)
    lease_expires_at: models.FloatField[float | None, float | None] = models.FloatField(null=True)
    phase: models.CharField[str, str] = models.CharField(max_length=32, default="queued")
    done: models.IntegerField[int, int] = models.IntegerField(default=0)
    total: models.IntegerField[int, int] = models.IntegerField(default=0)
    fraction: models.FloatField[float, float] = models.FloatField(default=0.0)
    eta_seconds: models.FloatField[float | None, float | None] = models.FloatField(null=True)
    error: models.TextField[str | None, str | None] = models.TextField(null=True)
    created_at: models.FloatField[float, float] = models.FloatField()
    started_at: models.FloatField[float | None, float | None] = models.FloatField(null=True)
    finished_at: models.FloatField[float | None, float | None] = models.FloatField(null=True)
    owner: models.CharField[str | None, str | None] = models.CharField(max_length=64, null=True)
    cancel_requested_at: models.FloatField[float | None, float | None] = models.FloatField(
        null=True
    )
    cancel_reason: models.TextField[str | None, str | None] = models.TextField(null=True)
    executor: models.CharField[str | None, str | None] = models.CharField(max_length=255, null=True)
    task_id: models.CharField[str | None, str | None] = models.CharField(max_length=255, null=True)
    traceparent: models.CharField[str | None, str | None] = models.CharField(
        max_length=64, null=True
    )
    label: models.CharField[str | None, str | None] = models.CharField(max_length=255, null=True)

    class Meta:  # noqa: D106 - Django's options
        app_label = "renderstate"
        db_table = "renderstate_attempt"
        verbose_name = "render attempt"
        indexes = (
            models.Index(fields=["scope", "project_key", "id"], name="renderstate_attempt_project"),
            models.Index(fields=["state", "lease_expires_at"], name="renderstate_attempt_lease"),
        )

    def __str__(self) -> str:
        return f"attempt {self.id} of {self.scope} {self.project_key} ({self.state})"


class SweepTurn(models.Model):
    """The turn of one task system's workers to sweep one kind of project.

    Claimed by :meth:`Ledger.take_sweep_turn <renderstate.ledger.Ledger.take_sweep_turn>`
    with one conditional ``UPDATE``; nothing else writes it.
    """

    name: models.CharField[str, str] = models.CharField(
        max_length=_turns.NAME_WIDTH, primary_key=True
    )
    holder: models.CharField[str | None, str | None] = models.CharField(
        max_length=_turns.HOLDER_WIDTH, null=True
    )
    expires_at: models.FloatField[float, float] = models.FloatField()

    class Meta:  # noqa: D106 - Django's options
        app_label = "renderstate"
        db_table = _turns.TABLE_NAME
        verbose_name = "sweep turn"

    def __str__(self) -> str:
        return f"sweep turn {self.name} ({self.holder})"
