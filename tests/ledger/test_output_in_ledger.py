"""A model with no column for the video's path: the ledger's completed attempts keep it.

``output_field=None`` writes the status alone; the runner, the status body and a second
process read the current video from the newest completed attempt, on plain objects and on
SQLAlchemy over SQLite, PostgreSQL and MariaDB. Without a ledger it is refused when the
runner is built."""

from __future__ import annotations

import dataclasses
import re
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from adapters.conftest import BACKEND_PARAMS, db_targets, target_for
from renderstate import ProjectLifecycle, RenderRunner, Status
from renderstate.adapters.sqlalchemy import SQLAlchemyAdapter
from renderstate.ledger import Ledger
from renderstate.ledger.memory import MemoryAttemptStore
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore, attempt_table
from renderstate.runner.progress import Phase
from renderstate.testing import FakeRenderer, MemoryAdapter
from renderstate.typing import ProgressSink
from renderstate.web import status_body

__all__ = ["db_targets"]


@dataclasses.dataclass
class Video:
    """An app's model without an output column."""

    id: int
    status: str = "DRAFT"
    title: str = "clip"


def test_a_runner_without_output_column_nor_ledger_is_refused(tmp_path: Path) -> None:
    """Nothing would keep the path: a ValueError naming both fixes, when the runner is built."""
    with pytest.raises(ValueError, match=r"output_field=None.*ledger=Ledger\(store\)"):
        RenderRunner(MemoryAdapter(), FakeRenderer(), media_root=tmp_path, output_field=None)


def test_a_model_without_the_attribute_is_told_about_output_field_none() -> None:
    """The lifecycle's AttributeError names output_field=None as the way out."""
    with pytest.raises(AttributeError, match="output_field=None"):
        ProjectLifecycle(Video(1), MemoryAdapter())
    lifecycle = ProjectLifecycle(Video(1), MemoryAdapter(), output_field=None)
    assert lifecycle.start_render().changes == {"status": "PROCESSING"}
    assert lifecycle.complete("projects/1/final.mp4").changes == {"status": "COMPLETED"}
    assert not hasattr(lifecycle.project, "output_path")


def test_plain_objects_read_the_video_from_the_ledger(tmp_path: Path) -> None:
    """Rendered twice, the second failing: the video is the first's, from the ledger, in
    the runner and the status body; the object never gains an output attribute."""
    video = Video(7)
    ledger = Ledger(MemoryAttemptStore())
    with RenderRunner(
        MemoryAdapter(), FakeRenderer(), media_root=tmp_path, ledger=ledger, output_field=None
    ) as runner:
        assert runner.video(video) is None
        assert status_body(video, runner, output_field=None)["output_path"] is None
        assert runner.submit(video).wait(30) is Status.COMPLETED
        assert runner.video(video) == "projects/7/final.mp4"
        runner._renderer = FakeRenderer(fail_at_frame=2)
        assert runner.submit(video).wait(30) is Status.FAILED
        assert runner.video(video) == "projects/7/final.mp4", "the previous video stays"
        body = status_body(video, runner, output_field=None)
        assert body["status"] == "FAILED"
        assert body["output_path"] == "projects/7/final.mp4"
    assert not hasattr(video, "output_path")
    assert (tmp_path / "projects" / "7" / "final.mp4").exists()


def test_the_progress_names_where_its_attempt_publishes(tmp_path: Path) -> None:
    """A client polling the progress of a model with no output column learns the video's
    path from it: from the job in the process rendering it, queued to done, and from the
    ledger in another (a second runner on the same store)."""
    video = Video(9)
    store = MemoryAttemptStore()
    released = threading.Event()

    def held(project: Video, target: Path, progress: ProgressSink) -> None:
        released.wait(30)
        FakeRenderer()(project, target, progress)

    with RenderRunner(
        MemoryAdapter(), held, media_root=tmp_path, ledger=Ledger(store), output_field=None
    ) as runner:
        job = runner.submit(video)
        assert job.progress.output_path == "projects/9/final.mp4"
        released.set()
        assert job.wait(30) is Status.COMPLETED
        done = runner.progress(video)
        assert done is not None
        assert (done.phase, done.output_path) == (Phase.DONE, "projects/9/final.mp4")
    with RenderRunner(
        MemoryAdapter(),
        FakeRenderer(),
        media_root=tmp_path,
        ledger=Ledger(store),
        output_field=None,
    ) as elsewhere:
        read = elsewhere.progress(video)
        assert read is not None
        assert (read.phase, read.output_path) == (Phase.DONE, "projects/9/final.mp4")


