"""The five edges and the 409 guard on a plain object, with the in-memory adapter.

Run it: python examples/lifecycle_basics.py
"""

from __future__ import annotations

import dataclasses
import threading

from renderstate import (
    ProjectLifecycle,
    RenderConflictError,
    TransitionRecord,
    to_mermaid,
)


@dataclasses.dataclass
class Project:
    id: int
    title: str
    status: str = "DRAFT"
    output_path: str | None = None


def show(record: TransitionRecord) -> None:
    print(
        f"  {record.edge.value:<9} {record.source.value:>10} -> {record.target.value:<10}", end=""
    )
    print(f" wrote {dict(record.changes)}")


def main() -> None:
    project = Project(id=42, title="Summer trip")
    lifecycle = ProjectLifecycle(project, observers=[show])

    print(f"Project {project.id} starts {lifecycle.status.value}; the machine:")
    print(to_mermaid())
    print("A first render, a re-render that fails, and a retry:")
    lifecycle.start_render()
    lifecycle.complete(f"projects/{project.id}/final.mp4")
    lifecycle.start_render()
    lifecycle.fail(RuntimeError("encoder crashed"))
    print(f"  the last good video is still {project.output_path!r}")
    lifecycle.start_render()
    lifecycle.complete(f"projects/{project.id}/final.mp4")

    print("Sixteen requests click 'Export video' at the same moment:")
    outcomes: list[str] = []
    lock = threading.Lock()

    def click() -> None:
        try:
            ProjectLifecycle(project).start_render()
            result = "started"
        except RenderConflictError as exc:
            result = f"{exc.status_code}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=click) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"  {outcomes.count('started')} started, {outcomes.count('409')} got 409 Conflict")

    lifecycle.complete(f"projects/{project.id}/final.mp4")
    print(f"Project {project.id} is {project.status}: {project.output_path}")


if __name__ == "__main__":
    main()
