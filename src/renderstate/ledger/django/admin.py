"""Render attempts in the Django admin, and renders started from a project's admin.

Installing the ledger app (``INSTALLED_APPS += ["renderstate.ledger.django"]``) beside
``django.contrib.admin`` shows every attempt, read-only, under "Render attempts": its
state, project, who asked, which worker holds it, when it started and ended, how long it
took, its progress and why it failed; filtered by state and by date, searched by project
key. Attempts are written by the ledger alone (its conditional updates are what fence late
workers), so the admin can neither add, change nor delete one.

On your own project admin, :class:`RenderAdminMixin` adds the project's attempts to its
change page and a "Render" action that starts renders through your runner::

    from renderstate.ledger.django.admin import RenderAdminMixin

    @admin.register(Project)
    class ProjectAdmin(RenderAdminMixin, admin.ModelAdmin):
        render_runner = "exports.rendering.runner"   # or the runner itself, or a callable
        readonly_fields = ["render_attempts"]
        actions = ["start_render"]
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.module_loading import import_string

from renderstate._attempts import Attempt, AttemptState
from renderstate.exceptions import RenderConflictError, RenderStateError
from renderstate.ledger.django.models import RenderAttempt

if TYPE_CHECKING:
    from renderstate.runner import RenderRunner

__all__ = ["RenderAdminMixin", "RenderAttemptAdmin", "StartedFilter"]

_DAY = 86_400.0


def _when(seconds: float | None) -> str:
    """A UNIX time as the admin shows it (UTC, to the second), or a dash."""
    if seconds is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(started: float | None, finished: float | None) -> str:
    """How long an attempt rendered, ``"1:02:03"``; a dash before it started."""
    if started is None:
        return "-"
    end = finished if finished is not None else time.time()
    seconds = max(int(end - started), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _progress(state: str, phase: str, fraction: float) -> str:
    """``"42 % (rendering)"`` while live, the end state's name once ended."""
    if state in (AttemptState.QUEUED.value, AttemptState.RENDERING.value):
        return f"{min(max(fraction, 0.0), 1.0):.0%} ({phase})"
    return "100 %" if state == AttemptState.COMPLETED.value else "-"


