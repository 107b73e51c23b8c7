"""The web side of the Django tasks tests, a process configured by the settings module alone.

``submit KEY``: submit the project through :class:`DjangoTasksExecutor`, print the attempt
(one JSON line), then follow the handed-off job to its end through the ledger and print its
status and every progress fraction it saw. ``deliver SPEC N``: enqueue one more delivery of a
job spec (the N-th of its chain) and print what the task returned and how many tasks the
queue has had. ``cancel KEY REASON``: cancel the project's render from this process, which
has no job of it, and print what ``runner.cancel()`` answered.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runner.django_tasks_settings")
django.setup()

from django.conf import settings  # noqa: E402 - after django.setup()

from djangoapp.models import Project  # noqa: E402
from renderstate.runner.django_tasks import DjangoTasksExecutor, render  # noqa: E402
from runner.django_tasks_app import make_runner  # noqa: E402

QUEUE = settings.RENDERSTATE_TEST["queue"]


def emit(values: dict[str, Any]) -> None:
    print(json.dumps(values), flush=True)


def submit(key: str) -> None:
    runner = make_runner(DjangoTasksExecutor(queue_name=QUEUE))
    job = runner.submit(Project.objects.get(pk=key), actor="ann")
    emit(
        {
            "attempt": job.attempt_id,
            "spec": job.spec.to_dict(),
            "done": job.done(),
            "task_id": job.task_id,
        }
    )
    fractions: list[float] = []
    while not job.done():
        fractions.append(job.progress.fraction)
        time.sleep(0.02)
    error = job.error
    emit(
        {
            "status": job.wait(0).value,
            "fractions": fractions,
            "error": None if error is None else f"{type(error).__name__}: {error}",
        }
    )
    runner.shutdown()


def deliver(spec: dict[str, Any], delivery: int) -> None:
    from django_tasks_db.models import DBTaskResult  # noqa: PLC0415 - after django.setup()

    result = render.using(queue_name=QUEUE).enqueue(spec, delivery=delivery)
    while not result.is_finished:
        time.sleep(0.05)
        result.refresh()
    # Every task the queue has had: the deliveries and the looks they queued, run or not.
    tasks = DBTaskResult.objects.filter(queue_name=QUEUE).count()
    if result.errors:
        emit({"status": result.status, "error": result.errors[0].traceback, "tasks": tasks})
    else:
        emit({"status": result.status, "returned": result.return_value, "tasks": tasks})


def cancel(key: str, reason: str) -> None:
    runner = make_runner(DjangoTasksExecutor(queue_name=QUEUE))
    emit({"cancelled": runner.cancel(Project.objects.get(pk=key), reason)})
    runner.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "submit":
        submit(sys.argv[2])
    elif sys.argv[1] == "cancel":
        cancel(sys.argv[2], sys.argv[3])
    else:
        deliver(json.loads(sys.argv[2]), int(sys.argv[3]))
