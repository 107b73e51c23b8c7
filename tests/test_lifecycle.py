"""ProjectLifecycle on plain objects with the in-memory adapters.

Every behaviour that drives a transition runs three ways (the ``via`` fixture): the sync
methods, the ``a``-methods over a sync adapter (its calls in a worker thread), and the
``a``-methods over an async adapter. All three must decide, refuse and record alike.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import gc
import logging
import pickle
import re
import time
import weakref
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renderstate import (
    AttemptOwnedError,
    Change,
    Edge,
    InvalidOutputPathError,
    InvalidTransitionError,
    ProjectLifecycle,
    ProjectNotFoundError,
    RenderConflictError,
    RenderInterruptedError,
    RenderOutputError,
    RenderStateError,
    Status,
    TimelineError,
    TransitionRecord,
    Trigger,
    UnknownStatusError,
    can_start_render,
    validate_output_path,
)
from renderstate._lifecycle import MACHINE
from renderstate.adapters.memory import AsyncMemoryAdapter, MemoryAdapter
from renderstate.testing import MemoryProject, RecordingObserver

EDGES = {
    (Status.DRAFT, Trigger.START_RENDER): (Status.PROCESSING, Edge.RENDER),
    (Status.PROCESSING, Trigger.COMPLETE): (Status.COMPLETED, Edge.COMPLETE),
    (Status.PROCESSING, Trigger.FAIL): (Status.FAILED, Edge.FAIL),
    (Status.COMPLETED, Trigger.START_RENDER): (Status.PROCESSING, Edge.RERENDER),
    (Status.FAILED, Trigger.START_RENDER): (Status.PROCESSING, Edge.RETRY),
}


class AsyncOver:
    """Presents any sync adapter as an AsyncAdapter, yielding to the loop before each call."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter

    async def apply(self, project: object, change: Change) -> bool:
        await asyncio.sleep(0)
        return bool(self.adapter.apply(project, change))

    async def refresh_status(self, project: object, status_field: str) -> None:
        await asyncio.sleep(0)
        self.adapter.refresh_status(project, status_field)

    def project_key(self, project: object) -> object:
        return self.adapter.project_key(project)

    def empty_output(self, project: object, field: str) -> str | None:
        return self.adapter.empty_output(project, field)  # type: ignore[no-any-return]


class Driven:
    """A lifecycle whose three methods run through one of the three paths."""

    def __init__(self, lifecycle: ProjectLifecycle[Any], *, awaited: bool) -> None:
        self.lifecycle = lifecycle
        self.awaited = awaited

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lifecycle, name)

    def start_render(self) -> TransitionRecord:
        if self.awaited:
            return asyncio.run(self.lifecycle.astart_render())
        return self.lifecycle.start_render()

    def complete(self, output_path: Any) -> TransitionRecord:
        if self.awaited:
            return asyncio.run(self.lifecycle.acomplete(output_path))
        return self.lifecycle.complete(output_path)

    def fail(self, error: Any = None, *, clear_output: bool = False) -> TransitionRecord:
        if self.awaited:
            return asyncio.run(self.lifecycle.afail(error, clear_output=clear_output))
        return self.lifecycle.fail(error, clear_output=clear_output)


class Via:
    """Binds lifecycles for one of the paths: "sync", "async, sync adapter", "async adapter"."""

    def __init__(self, path: str) -> None:
        self.path = path

    def bind(self, project: Any, adapter: Any = None, **options: Any) -> Any:
        if self.path == "async adapter":
            adapter = AsyncOver(MemoryAdapter() if adapter is None else adapter)
        lifecycle = ProjectLifecycle(project, adapter, **options)
        return Driven(lifecycle, awaited=self.path != "sync")


@pytest.fixture(params=["sync", "async, sync adapter", "async adapter"])
def via(request: pytest.FixtureRequest) -> Via:
    return Via(request.param)


def fire(lifecycle: ProjectLifecycle[Any], trigger: Trigger) -> TransitionRecord:
    if trigger is Trigger.START_RENDER:
        return lifecycle.start_render()
    if trigger is Trigger.COMPLETE:
        return lifecycle.complete("projects/1/final.mp4")
    return lifecycle.fail(RuntimeError("boom"))


def snapshot(project: object) -> dict[str, Any]:
    return copy.deepcopy(vars(project))