class StartedFilter(admin.SimpleListFilter):
    """Attempts by when they were asked for: today, the past 7 or 30 days."""

    title = "asked for"
    parameter_name = "asked"
    _SPANS: ClassVar[dict[str, tuple[str, float]]] = {
        "today": ("Today", 1.0),
        "7d": ("Past 7 days", 7.0),
        "30d": ("Past 30 days", 30.0),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """The spans offered."""
        return [(key, label) for key, (label, _) in self._SPANS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        """The attempts created within the chosen span (all when none is chosen)."""
        span = self._SPANS.get(self.value() or "")
        if span is None:
            return queryset
        if self.value() == "today":
            midnight = datetime.datetime.now(datetime.timezone.utc).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            since = midnight.timestamp()
        else:
            since = time.time() - span[1] * _DAY
        found: QuerySet[Any] = queryset.filter(created_at__gte=since)
        return found


@admin.register(RenderAttempt)
class RenderAttemptAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # generic in stubs only
    """Every render attempt, read-only: the ledger alone writes them."""

    list_display = (
        "id",
        "project",
        "state",
        "actor",
        "worker",
        "started",
        "finished",
        "duration",
        "progress",
        "short_error",
    )
    list_filter = ("state", StartedFilter, "scope")
    # A task id (Celery's, Django tasks') finds the attempt a task queue reports on.
    search_fields = ("=project_key", "project_key__startswith", "actor", "worker", "=task_id")
    ordering = ("-id",)
    list_per_page = 50
    fields = (
        "id",
        "project",
        "state",
        "actor",
        "worker",
        "asked",
        "started",
        "finished",
        "duration",
        "progress",
        "label",
        "lease",
        "output_path",
        "task_id",
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        """No: an attempt is recorded by the ledger when a render starts."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """No: a change outside the ledger would unfence a late worker."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """No: the history is what support staff read."""
        return False

    @admin.display(description="project", ordering="project_key")
    def project(self, attempt: RenderAttempt) -> str:
        """The project's model and key."""
        return f"{attempt.scope} {attempt.project_key}"

    @admin.display(description="asked for", ordering="created_at")
    def asked(self, attempt: RenderAttempt) -> str:
        """When the render was asked for."""
        return _when(attempt.created_at)

    @admin.display(description="started", ordering="started_at")
    def started(self, attempt: RenderAttempt) -> str:
        """When a worker began it."""
        return _when(attempt.started_at)

    @admin.display(description="finished", ordering="finished_at")
    def finished(self, attempt: RenderAttempt) -> str:
        """When it ended."""
        return _when(attempt.finished_at)

    @admin.display(description="duration")
    def duration(self, attempt: RenderAttempt) -> str:
        """From its start to its end (to now while it renders)."""
        return _duration(attempt.started_at, attempt.finished_at)

    @admin.display(description="progress")
    def progress(self, attempt: RenderAttempt) -> str:
        """How far it got, while live."""
        return _progress(attempt.state, attempt.phase, attempt.fraction)

    @admin.display(description="lease until")
    def lease(self, attempt: RenderAttempt) -> str:
        """Until when its worker holds it, unless it renews."""
        return _when(attempt.lease_expires_at)

    @admin.display(description="error")
    def short_error(self, attempt: RenderAttempt) -> str:
        """The failure's reason, cut to one line."""
        error = attempt.error or ""
        first = error.splitlines()[0] if error else ""
        return first if len(first) <= 80 else f"{first[:79]}…"


class RenderAdminMixin:
    """Mix into your project's ``ModelAdmin``: its attempts, and a "Render" action.

    ``render_attempts`` (add it to ``readonly_fields``) shows the project's attempts, newest
    first, on its change page. The ``start_render`` action (add it to ``actions``) submits
    a render of each selected project through :attr:`render_runner`, as the user who
    asked; a project already rendering is reported as the 409 it is, and nothing changes
    for it. The action needs the change permission on the project model: staff who may
    only view projects neither see it nor run it.
    """

    render_runner: Any = None
    """The runner (with a ledger, for the attempts): the object, a callable returning it,
    or its dotted import path (``"exports.rendering.runner"``)."""
    render_attempts_limit: int = 20
    """How many of a project's latest attempts its change page shows."""

    def get_render_runner(self) -> RenderRunner[Any]:
        """The runner :attr:`render_runner` names.

        Raises:
            django.core.exceptions.ImproperlyConfigured: it names none.
        """
        from django.core.exceptions import ImproperlyConfigured  # noqa: PLC0415

        runner = self.render_runner
        if isinstance(runner, str):
            runner = import_string(runner)
        if runner is not None and not hasattr(runner, "submit") and callable(runner):
            runner = runner()
        if runner is None or not hasattr(runner, "submit"):
            msg = (
                f"{type(self).__name__}.render_runner names no RenderRunner (got "
                f"{self.render_runner!r}): set it to the runner, a callable returning it, or "
                f"its dotted path, e.g. render_runner = 'exports.rendering.runner'"
            )
            raise ImproperlyConfigured(msg)
        return runner  # type: ignore[no-any-return]

    @admin.display(description="render attempts")
    def render_attempts(self, project: Any) -> str:
        """The project's latest attempts as a table (newest first)."""
        if project is None or project.pk is None:
            return "-"
        runner = self.get_render_runner()
        ledger = runner.ledger
        if ledger is None:
            return "this runner keeps no attempt ledger"
        scope = ledger.scope(project)
        attempts: Iterable[Attempt] = ledger.history(
            scope, project.pk, limit=self.render_attempts_limit
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    a.id,
                    a.state.value,
                    a.actor or "-",
                    a.worker or "-",
                    _when(a.started_at),
                    _duration(a.started_at, a.finished_at),
                    _progress(a.state.value, a.phase, a.fraction),
                    a.error or "",
                )
                for a in attempts
            ),
        )
        if not rows:
            return "no render yet"
        return format_html(
            "<table><thead><tr><th>#</th><th>state</th><th>asked by</th><th>worker</th>"
            "<th>started</th><th>duration</th><th>progress</th><th>error</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    # A render changes the project (its status, its video): only staff who may change
    # projects see and run it, as Django's delete action needs the delete permission.
    @admin.action(description="Render the selected projects", permissions=["change"])
    def start_render(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """Submit a render of each selected project; report each outcome as a message."""
        runner = self.get_render_runner()
        user = getattr(request, "user", None)
        actor = user.get_username() if user is not None and user.is_authenticated else None
        started: list[str] = []
        for project in queryset:
            try:
                runner.submit(project, actor=actor)
            except RenderConflictError as exc:
                text = f"{project}: not started, 409 Conflict: {exc.public_message}"
                _message(self, request, text, messages.WARNING)
            except RenderStateError as exc:
                _message(self, request, f"{project}: {exc.public_message}", messages.ERROR)
            else:
                started.append(str(project))
        if started:
            _message(self, request, f"Render started: {', '.join(started)}.", messages.SUCCESS)


def _message(admin_view: Any, request: HttpRequest, text: str, level: int) -> None:
    send: Callable[..., None] = admin_view.message_user
    send(request, text, level=level)
