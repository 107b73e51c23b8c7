"""Bind a lifecycle to a fresh object, then start_render() + complete(), side by side.

Contenders, in one run on the same machine:
  renderstate         ProjectLifecycle(obj).start_render(); .complete(path)
  (a) transitions     a transitions.Machine constructed per object, then the two triggers
  (b) statemachine    a python-statemachine StateMachine bound to the object, two events
  (c) set check       a plain membership check and attribute assignments (the floor)

Run: .venv/bin/python benchmarks/bench_lifecycle.py [--loops N] [--repeats R]
Target: renderstate <= 0.2x of (a).
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable

from statemachine import State, StateMachine
from transitions import Machine

from renderstate import ProjectLifecycle

PATH = "projects/42/final.mp4"
STATES = ["DRAFT", "PROCESSING", "COMPLETED", "FAILED"]
EDGES = [
    {"trigger": "start_render", "source": ["DRAFT", "COMPLETED", "FAILED"], "dest": "PROCESSING"},
    {"trigger": "complete", "source": "PROCESSING", "dest": "COMPLETED"},
    {"trigger": "fail", "source": "PROCESSING", "dest": "FAILED"},
]
RENDERABLE = frozenset({"DRAFT", "COMPLETED", "FAILED"})


class Project:
    def __init__(self) -> None:
        self.id = 42
        self.status = "DRAFT"
        self.output_path: str | None = None


class RenderMachine(StateMachine):  # type: ignore[misc]
    draft = State("DRAFT", value="DRAFT", initial=True)
    processing = State("PROCESSING", value="PROCESSING")
    completed = State("COMPLETED", value="COMPLETED", final=False)
    failed = State("FAILED", value="FAILED")
    start_render = draft.to(processing) | completed.to(processing) | failed.to(processing)
    complete = processing.to(completed)
    fail = processing.to(failed)


def with_renderstate() -> None:
    lifecycle = ProjectLifecycle(Project())
    lifecycle.start_render()
    lifecycle.complete(PATH)


def with_transitions_machine_per_object() -> None:
    project = Project()
    Machine(
        model=project,
        states=STATES,
        transitions=EDGES,
        initial=project.status,
        model_attribute="status",
        auto_transitions=False,
    )
    project.start_render()  # type: ignore[attr-defined]
    project.complete()  # type: ignore[attr-defined]
    project.output_path = PATH


def with_python_statemachine() -> None:
    project = Project()
    machine = RenderMachine(model=project, state_field="status")
    machine.start_render()
    machine.complete()
    project.output_path = PATH


def with_set_check() -> None:
    project = Project()
    if project.status not in RENDERABLE:
        raise RuntimeError
    project.status = "PROCESSING"
    if project.status != "PROCESSING":
        raise RuntimeError
    project.status = "COMPLETED"
    project.output_path = PATH


CONTENDERS: dict[str, Callable[[], None]] = {
    "renderstate": with_renderstate,
    "(a) transitions Machine per object": with_transitions_machine_per_object,
    "(b) python-statemachine": with_python_statemachine,
    "(c) plain set check": with_set_check,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for fn in CONTENDERS.values():  # warm up imports and caches
        fn()
    medians = {}
    # Interleave the contenders so that machine noise hits them all alike.
    samples: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(args.repeats):
        for name, fn in CONTENDERS.items():
            seconds = timeit.timeit(fn, number=args.loops)
            samples[name].append(seconds / args.loops * 1e6)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["(a) transitions Machine per object"]
    print(f"{'contender':<38} {'median µs/op':>13} {'vs (a)':>8}")
    for name, value in medians.items():
        print(f"{name:<38} {value:>13.2f} {value / base:>7.3f}x")
    ratio = medians["renderstate"] / base
    verdict = "meets" if ratio <= 0.2 else "MISSES"
    print(f"\nrenderstate / (a) = {ratio:.3f} ({verdict} the <= 0.2x target)")


if __name__ == "__main__":
    main()