@pytest.mark.parametrize("trigger", list(Trigger), ids=str)
@pytest.mark.parametrize("status", list(Status), ids=str)
def test_every_status_and_trigger_pair(status: Status, trigger: Trigger, via: Via) -> None:
    """Each of the 12 pairs either takes its documented edge or is refused, changing nothing."""
    project = MemoryProject(status=status.value, output_path="projects/1/old.mp4")
    lifecycle = via.bind(project)
    expected = EDGES.get((status, trigger))
    if expected is None:
        before = snapshot(project)
        error = (
            RenderConflictError
            if (status, trigger) == (Status.PROCESSING, Trigger.START_RENDER)
            else InvalidTransitionError
        )
        with pytest.raises(error) as info:
            fire(lifecycle, trigger)
        assert type(info.value) is error
        assert info.value.status == status.value
        assert info.value.trigger == trigger.value
        assert snapshot(project) == before
    else:
        target, edge = expected
        record = fire(lifecycle, trigger)
        assert (record.source, record.target, record.edge, record.trigger) == (
            status,
            target,
            edge,
            trigger,
        )
        assert lifecycle.status is target
        assert project.status == target.value


def test_start_render_while_processing_is_a_409(via: Via) -> None:
    """A second render is refused with RenderConflictError, status_code 409, and a clear message."""
    project = MemoryProject(id=42, status="PROCESSING")  # type: ignore[arg-type]
    with pytest.raises(RenderConflictError) as info:
        via.bind(project).start_render()
    error = info.value
    assert error.status_code == 409
    assert isinstance(error, InvalidTransitionError)
    assert error.project_key == 42
    assert error.allowed == ("COMPLETED", "DRAFT", "FAILED")
    assert str(error).startswith(
        "Project 42 is already PROCESSING; a render can start from COMPLETED, DRAFT or FAILED."
    )


def test_invalid_transition_message_names_status_and_allowed_source(via: Via) -> None:
    """complete() from DRAFT names the status, the trigger and where it would apply."""
    project = MemoryProject(id=7)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransitionError) as info:
        via.bind(project).complete("projects/7/final.mp4")
    assert not isinstance(info.value, RenderConflictError)
    assert "Project 7 is DRAFT; complete applies only from PROCESSING" in str(info.value)
    assert info.value.allowed == ("PROCESSING",)


def test_full_cycle_with_rerender_and_retry(via: Via) -> None:
    """render, complete, re-render, fail, retry, complete: the records tell each edge."""
    project = MemoryProject()
    lifecycle = via.bind(project)
    edges = [
        lifecycle.start_render().edge,
        lifecycle.complete("projects/p/final.mp4").edge,
        lifecycle.start_render().edge,
        lifecycle.fail("encoder crashed").edge,
        lifecycle.start_render().edge,
        lifecycle.complete("projects/p/final.mp4").edge,
    ]
    assert edges == [
        Edge.RENDER,
        Edge.COMPLETE,
        Edge.RERENDER,
        Edge.FAIL,
        Edge.RETRY,
        Edge.COMPLETE,
    ]
    assert project.status == "COMPLETED"
    assert project.output_path == "projects/p/final.mp4"


def test_complete_sets_status_and_output_path_together(via: Via) -> None:
    """complete() writes status and output_path and reports both as changed."""
    project = MemoryProject(status="PROCESSING")
    record = via.bind(project).complete("projects/9/final.mp4")
    assert (project.status, project.output_path) == ("COMPLETED", "projects/9/final.mp4")
    assert dict(record.changes) == {"status": "COMPLETED", "output_path": "projects/9/final.mp4"}


def test_complete_with_the_same_path_still_writes_it(via: Via) -> None:
    """The path is complete()'s payload: written even if the (maybe stale) object holds it."""
    project = MemoryProject(status="PROCESSING", output_path="projects/9/final.mp4")
    record = via.bind(project).complete(PurePosixPath("projects/9/final.mp4"))
    assert dict(record.changes) == {"status": "COMPLETED", "output_path": "projects/9/final.mp4"}


def test_start_render_changes_only_the_status(via: Via) -> None:
    """start_render() writes the status alone; the previous video stays referenced."""
    project = MemoryProject(status="COMPLETED", output_path="projects/1/final.mp4")
    record = via.bind(project).start_render()
    assert dict(record.changes) == {"status": "PROCESSING"}
    assert project.output_path == "projects/1/final.mp4"


def test_fail_keeps_the_previous_output_by_default(via: Via) -> None:
    """fail() leaves output_path alone, so the last good video stays reachable."""
    project = MemoryProject(status="PROCESSING", output_path="projects/1/final.mp4")
    record = via.bind(project).fail(ValueError("bad frame"))
    assert project.output_path == "projects/1/final.mp4"
    assert dict(record.changes) == {"status": "FAILED"}
    assert record.error == "ValueError: bad frame"


def test_fail_clear_output_uses_the_adapters_empty_value(via: Via) -> None:
    """fail(clear_output=True) sets output_path to the adapter's "no video" value."""
    project = MemoryProject(status="PROCESSING", output_path="projects/1/final.mp4")
    record = via.bind(project).fail(clear_output=True)
    assert project.output_path is None
    assert dict(record.changes) == {"status": "FAILED", "output_path": None}
    assert record.error is None


