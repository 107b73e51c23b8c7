"""Bind a lifecycle to a fresh object, then start_render() + complete(), side by side.

Time, contenders in one run on the same machine, rounds interleaved, medians:
  renderstate         ProjectLifecycle(obj).start_render(); .complete(path)
  (a) transitions     a transitions.Machine constructed per object, then the two triggers
  (a2) add_model      one shared transitions.Machine, add_model(obj) per object
  (b) statemachine    a python-statemachine StateMachine bound to the object, two events
  (c) set check       a plain membership check and attribute assignments (the floor)

Memory (tracemalloc): what binding adds to each of N plain objects kept alive, for
renderstate, (a), (a2) and (b); weak-referenceability of a lifecycle.

Run: .venv/bin/python benchmarks/bench_lifecycle.py [--loops N] [--repeats R] [--objects N]
Targets: renderstate <= 0.10x of (a); <= 96 bytes per bound lifecycle over the plain object.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import timeit
import tracemalloc
import weakref
from collections.abc import Callable
from typing import Any

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


SHARED = Machine(
    model=None,
    states=STATES,
    transitions=EDGES,
    initial="DRAFT",
    model_attribute="status",
    auto_transitions=False,
)


def with_transitions_add_model() -> None:
    project = Project()
    SHARED.add_model(project)
    project.start_render()  # type: ignore[attr-defined]
    project.complete()  # type: ignore[attr-defined]
    project.output_path = PATH
    SHARED.remove_model(project)  # else the shared machine keeps every object alive


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
    "(a2) transitions shared, add_model": with_transitions_add_model,
    "(b) python-statemachine": with_python_statemachine,
    "(c) plain set check": with_set_check,
}


def bind_renderstate(project: Project) -> object:
    return ProjectLifecycle(project)


def bind_machine_per_object(project: Project) -> object:
    return Machine(
        model=project,
        states=STATES,
        transitions=EDGES,
        initial=project.status,
        model_attribute="status",
        auto_transitions=False,
    )


def bind_add_model(project: Project) -> object:
    SHARED.add_model(project)
    return None


def bind_python_statemachine(project: Project) -> object:
    return RenderMachine(model=project, state_field="status")


def bytes_per_binding(bind: Callable[[Project], object], count: int) -> float:
    """Bytes that binding adds per object: the binding itself plus what it adds to the object.

    The plain objects and the list that keeps the bindings alive are allocated before
    tracing starts, so only what ``bind`` allocates (and keeps) is counted.
    """
    projects = [Project() for _ in range(count)]
    kept: list[Any] = [None] * count
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for index, project in enumerate(projects):
            kept[index] = bind(project)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if bind is bind_add_model:
        for project in projects:
            SHARED.remove_model(project)
    return (after - before) / count


def measure_time(loops: int, repeats: int) -> None:
    for fn in CONTENDERS.values():  # warm up imports and caches
        fn()
    # Interleave the contenders so that machine noise hits them all alike.
    samples: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(repeats):
        for name, fn in CONTENDERS.items():
            seconds = timeit.timeit(fn, number=loops)
            samples[name].append(seconds / loops * 1e6)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    anchor = "(a) transitions Machine per object"
    base = medians[anchor]
    print(f"{'contender':<38} {'median µs/op':>13} {'vs (a)':>8}")
    for name, value in medians.items():
        print(f"{name:<38} {value:>13.2f} {value / base:>7.3f}x")
    rounds = [r / a for r, a in zip(samples["renderstate"], samples[anchor], strict=True)]
    ratio = medians["renderstate"] / base
    verdict = "meets" if ratio <= 0.10 else "MISSES"
    print(
        f"\nrenderstate {medians['renderstate']:.2f} µs / (a) {base:.2f} µs = {ratio:.3f}x "
        f"({verdict} the <= 0.10x target); per round {min(rounds):.3f}-{max(rounds):.3f}x"
    )


def measure_memory(objects: int, others: int) -> None:
    contenders: list[tuple[str, Callable[[Project], object], int]] = [
        ("renderstate", bind_renderstate, objects),
        ("(a) transitions Machine per object", bind_machine_per_object, others),
        ("(a2) transitions shared, add_model", bind_add_model, others),
        ("(b) python-statemachine", bind_python_statemachine, others),
    ]
    plain = Project()
    plain_size = sys.getsizeof(plain) + sys.getsizeof(vars(plain))
    print(f"\n{'binding (tracemalloc)':<38} {'objects':>8} {'bytes/object':>13}")
    results = {}
    for name, bind, count in contenders:
        results[name] = bytes_per_binding(bind, count)
        print(f"{name:<38} {count:>8} {results[name]:>13.1f}")
    ours = results["renderstate"]
    verdict = "meets" if ours <= 96 else "MISSES"
    print(
        f"\nrenderstate adds {ours:.1f} bytes per bound lifecycle over the plain object "
        f"(itself {plain_size} bytes with its __dict__): {verdict} the <= 96 bytes target; "
        f"(a) adds {results['(a) transitions Machine per object'] / ours:.0f}x that."
    )
    lifecycle = ProjectLifecycle(plain)
    print(f"weakref.ref(lifecycle) works: {weakref.ref(lifecycle)() is lifecycle}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--objects", type=int, default=100_000, help="for renderstate")
    parser.add_argument(
        "--others", type=int, default=10_000, help="for the other libraries (kilobytes each)"
    )
    parser.add_argument("--parts", default="time,memory")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if "time" in parts:
        measure_time(args.loops, args.repeats)
    if "memory" in parts:
        measure_memory(args.objects, args.others)


if __name__ == "__main__":
    main()
