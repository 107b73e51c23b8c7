"""The four statuses and the five edges between them, as plain data.

This module is the single source of the machine: the ``transitions`` Machine in
:mod:`renderstate._machine`, the guard sets, the diagrams and the documentation's
table are all derived from :data:`TRANSITIONS`.
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

__all__ = [
    "INITIAL_STATUS",
    "RENDERABLE_STATUSES",
    "TRANSITIONS",
    "Edge",
    "Status",
    "Transition",
    "Trigger",
    "sources_of",
    "to_dot",
    "to_mermaid",
]


class Status(str, enum.Enum):
    """A project's render status; each value is the literal the reference model stores."""

    DRAFT = "DRAFT"
    """New project, never rendered."""
    PROCESSING = "PROCESSING"
    """A render is running; a second one is refused with 409."""
    COMPLETED = "COMPLETED"
    """The last render finished; ``output_path`` points at the video."""
    FAILED = "FAILED"
    """The last render raised; the previous video, if any, is still there."""

    def __str__(self) -> str:
        return self.value


class Trigger(str, enum.Enum):
    """The three operations a caller can ask of a lifecycle."""

    START_RENDER = "start_render"
    COMPLETE = "complete"
    FAIL = "fail"

    def __str__(self) -> str:
        return self.value


class Edge(str, enum.Enum):
    """Which of the five documented edges a transition took."""

    RENDER = "render"
    """DRAFT -> PROCESSING: the first render."""
    COMPLETE = "complete"
    """PROCESSING -> COMPLETED: the render finished."""
    FAIL = "fail"
    """PROCESSING -> FAILED: the render raised."""
    RERENDER = "re-render"
    """COMPLETED -> PROCESSING: render again, replacing the video at the same URL."""
    RETRY = "retry"
    """FAILED -> PROCESSING: try a failed render again."""

    def __str__(self) -> str:
        return self.value


class Transition(NamedTuple):
    """One row of the transition table."""

    edge: Edge
    trigger: Trigger
    source: Status
    target: Status


TRANSITIONS: Final[tuple[Transition, ...]] = (
    Transition(Edge.RENDER, Trigger.START_RENDER, Status.DRAFT, Status.PROCESSING),
    Transition(Edge.COMPLETE, Trigger.COMPLETE, Status.PROCESSING, Status.COMPLETED),
    Transition(Edge.FAIL, Trigger.FAIL, Status.PROCESSING, Status.FAILED),
    Transition(Edge.RERENDER, Trigger.START_RENDER, Status.COMPLETED, Status.PROCESSING),
    Transition(Edge.RETRY, Trigger.START_RENDER, Status.FAILED, Status.PROCESSING),
)
"""The machine: exactly these five edges, and nothing else."""

INITIAL_STATUS: Final = Status.DRAFT
"""The status of a new project."""


def sources_of(trigger: Trigger) -> frozenset[Status]:
    """Return the statuses from which ``trigger`` has an edge."""
    return frozenset(t.source for t in TRANSITIONS if t.trigger is trigger)


RENDERABLE_STATUSES: Final[frozenset[Status]] = sources_of(Trigger.START_RENDER)
"""The statuses from which a new render may start (DRAFT, COMPLETED, FAILED)."""


def to_mermaid() -> str:
    """Render the machine as a Mermaid ``stateDiagram-v2``, derived from the table."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATUS.value}"]
    lines += [
        f"    {t.source.value} --> {t.target.value}: {t.trigger.value} ({t.edge.value})"
        for t in TRANSITIONS
    ]
    return "\n".join(lines) + "\n"


def to_dot() -> str:
    """Render the machine as a Graphviz ``digraph``, derived from the table."""
    lines = [
        "digraph renderstate {",
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    __start__ [shape=point, label=""];',
        f"    __start__ -> {INITIAL_STATUS.value};",
    ]
    lines += [
        f'    {t.source.value} -> {t.target.value} [label="{t.trigger.value} ({t.edge.value})"];'
        for t in TRANSITIONS
    ]
    lines.append("}")
    return "\n".join(lines) + "\n"