def test_fail_clear_output_with_a_non_nullable_field_stores_empty_string(via: Via) -> None:
    """An adapter whose field is not nullable gets "" for "no video"."""

    class NotNullAdapter(MemoryAdapter):
        def empty_output(self, project: object, field: str) -> str | None:
            return ""

    project = MemoryProject(status="PROCESSING", output_path="projects/1/final.mp4")
    via.bind(project, NotNullAdapter()).fail(clear_output=True)
    assert project.output_path == ""


def test_fail_clear_output_writes_the_empty_value_even_if_the_object_has_none(via: Via) -> None:
    """The object may be stale: clearing always writes "no video" to the store."""
    project = MemoryProject(status="PROCESSING", output_path=None)
    record = via.bind(project).fail(clear_output=True)
    assert dict(record.changes) == {"status": "FAILED", "output_path": None}


def test_fail_describes_an_exception_without_message(via: Via) -> None:
    """An exception with no text is recorded by its type name."""
    project = MemoryProject(status="PROCESSING")
    assert via.bind(project).fail(KeyboardInterrupt()).error == "KeyboardInterrupt"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("/var/media/final.mp4", "absolute"),
        ("projects/../../etc/passwd", "'..'"),
        ("..", "'..'"),
        ("projects\\1\\final.mp4", "backslash"),
        ("https://cdn.example.com/final.mp4", "scheme"),
        ("file:final.mp4", "scheme"),
        ("C:/media/final.mp4", "scheme"),
        ("projects/1/final\x00.mp4", "NUL"),
        ("projects/1/\nfinal.mp4", "control"),
        ("projects/1/final\x85.mp4", "U+0085"),
        ("projects/1/\x9bfinal.mp4", "U+009B"),
        ("projects/1/fin\u202eal.mp4", "RIGHT-TO-LEFT OVERRIDE"),
        ("projects/1/final\u200b.mp4", "ZERO WIDTH SPACE"),
        ("projects/1/final\ufeff.mp4", "ZERO WIDTH NO-BREAK SPACE"),
        ("projects/\u2028/final.mp4", "LINE SEPARATOR"),
        ("projects/\ue000/final.mp4", "U+E000"),
        ("projects/\U000e0001/final.mp4", "LANGUAGE TAG"),
        ("projects//final.mp4", "normalised"),
        ("./projects/final.mp4", "normalised"),
        ("projects/1/", "normalised"),
        (None, "not a str"),
        (b"projects/1/final.mp4", "not a str"),
    ],
)
def test_complete_refuses_paths_that_are_not_url_relative(path: Any, reason: str, via: Via) -> None:
    """A bad output path raises InvalidOutputPathError naming why, and changes nothing."""
    project = MemoryProject(status="PROCESSING", output_path="projects/1/final.mp4")
    before = snapshot(project)
    with pytest.raises(InvalidOutputPathError) as info:
        via.bind(project).complete(path)
    assert reason in info.value.reason
    assert "relative POSIX path" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert snapshot(project) == before


@pytest.mark.parametrize("value", ["draft", "ARCHIVED", None, "", 3, ["DRAFT"]])
@pytest.mark.parametrize("trigger", list(Trigger), ids=str)
def test_unknown_status_is_refused_and_nothing_changes(
    value: Any, trigger: Trigger, via: Via
) -> None:
    """A stored value outside the four raises UnknownStatusError naming it and the allowed ones."""
    project = MemoryProject(status=value, output_path="projects/1/final.mp4")
    before = snapshot(project)
    lifecycle = via.bind(project)
    with pytest.raises(UnknownStatusError) as info:
        fire(lifecycle, trigger)
    assert info.value.value == value
    assert info.value.allowed == ("DRAFT", "PROCESSING", "COMPLETED", "FAILED")
    assert repr(value) in str(info.value)
    assert snapshot(project) == before


def test_status_property_raises_on_unknown_value() -> None:
    """Reading .status of a corrupted row raises instead of coercing."""
    lifecycle = ProjectLifecycle(MemoryProject(status="ARCHIVED"))
    with pytest.raises(UnknownStatusError):
        _ = lifecycle.status
    with pytest.raises(UnknownStatusError):
        _ = lifecycle.can_start_render


@pytest.mark.parametrize(
    ("status", "expected"),
    [("DRAFT", True), ("COMPLETED", True), ("FAILED", True), ("PROCESSING", False)],
)
def test_can_start_render(status: str, expected: bool) -> None:
    """The seed's membership check, as a function and as a property."""
    assert can_start_render(status) is expected
    assert can_start_render(Status(status)) is expected
    assert ProjectLifecycle(MemoryProject(status=status)).can_start_render is expected


