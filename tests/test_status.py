"""The transition table, the machine built from it, and the diagrams derived from it."""

from __future__ import annotations

from collections import deque

import pytest
import transitions

from renderstate import (
    INITIAL_STATUS,
    RENDERABLE_STATUSES,
    TRANSITIONS,
    Edge,
    ProjectLifecycle,
    Status,
    Trigger,
    to_dot,
    to_mermaid,
)
from renderstate._lifecycle import MACHINE, decide
from renderstate.testing import MemoryProject

EXPECTED_EDGES = {
    ("DRAFT", "start_render", "PROCESSING"),
    ("PROCESSING", "complete", "COMPLETED"),
    ("PROCESSING", "fail", "FAILED"),
    ("COMPLETED", "start_render", "PROCESSING"),
    ("FAILED", "start_render", "PROCESSING"),
}


def test_status_values_are_the_model_literals() -> None:
    """Each Status is a str equal to the reference model's literal."""
    assert [s.value for s in Status] == ["DRAFT", "PROCESSING", "COMPLETED", "FAILED"]
    assert Status.DRAFT == "DRAFT"
    assert isinstance(Status.PROCESSING, str)
    assert str(Status.FAILED) == "FAILED"
    assert f"{Status.COMPLETED}" == "COMPLETED"


def test_new_projects_are_draft() -> None:
    """The initial status is DRAFT, in the table and in the machine."""
    assert INITIAL_STATUS is Status.DRAFT
    assert MACHINE.initial == "DRAFT"


def test_table_has_exactly_the_five_edges() -> None:
    """The table declares the five documented edges and nothing else."""
    assert {(t.source.value, t.trigger.value, t.target.value) for t in TRANSITIONS} == (
        EXPECTED_EDGES
    )
    assert len(TRANSITIONS) == 5
    assert {t.edge for t in TRANSITIONS} == set(Edge)


def test_machine_is_derived_from_the_table() -> None:
    """The transitions Machine has exactly the table's edges, and no auto transitions."""
    edges = set()
    for name, event in MACHINE.events.items():
        for source, candidates in event.transitions.items():
            edges |= {(source, name, c.dest) for c in candidates}
    assert edges == EXPECTED_EDGES
    assert set(MACHINE.events) == {t.value for t in Trigger}
    assert set(MACHINE.states) == {s.value for s in Status}
    assert MACHINE.models == []


def test_every_status_is_reachable_from_the_initial_one() -> None:
    """A breadth-first walk of the machine from DRAFT visits all four statuses."""
    seen = {MACHINE.initial}
    queue = deque([MACHINE.initial])
    while queue:
        here = queue.popleft()
        for event in MACHINE.events.values():
            for candidate in event.transitions.get(here, []):
                if candidate.dest not in seen:
                    seen.add(candidate.dest)
                    queue.append(candidate.dest)
    assert seen == {s.value for s in Status}


def test_renderable_statuses_are_the_seed_set() -> None:
    """A render may start from DRAFT, COMPLETED and FAILED, never from PROCESSING."""
    assert {Status.DRAFT, Status.COMPLETED, Status.FAILED} == RENDERABLE_STATUSES


@pytest.mark.parametrize("trigger", list(Trigger))
@pytest.mark.parametrize("source", list(Status))
def test_decide_matches_the_table(trigger: Trigger, source: Status) -> None:
    """decide() answers the table's row for every (status, trigger) pair, else None."""
    rows = [t for t in TRANSITIONS if t.trigger is trigger and t.source is source]
    assert decide(trigger, source) == (rows[0] if rows else None)


def test_mermaid_diagram_lists_every_edge() -> None:
    """The Mermaid diagram has the initial arrow and one line per table row."""
    text = to_mermaid()
    assert text.startswith("stateDiagram-v2\n    [*] --> DRAFT\n")
    for t in TRANSITIONS:
        assert f"{t.source.value} --> {t.target.value}: {t.trigger.value} ({t.edge.value})" in text
    assert text.count("-->") == 6


def test_dot_diagram_lists_every_edge() -> None:
    """The Graphviz diagram has the initial arrow and one edge per table row."""
    text = to_dot()
    assert text.startswith("digraph renderstate {")
    assert "__start__ -> DRAFT;" in text
    for t in TRANSITIONS:
        assert f"{t.source.value} -> {t.target.value} [label=" in text
    assert text.count("->") == 6
    assert text.rstrip().endswith("}")


def test_lifecycles_build_no_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Machine is built once per process: binding and driving a lifecycle builds none."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a transitions.Machine was constructed per project")

    monkeypatch.setattr(transitions.Machine, "__init__", refuse)
    for _ in range(3):
        lifecycle = ProjectLifecycle(MemoryProject())
        lifecycle.start_render()
        lifecycle.complete("projects/1/final.mp4")
    assert lifecycle.status is Status.COMPLETED
