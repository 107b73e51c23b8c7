"""Uses the claim guards as a user would; only type-checked (mypy), never run."""

from __future__ import annotations

from renderstate import (
    ProjectLifecycle,
    TransitionRecord,
    aclaim_render,
    afail_on_error,
    claim_render,
    fail_on_error,
)
from renderstate.testing import MemoryProject


def export(lifecycle: ProjectLifecycle[MemoryProject]) -> TransitionRecord:
    with claim_render(lifecycle) as started:
        pass
    with fail_on_error(lifecycle):
        lifecycle.complete("projects/1/final.mp4")
    return started


async def aexport(lifecycle: ProjectLifecycle[MemoryProject]) -> TransitionRecord:
    async with aclaim_render(lifecycle) as started:
        pass
    async with afail_on_error(lifecycle):
        await lifecycle.acomplete("projects/1/final.mp4")
    return started