@pytest.mark.parametrize("value", ["draft", "ARCHIVED", None, 1, ["DRAFT"]])
def test_can_start_render_refuses_unknown_values(value: object) -> None:
    """can_start_render never coerces: an unknown value is an error."""
    with pytest.raises(UnknownStatusError, match="not a known status"):
        can_start_render(value)


@dataclasses.dataclass
class LegacyProject:
    pk: int
    state: int = 0
    video: str = ""
    title: str = "legacy"


LEGACY_VALUES = {Status.DRAFT: 0, Status.PROCESSING: 1, Status.COMPLETED: 2, Status.FAILED: 3}


def test_mapped_fields_and_literals(via: Via) -> None:
    """Other field names and literals work through status_field, output_field and values."""
    project = LegacyProject(pk=5)
    lifecycle = via.bind(project, status_field="state", output_field="video", values=LEGACY_VALUES)
    assert lifecycle.status is Status.DRAFT
    record = lifecycle.start_render()
    assert project.state == 1
    assert dict(record.changes) == {"state": 1}
    lifecycle.complete("videos/5.mp4")
    assert (project.state, project.video) == (2, "videos/5.mp4")
    lifecycle.start_render()
    with pytest.raises(RenderConflictError, match="Project 5 is already PROCESSING"):
        lifecycle.start_render()


def test_mapped_literals_refuse_the_canonical_spelling(via: Via) -> None:
    """With a map, the default literal is unknown: no silent coercion."""
    project = LegacyProject(pk=5)
    project.state = "DRAFT"  # type: ignore[assignment]
    lifecycle = via.bind(project, status_field="state", output_field="video", values=LEGACY_VALUES)
    with pytest.raises(UnknownStatusError) as info:
        lifecycle.start_render()
    assert info.value.allowed == (0, 1, 2, 3)
    assert info.value.field == "state"


@pytest.mark.parametrize("stored", [True, False, 1.0, 0.0, 2.0, "1", None])
@pytest.mark.parametrize("trigger", list(Trigger), ids=str)
def test_mapped_integers_match_only_integers(stored: object, trigger: Trigger) -> None:
    """True == 1 == 1.0 in Python, but only an int reads as an integer literal."""
    project = LegacyProject(pk=5)
    project.state = stored  # type: ignore[assignment]
    lifecycle = ProjectLifecycle(
        project, status_field="state", output_field="video", values=LEGACY_VALUES
    )
    with pytest.raises(UnknownStatusError) as info:
        _ = lifecycle.status
    assert info.value.value is stored
    calls = {
        Trigger.START_RENDER: lifecycle.start_render,
        Trigger.COMPLETE: lambda: lifecycle.complete("videos/5.mp4"),
        Trigger.FAIL: lifecycle.fail,
    }
    with pytest.raises(UnknownStatusError):
        calls[trigger]()
    assert project.state is stored
    assert project.video == ""


def test_literal_subclasses_still_match() -> None:
    """A str or int subclass (a Django TextChoices or IntegerChoices member) is its literal."""

    class Choice(int):
        pass

    project = LegacyProject(pk=5, state=Choice(0))
    lifecycle = ProjectLifecycle(
        project, status_field="state", output_field="video", values=LEGACY_VALUES
    )
    assert lifecycle.status is Status.DRAFT
    assert ProjectLifecycle(MemoryProject(status=Status.FAILED)).status is Status.FAILED


