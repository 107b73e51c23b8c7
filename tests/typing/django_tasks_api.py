"""Uses renderstate.runner.django_tasks as a user would; only type-checked (mypy), never run."""

from __future__ import annotations

from renderstate import RenderRunner
from renderstate.adapters.django import DjangoAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.django import DjangoAttemptStore
from renderstate.runner.django_tasks import (
    MAX_DELIVERIES,
    RUNNER_SETTING,
    Delivery,
    DjangoTasksExecutor,
    render,
)
from renderstate.testing import FakeRenderer
from renderstate.typing import Executor


def make_runner(executor: Executor | None = None) -> RenderRunner[object]:
    store = DjangoAttemptStore()
    return RenderRunner(
        DjangoAdapter(),
        FakeRenderer(),
        media_root="media",
        ledger=Ledger(store),
        loader=store.loader("projects.Project"),
        executor=executor,
    )


executor: Executor = DjangoTasksExecutor(queue_name="renders", priority=10)
web: RenderRunner[object] = make_runner(executor)
setting: str = RUNNER_SETTING
limit: int = MAX_DELIVERIES
outcome: str = Delivery.RENDERED.value
backend: str = render.using(queue_name="renders").backend