def test_status_body_needs_a_source_that_knows_the_video() -> None:
    """A source without video() cannot answer output_field=None: a TypeError saying so."""

    class Source:
        def progress(self, project: object) -> None:
            return None

        def error(self, project: object) -> None:
            return None

    with pytest.raises(TypeError, match="has no video"):
        status_body(Video(1), Source(), output_field=None)  # type: ignore[arg-type]


class _Base(DeclarativeBase):
    pass


def clip_model(table: str) -> type[Any]:
    return type(
        f"Clip_{table}",
        (_Base,),
        {
            "__tablename__": table,
            "__annotations__": {"id": Mapped[int], "status": Mapped[str]},
            "id": mapped_column(primary_key=True),
            "status": mapped_column(String(16), default="DRAFT"),
        },
    )


@pytest.fixture(params=BACKEND_PARAMS)
def url(request: pytest.FixtureRequest, db_targets: dict[str, object]) -> str:
    return target_for(db_targets, request.param).sqlalchemy_url()  # type: ignore[arg-type]


@pytest.fixture
def clips(url: str) -> Iterator[tuple[Any, sessionmaker[Any], Any]]:
    name = f"no_output_{uuid.uuid4().hex[:8]}"
    model = clip_model(name)
    engine = create_engine(url)
    attempts = attempt_table(_Base.metadata, f"{name}_attempt")
    model.__table__.create(engine)
    attempts.create(engine)
    try:
        yield model, sessionmaker(engine, expire_on_commit=False), attempts
    finally:
        attempts.drop(engine)
        model.__table__.drop(engine)
        _Base.metadata.remove(attempts)
        _Base.metadata.remove(model.__table__)
        engine.dispose()


def project_sets(statement: str, table: str) -> list[str]:
    """The columns of ``table`` that ``statement``'s UPDATE of it sets (a multi-table
    UPDATE names each with its table; the attempt's own columns are left out)."""
    found = re.search(rf"UPDATE `?{table}`?(?:, \S+)? SET (.*?) WHERE", statement, re.DOTALL)
    assert found is not None, statement
    names = [n.replace("`", "").replace('"', "") for n in re.findall(r"([\w`.\"]+)=", found[1])]
    return [n.split(".")[-1] for n in names if "." not in n or n.split(".")[0] == table]


def test_sqlalchemy_the_video_is_read_from_the_ledger_in_any_process(
    tmp_path: Path, clips: tuple[Any, sessionmaker[Any], Any]
) -> None:
    """The UPDATEs write the status alone; another runner (another ledger object, as
    another process has) reads the video the first one rendered, and its status body
    shows it."""
    model, sessions, attempts = clips
    with sessions.begin() as session:
        session.add(model(id=1))
    statements: list[str] = []
    engine = sessions.kw["bind"]

    table = model.__tablename__

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The project's UPDATE, alone or with the ledger's write riding in it (inside a
        # WITH on PostgreSQL, a multi-table UPDATE on MariaDB).
        if re.search(rf"UPDATE `?{table}`?[ ,]", statement):
            statements.append(statement)

    def runner() -> RenderRunner[Any]:
        store = SQLAlchemyAttemptStore(sessions, table=attempts)
        return RenderRunner(
            SQLAlchemyAdapter(sessions),
            FakeRenderer(),
            media_root=tmp_path,
            ledger=Ledger(store),
            loader=store.loader(model),
            output_field=None,
        )

    with runner() as first, sessions() as session:
        clip = session.get(model, 1)
        assert first.submit(clip).wait(30) is Status.COMPLETED
    assert len(statements) == 2
    assert all("output_path" not in project_sets(s, table) for s in statements), statements
    with runner() as second, sessions() as session:
        clip = session.get(model, 1)
        assert clip.status == "COMPLETED"
        assert second.video(clip) == "projects/1/final.mp4"
        progress = second.progress(clip)
        assert progress is not None
        assert progress.output_path == "projects/1/final.mp4"
        body = status_body(clip, second, output_field=None)
        assert body["output_path"] == "projects/1/final.mp4"
    assert (tmp_path / "projects" / "1" / "final.mp4").exists()


def test_the_runner_page_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/runner.md's output_field=None example, run as written."""
    page = Path(__file__).resolve().parents[2] / "docs" / "runner.md"
    blocks = re.findall(
        r"^ *```python\n(.*?)^ *```", page.read_text("utf-8"), re.MULTILINE | re.DOTALL
    )
    (example,) = [b for b in blocks if "output_field=None" in b]
    monkeypatch.chdir(tmp_path)
    exec(compile(textwrap.dedent(example), str(page), "exec"), {})
    assert (tmp_path / "media" / "projects" / "7" / "final.mp4").exists()