def test_partial_map_keeps_the_other_literals(via: Via) -> None:
    """Statuses left out of values store their own name."""
    project = MemoryProject(status="new")
    via.bind(project, values={Status.DRAFT: "new"}).start_render()
    assert project.status == "PROCESSING"


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        (
            {Status.DRAFT: "X", Status.FAILED: "X"},
            ValueError,
            "stores DRAFT and FAILED as the same literal 'X'.*give each status its own literal",
        ),
        (
            {Status.DRAFT: "FAILED"},
            ValueError,
            "stores DRAFT and FAILED as the same literal 'FAILED'.*status left out of values",
        ),
        ({"ARCHIVED": "A"}, ValueError, "not a Status"),
        ({Status.DRAFT: {"unhashable": 1}}, TypeError, r"values\[DRAFT\] = .* not hashable"),
        ({Status.DRAFT: ["new", {}]}, TypeError, r"values\[DRAFT\]\[1\] = \{\} is not hashable"),
        ({Status.DRAFT: [["nested"]]}, TypeError, r"values\[DRAFT\]\[0\] .* is a collection"),
        ({Status.PROCESSING: []}, ValueError, "empty list.*the first being the one written"),
        ({Status.PROCESSING: ("Q", "P", "Q")}, ValueError, "lists 'Q' twice"),
        (
            {Status.PROCESSING: ["QUEUED", "PROCESS"], Status.FAILED: ["ERROR", "QUEUED"]},
            ValueError,
            "stores PROCESSING and FAILED as the same literal 'QUEUED'",
        ),
        (
            {Status.DRAFT: [0, 1], Status.COMPLETED: True},
            ValueError,
            "stores DRAFT and COMPLETED as the same literal True",
        ),
        (
            {Status.DRAFT: None},
            TypeError,
            r"values\[DRAFT\] is None.*SQL's IN never matches NULL.*default such as 'DRAFT'",
        ),
        (
            {Status.PROCESSING: ["QUEUED", None]},
            TypeError,
            r"values\[PROCESSING\]\[1\] is None",
        ),
        (
            {Status.DRAFT: 10, Status.PROCESSING: 20},
            TypeError,
            "stores DRAFT as 10 \\(int\\) but COMPLETED as 'COMPLETED' \\(str\\).*one type",
        ),
        (
            {Status.DRAFT: "new", Status.PROCESSING: ["busy", 2]},
            TypeError,
            "stores DRAFT as 'new' \\(str\\) but PROCESSING as 2 \\(int\\)",
        ),
        (
            {Status.DRAFT: 0, Status.PROCESSING: 2, Status.COMPLETED: 3, Status.FAILED: True},
            TypeError,
            "but FAILED as True \\(bool\\)",
        ),
    ],
)
def test_bad_value_maps_are_refused(values: Any, error: type[Exception], message: str) -> None:
    """A map that is not one-to-one, or names no Status, is an error saying what to change."""
    with pytest.raises(error, match=message):
        ProjectLifecycle(MemoryProject(), values=values)


def test_five_hundred_literals_per_status_are_accepted_quickly() -> None:
    """The most literals a map may have (500 per status) are checked in well under a second."""
    values = {s: [f"{s.value}{i}" for i in range(500)] for s in Status}
    started = time.perf_counter()
    lifecycle = ProjectLifecycle(MemoryProject(status="PROCESSING499"), values=values)
    assert lifecycle.status is Status.PROCESSING
    assert time.perf_counter() - started < 1


def test_more_literals_than_a_database_takes_as_parameters_are_refused() -> None:
    """70 000 literals: refused when the lifecycle is built, not by PostgreSQL at the end.

    PostgreSQL takes at most 65 535 parameters: the start committed, then the completion's
    UPDATE failed after the video was made, and the project stayed PROCESSING.
    """
    project = MemoryProject()
    many = [f"Q{i}" for i in range(70_000)]
    with pytest.raises(ValueError, match=r"values\[PROCESSING\] lists 70000 literals; at most 500"):
        ProjectLifecycle(project, values={Status.PROCESSING: many})
    assert project.status == "DRAFT"


def test_text_choices_and_plain_strings_are_one_kind() -> None:
    """A str subclass (a Django TextChoices member) mixes with plain strings."""

    class Choice(str):  # noqa: SLOT000 - a TextChoices member has a __dict__ too
        pass

    values = {Status.DRAFT: Choice("new"), Status.PROCESSING: ["busy", Choice("queued")]}
    project = MemoryProject(status="queued")
    assert ProjectLifecycle(project, values=values).status is Status.PROCESSING


def test_several_literals_of_one_status(via: Via) -> None:
    """Each listed literal reads as its status; a transition writes the first."""
    values = {Status.PROCESSING: ["QUEUED", "PROCESS"], Status.COMPLETED: ("DONE",)}
    for stored in ("QUEUED", "PROCESS"):
        project = MemoryProject(status=stored)
        lifecycle = via.bind(project, values=values)
        assert lifecycle.status is Status.PROCESSING
        with pytest.raises(RenderConflictError):
            lifecycle.start_render()
        assert project.status == stored
        lifecycle.complete("projects/1/final.mp4")
        assert project.status == "DONE"
    project = MemoryProject(status="DONE")
    via.bind(project, values=values).start_render()
    assert project.status == "QUEUED"


def test_an_unknown_literal_lists_every_literal_and_how_to_map_several() -> None:
    """The error for a stored literal outside the map lists all literals and the list form."""
    values = {Status.PROCESSING: ["QUEUED", "PROCESS"]}
    lifecycle = ProjectLifecycle(MemoryProject(status="ARCHIVED"), values=values)
    with pytest.raises(UnknownStatusError) as raised:
        _ = lifecycle.status
    assert raised.value.allowed == ("DRAFT", "QUEUED", "PROCESS", "COMPLETED", "FAILED")
    assert "values={Status.PROCESSING: ['QUEUED', 'PROCESS']}" in str(raised.value)


