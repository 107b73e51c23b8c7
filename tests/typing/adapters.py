"""Uses the ORM adapters as a user would; only type-checked (mypy), never run."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from renderstate import Change, ProjectLifecycle, Status, TransitionRecord
from renderstate.adapters.django import AsyncDjangoAdapter, DjangoAdapter
from renderstate.adapters.peewee import PeeweeAdapter
from renderstate.adapters.sqlalchemy import AsyncSQLAlchemyAdapter, SQLAlchemyAdapter
from renderstate.typing import Adapter, AsyncAdapter


def every_adapter(session: Session, factory: sessionmaker[Session]) -> list[Adapter[Any]]:
    return [
        DjangoAdapter(),
        DjangoAdapter(using="replica"),
        SQLAlchemyAdapter(session),
        SQLAlchemyAdapter(factory),
        PeeweeAdapter(),
        PeeweeAdapter(auto_update={"updated_at": lambda: "now"}),
    ]


def start(project: object, adapter: Adapter[Any]) -> TransitionRecord:
    lifecycle = ProjectLifecycle(
        project,
        adapter,
        status_field="state",
        output_field="video",
        values={Status.DRAFT: 10, Status.PROCESSING: 20, Status.COMPLETED: 30, Status.FAILED: 40},
    )
    return lifecycle.start_render()


async def start_async(project: object, factory: async_sessionmaker[AsyncSession]) -> bool:
    adapter = AsyncSQLAlchemyAdapter(factory)
    change = Change("status", frozenset({"DRAFT"}), {"status": "PROCESSING"})
    applied: bool = await adapter.apply(project, change)
    await AsyncSQLAlchemyAdapter(factory()).refresh_status(project, "status")
    return applied


def every_async_adapter(
    session: AsyncSession, factory: async_sessionmaker[AsyncSession]
) -> list[AsyncAdapter[Any]]:
    return [
        AsyncSQLAlchemyAdapter(session),
        AsyncSQLAlchemyAdapter(factory),
        AsyncDjangoAdapter(),
        AsyncDjangoAdapter(using="replica"),
    ]


async def start_through_the_lifecycle(project: object, adapter: AsyncAdapter[Any]) -> Status:
    lifecycle = ProjectLifecycle(project, adapter)
    record: TransitionRecord = await lifecycle.astart_render()
    await lifecycle.acomplete("projects/1/final.mp4")
    return record.target
