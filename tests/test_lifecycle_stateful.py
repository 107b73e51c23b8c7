"""Hypothesis drives random event sequences against a small reference model."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from renderstate import (
    InvalidOutputPathError,
    InvalidTransitionError,
    ProjectLifecycle,
    RenderConflictError,
    TransitionRecord,
    UnknownStatusError,
)
from renderstate.testing import MemoryProject, RecordingObserver

KNOWN = ("DRAFT", "PROCESSING", "COMPLETED", "FAILED")
GOOD_PATHS = st.sampled_from(["projects/1/final.mp4", "projects/1/v2.mp4", "a.mp4", "x/y/z.webm"])
BAD_PATHS = st.sampled_from(["", "/abs.mp4", "../up.mp4", "a\\b.mp4", "s3://b/k.mp4", "a\x00b"])
CORRUPT = st.sampled_from(["draft", "ARCHIVED", "", None, 0, "processing "])


class ReferenceModel:
    """What the lifecycle must do, written as plainly as possible."""

    def __init__(self) -> None:
        self.status: Any = "DRAFT"
        self.output: str | None = None

    def start(self) -> tuple[str, dict[str, Any]] | type[Exception]:
        if self.status not in KNOWN:
            return UnknownStatusError
        if self.status == "PROCESSING":
            return RenderConflictError
        edge = {"DRAFT": "render", "COMPLETED": "re-render", "FAILED": "retry"}[self.status]
        self.status = "PROCESSING"
        return edge, {"status": "PROCESSING"}

    def complete(self, path: str) -> tuple[str, dict[str, Any]] | type[Exception]:
        if self.status not in KNOWN:
            return UnknownStatusError
        if self.status != "PROCESSING":
            return InvalidTransitionError
        changes: dict[str, Any] = {"status": "COMPLETED", "output_path": path}
        self.status, self.output = "COMPLETED", path
        return "complete", changes

    def fail(self, clear: bool) -> tuple[str, dict[str, Any]] | type[Exception]:
        if self.status not in KNOWN:
            return UnknownStatusError
        if self.status != "PROCESSING":
            return InvalidTransitionError
        changes: dict[str, Any] = {"status": "FAILED"}
        if clear:
            changes["output_path"] = None
            self.output = None
        self.status = "FAILED"
        return "fail", changes


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.project = MemoryProject(title="ref")
        self.recorder = RecordingObserver()
        self.lifecycle = ProjectLifecycle(self.project, observers=[self.recorder])
        self.model = ReferenceModel()
        self.notified = 0

    def check(self, outcome: Any, action: Any) -> None:
        before = (self.project.status, self.project.output_path, self.project.title)
        try:
            record: TransitionRecord | None = action()
            error: Exception | None = None
        except Exception as exc:
            record, error = None, exc
        if isinstance(outcome, type):
            assert type(error) is outcome, (outcome, error)
            assert (self.project.status, self.project.output_path, self.project.title) == before
        else:
            assert error is None, error
            assert record is not None
            edge, changes = outcome
            assert record.edge.value == edge
            assert dict(record.changes) == changes
            self.notified += 1

    @rule()
    def start_render(self) -> None:
        self.check(self.model.start(), self.lifecycle.start_render)

    @rule(path=GOOD_PATHS)
    def complete(self, path: str) -> None:
        self.check(self.model.complete(path), lambda: self.lifecycle.complete(path))

    @rule(path=BAD_PATHS)
    def complete_with_a_bad_path(self, path: str) -> None:
        # A bad path is refused before the status is even looked at.
        self.check(InvalidOutputPathError, lambda: self.lifecycle.complete(path))

    @rule(clear=st.booleans())
    def fail(self, clear: bool) -> None:
        self.check(self.model.fail(clear), lambda: self.lifecycle.fail("x", clear_output=clear))

    @precondition(lambda self: self.model.status in KNOWN)
    @rule(value=CORRUPT)
    def corrupt_the_status(self, value: Any) -> None:
        self.saved = self.model.status
        self.project.status = value
        self.model.status = value

    @precondition(lambda self: self.model.status not in KNOWN)
    @rule()
    def repair_the_status(self) -> None:
        self.project.status = self.saved
        self.model.status = self.saved

    @invariant()
    def project_matches_the_model(self) -> None:
        assert self.project.status == self.model.status
        assert self.project.output_path == self.model.output
        assert self.project.title == "ref"
        assert len(self.recorder.records) == self.notified


TestLifecycleAgainstReferenceModel = LifecycleMachine.TestCase