def test_a_bool_is_not_the_number_it_equals_in_any_position() -> None:
    """True == 1, but a stored True reads as no status mapped to [0, 1]."""
    values = {Status.DRAFT: [0, 1], Status.PROCESSING: 2, Status.COMPLETED: 3, Status.FAILED: 4}
    lifecycle = ProjectLifecycle(MemoryProject(status=True), values=values)
    with pytest.raises(UnknownStatusError):
        lifecycle.start_render()


def test_none_is_refused_as_a_missing_project() -> None:
    """ProjectLifecycle(None) says the project is missing, not that a field name is wrong."""
    with pytest.raises(TypeError, match="got None instead of a project") as raised:
        ProjectLifecycle(None)
    assert "status_field" not in str(raised.value)
    assert "ProjectNotFoundError" in str(raised.value)


def test_missing_fields_are_named() -> None:
    """An object without the status or output field gets an error naming the option to set."""

    class Bare:
        status = "DRAFT"

    with pytest.raises(AttributeError, match="output_field="):
        ProjectLifecycle(Bare())
    with pytest.raises(AttributeError, match="status_field="):
        ProjectLifecycle(MemoryProject(), status_field="state")
    with pytest.raises(ValueError, match="must differ"):
        ProjectLifecycle(MemoryProject(), output_field="status")


def test_non_adapter_is_refused() -> None:
    """Passing something that is not an adapter names the missing methods."""
    with pytest.raises(TypeError, match="apply, refresh_status, project_key, empty_output"):
        ProjectLifecycle(MemoryProject(), object())  # type: ignore[arg-type]


def test_the_users_class_is_not_modified(via: Via) -> None:
    """Wrapping an object adds no attribute or method to it or its class."""
    project = MemoryProject()
    before_class = set(vars(MemoryProject))
    before = set(vars(project))
    via.bind(project).start_render()
    assert set(vars(MemoryProject)) == before_class
    assert set(vars(project)) == before
    assert not hasattr(project, "start_render")


def test_observers_receive_the_record_after_it_is_persisted(via: Via) -> None:
    """Observers see each transition once, after the object already holds the new status."""
    project = MemoryProject()
    seen: list[tuple[Edge, str]] = []
    recorder = RecordingObserver()
    lifecycle = via.bind(project, observers=[lambda r: seen.append((r.edge, project.status))])
    lifecycle.add_observer(recorder)
    lifecycle.start_render()
    lifecycle.complete("projects/x/final.mp4")
    assert seen == [(Edge.RENDER, "PROCESSING"), (Edge.COMPLETE, "COMPLETED")]
    assert [r.target for r in recorder.records] == [Status.PROCESSING, Status.COMPLETED]


def test_observers_are_not_told_about_refusals(via: Via) -> None:
    """A refused transition notifies nobody."""
    recorder = RecordingObserver()
    lifecycle = via.bind(MemoryProject(status="PROCESSING"), observers=[recorder])
    with pytest.raises(RenderConflictError):
        lifecycle.start_render()
    assert recorder.records == []


def test_a_failing_observer_is_logged_and_does_not_undo(
    caplog: pytest.LogCaptureFixture, via: Via
) -> None:
    """An observer that raises is logged; the transition stands and later observers still run."""

    def broken(record: TransitionRecord) -> None:
        raise RuntimeError("observer bug")

    recorder = RecordingObserver()
    project = MemoryProject()
    lifecycle = via.bind(project, observers=[broken, recorder])
    with caplog.at_level(logging.ERROR, logger="renderstate"):
        record = lifecycle.start_render()
    assert project.status == "PROCESSING"
    assert recorder.records == [record]
    assert "observer" in caplog.text
    assert "observer bug" in caplog.text


def test_records_are_immutable(via: Via) -> None:
    """A transition record cannot be altered after the fact."""
    record = via.bind(MemoryProject()).start_render()
    with pytest.raises(AttributeError):
        record.target = Status.FAILED  # type: ignore[misc]
    with pytest.raises(TypeError):
        record.changes["status"] = "FAILED"  # type: ignore[index]


def test_a_refusing_attribute_rolls_back_the_memory_write(via: Via) -> None:
    """If setting a field fails midway, the fields already set are restored."""

    class Guarded(MemoryProject):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "output_path" and value == "projects/x/bad.mp4":
                raise ValueError("read-only")
            super().__setattr__(name, value)

    project = Guarded(status="PROCESSING")
    before = snapshot(project)
    with pytest.raises(ValueError, match="read-only"):
        via.bind(project).complete("projects/x/bad.mp4")
    assert snapshot(project) == before


class StaleAdapter(MemoryAdapter):
    """Simulates a store whose row moved on since the object was loaded."""

    def __init__(self, stored: str) -> None:
        super().__init__()
        self.stored = stored
        self.changes: list[Change] = []
        self.refreshes = 0

    def apply(self, project: object, change: Change) -> bool:
        self.changes.append(change)
        if self.stored not in change.expected:
            setattr(project, change.status_field, self.stored)
            return False
        self.stored = change.values[change.status_field]
        return super().apply(project, change)

    def refresh_status(self, project: object, status_field: str) -> None:
        self.refreshes += 1
        setattr(project, status_field, self.stored)


