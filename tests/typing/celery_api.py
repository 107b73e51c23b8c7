"""Uses renderstate.runner.celery as a user would; only type-checked (mypy), never run."""

from __future__ import annotations

import dataclasses

from celery import Celery

from renderstate import RenderRunner
from renderstate.adapters.memory import MemoryAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.runner import JobSpec
from renderstate.runner.celery import TASK_NAME, CeleryExecutor, Delivery, deliver, register
from renderstate.testing import FakeRenderer
from renderstate.typing import Executor


@dataclasses.dataclass
class Project:
    id: int
    status: str = "DRAFT"
    output_path: str | None = None


app = Celery("mysite", broker="redis://localhost:6379/0")
store = MemoryAttemptStore()


def make_runner(executor: Executor | None = None) -> RenderRunner[Project]:
    return RenderRunner(
        MemoryAdapter(),
        FakeRenderer(),
        media_root="media",
        ledger=Ledger(store),
        loader=store.loader([Project(1)]),
        executor=executor,
    )


web: RenderRunner[Project] = make_runner(CeleryExecutor(app, queue="renders"))
register(app, make_runner, queue="renders")
name: str = TASK_NAME


def on_message(data: dict[str, object]) -> str:
    outcome, job = deliver(make_runner(), JobSpec.from_dict(data))
    if outcome is Delivery.RENDERED and job is not None:
        return str(job.status)
    return outcome.value