def test_a_stale_object_is_refreshed_and_decided_again(via: Via) -> None:
    """Object says DRAFT, store says COMPLETED: the start is retried as a re-render."""
    project = MemoryProject(status="DRAFT")
    adapter = StaleAdapter("COMPLETED")
    record = via.bind(project, adapter).start_render()
    assert record.edge is Edge.RERENDER
    assert [c.expected for c in adapter.changes] == [{"DRAFT"}, {"COMPLETED"}]


def test_a_stale_object_sees_the_conflict(via: Via) -> None:
    """Object says DRAFT, store says PROCESSING: a 409, and the object now tells the truth."""
    project = MemoryProject(status="DRAFT")
    with pytest.raises(RenderConflictError):
        via.bind(project, StaleAdapter("PROCESSING")).start_render()
    assert project.status == "PROCESSING"


def test_a_stale_refusal_asks_the_store_first(via: Via) -> None:
    """Object says DRAFT, store says PROCESSING: complete() refreshes, then succeeds."""
    project = MemoryProject(status="DRAFT")
    adapter = StaleAdapter("PROCESSING")
    record = via.bind(project, adapter).complete("projects/1/final.mp4")
    assert (record.source, record.target) == (Status.PROCESSING, Status.COMPLETED)
    assert adapter.refreshes == 1
    assert adapter.stored == "COMPLETED"


def test_a_stale_processing_object_can_start_when_the_store_says_completed(via: Via) -> None:
    """Object says PROCESSING, store says COMPLETED: no false 409, the start is a re-render."""
    project = MemoryProject(status="PROCESSING")
    adapter = StaleAdapter("COMPLETED")
    assert via.bind(project, adapter).start_render().edge is Edge.RERENDER


def test_a_confirmed_refusal_reads_once_and_writes_nothing(via: Via) -> None:
    """Object and store agree there is no edge: one refresh, no write, the error."""
    project = MemoryProject(status="PROCESSING")
    adapter = StaleAdapter("PROCESSING")
    with pytest.raises(RenderConflictError):
        via.bind(project, adapter).start_render()
    assert (adapter.refreshes, adapter.changes) == (1, [])


def test_a_late_complete_after_another_worker_failed_is_refused(via: Via) -> None:
    """Object says PROCESSING, store says FAILED: complete() is an InvalidTransitionError."""
    project = MemoryProject(status="PROCESSING")
    with pytest.raises(InvalidTransitionError, match="is FAILED; complete applies only"):
        via.bind(project, StaleAdapter("FAILED")).complete("projects/1/final.mp4")


def test_adapter_errors_propagate_and_nothing_is_notified(via: Via) -> None:
    """ProjectNotFoundError from the adapter reaches the caller; observers hear nothing."""

    class Gone(MemoryAdapter):
        def apply(self, project: object, change: Change) -> bool:
            raise ProjectNotFoundError(project_key=self.project_key(project))

    recorder = RecordingObserver()
    with pytest.raises(ProjectNotFoundError, match="does not exist") as info:
        via.bind(MemoryProject(id=3), Gone(), observers=[recorder]).start_render()  # type: ignore[arg-type]
    assert info.value.status_code == 404
    assert recorder.records == []


def test_unsaved_project_message() -> None:
    """A project without a key is told to be saved first."""
    assert "save it" in str(ProjectNotFoundError())


@pytest.mark.parametrize(
    "error",
    [
        RenderConflictError(
            trigger="start_render", status="PROCESSING", allowed=["DRAFT"], project_key=1
        ),
        InvalidTransitionError(trigger="complete", status="DRAFT", allowed=["PROCESSING"]),
        UnknownStatusError(value="x", allowed=["DRAFT"], field="state", project_key="a"),
        InvalidOutputPathError(path="/x", reason="it is absolute"),
        ProjectNotFoundError(project_key=9, detail="deleted"),
        TimelineError(field="duration", problem="must be positive", scene=2),
        RenderOutputError(project_key=4, reason="the file is empty"),
        RenderInterruptedError(project_key=None, reason="the runner shut down"),
        AttemptOwnedError(project_key=3, attempt_id=7, worker="host:12", retry_after=4.5),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_pickle_with_their_data(error: RenderStateError) -> None:
    """Errors survive pickling (Celery, multiprocessing) with type, data and message."""
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert vars(clone) == vars(error)


def test_repr_shows_key_and_stored_status() -> None:
    """The lifecycle's repr helps in logs."""
    text = repr(ProjectLifecycle(MemoryProject(id=1, status="FAILED")))  # type: ignore[arg-type]
    assert text == "<ProjectLifecycle project=1 status='FAILED'>"


def test_lifecycles_are_weakly_referenceable() -> None:
    """A cache or registry can hold lifecycles weakly (WeakValueDictionary, weakref.finalize)."""
    lifecycle = ProjectLifecycle(MemoryProject())
    ref = weakref.ref(lifecycle)
    assert ref() is lifecycle
    del lifecycle
    gc.collect()
    assert ref() is None


def test_an_observer_added_later_is_told(via: Via) -> None:
    """A lifecycle bound without observers tells one added afterwards."""
    recorder = RecordingObserver()
    lifecycle = via.bind(MemoryProject())
    lifecycle.add_observer(recorder)
    record = lifecycle.start_render()
    assert recorder.records == [record]


def test_the_changes_handed_to_the_adapter_are_valid_changes(via: Via) -> None:
    """Every Change the lifecycle builds equals one built through Change's own validation."""
    adapter = StaleAdapter("DRAFT")
    lifecycle = via.bind(MemoryProject(), adapter)
    lifecycle.start_render()
    lifecycle.complete("projects/1/final.mp4")
    lifecycle.start_render()
    lifecycle.fail("boom", clear_output=True)
    assert adapter.changes == [
        Change("status", frozenset({"DRAFT"}), {"status": "PROCESSING"}),
        Change(
            "status",
            frozenset({"PROCESSING"}),
            {"status": "COMPLETED", "output_path": "projects/1/final.mp4"},
        ),
        Change("status", frozenset({"COMPLETED"}), {"status": "PROCESSING"}),
        Change("status", frozenset({"PROCESSING"}), {"status": "FAILED", "output_path": None}),
    ]
    for change in adapter.changes:
        assert isinstance(change.values, MappingProxyType)
        assert type(change.expected) is frozenset


@given(st.text(alphabet="aC1_-.:/\\ \x00\n\u00e9", max_size=12))
def test_accepted_output_paths_are_url_relative(path: str) -> None:
    """Whatever validate_output_path accepts (fast path or rules) is a normalised relative path."""
    try:
        accepted = validate_output_path(path)
    except InvalidOutputPathError:
        return
    segments = accepted.split("/")
    assert accepted == path
    assert accepted.strip()
    assert not accepted.startswith("/")
    assert "\\" not in accepted
    assert not any(c < " " or c == "\x7f" for c in accepted)
    assert not any(s in {"", ".", ".."} for s in segments)
    assert re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", accepted) is None  # no URL scheme


@pytest.mark.parametrize(
    "options",
    [{}, {"status_field": "state", "output_field": "video", "values": LEGACY_VALUES}],
    ids=["default", "mapped"],
)
def test_every_precomputed_plan_is_an_edge_of_the_one_machine(options: dict[str, Any]) -> None:
    """The lifecycle's plans are derived from the shared Machine: same edges, nothing more."""
    project = LegacyProject(pk=1) if options else MemoryProject()
    layout = ProjectLifecycle(project, **options)._layout
    to_stored = layout.literals.to_stored
    planned = {
        (trigger.value, plan.source.value, plan.row.target.value)
        for trigger, plans in layout.plans.items()
        for literal, plan in plans.items()
        if to_stored[plan.source] == literal
    }
    machine = {
        (name, source, transition.dest)
        for name, event in MACHINE.events.items()
        for source, transitions in event.transitions.items()
        for transition in transitions
    }
    assert planned == machine
    assert sum(len(plans) for plans in layout.plans.values()) == len(machine)


def test_a_field_refusing_every_write_surfaces_its_own_error(via: Via) -> None:
    """The write that failed is not retried as a rollback: its error reaches the caller."""

    class Frozen(MemoryProject):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "status" and "status" in vars(self):
                raise PermissionError(f"status is frozen, refused {value!r}")
            super().__setattr__(name, value)

    for project, call, refused in (
        (Frozen(status="PROCESSING"), lambda lc: lc.complete("projects/1/final.mp4"), "COMPLETED"),
        (Frozen(status="DRAFT"), lambda lc: lc.start_render(), "PROCESSING"),
    ):
        before = snapshot(project)
        with pytest.raises(PermissionError, match=f"refused '{refused}'"):
            call(via.bind(project))
        assert snapshot(project) == before


@pytest.mark.parametrize("adapter", [MemoryAdapter(), AsyncMemoryAdapter()], ids=type)
def test_a_keyless_plain_object_without_status_is_unknown_not_missing(adapter: Any) -> None:
    """In memory the object is the store: status None is an unknown value, not a missing row."""

    class Keyless:
        status = None
        output_path = None

    with pytest.raises(UnknownStatusError):
        _ = ProjectLifecycle(Keyless(), adapter).status
