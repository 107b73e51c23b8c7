"""The public Protocols: what renderstate asks of the objects you plug into it.

- :class:`Adapter` persists a :class:`~renderstate.Change` (see "Write your own adapter").
- :class:`AsyncAdapter` is the same contract for async stores: ``apply`` and
  ``refresh_status`` are coroutines, awaited by ``ProjectLifecycle.astart_render()`` & co.
- :class:`Observer` is told about each transition after it has been persisted.
- :class:`Renderer` writes a project's video to a path, reporting to a :class:`ProgressSink`.
- :class:`Executor` runs the render runner's jobs (threads by default, a task queue);
  each job it is given is a :class:`Job`: a :class:`~renderstate.runner.JobSpec` to send
  as data and a ``run()`` to call in this process.
- :class:`AttemptStore` persists the attempt ledger's records (see "Running several
  processes"); :class:`ProjectLoader` loads a project by the key the ledger stores.
- :class:`ProgressSource` tells a status body how far a project's render got, and why it
  failed (the runner, or the attempt ledger).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from renderstate._attempts import Attempt, AttemptState, DatabaseTime
from renderstate._jobs import JobSpec
from renderstate._layout import StatusValues
from renderstate._progress import Progress
from renderstate._records import Change, Rendered, TransitionRecord

__all__ = [
    "Adapter",
    "AsyncAdapter",
    "AttemptStore",
    "Executor",
    "Job",
    "Observer",
    "ProgressSink",
    "ProgressSource",
    "ProjectLoader",
    "ProjectT",
    "ProjectT_contra",
    "Renderer",
    "StatusValues",
]

ProjectT = TypeVar("ProjectT")
"""The user's project type (an ORM row, a dataclass, any object)."""
ProjectT_contra = TypeVar("ProjectT_contra", contravariant=True)


class Adapter(Protocol[ProjectT_contra]):
    """Persists transitions for one kind of project object.

    An adapter never decides a transition: the domain hands it a :class:`Change` and it
    answers whether the change applied. Every method name is the same in every adapter.

    An adapter may also offer ``check_fields(project, names) -> Mapping[str, int | None]``:
    raise ``ValueError`` naming each of ``names`` that is no column it can write beside
    the status (the primary key, a relation, a typo), and return each column's maximum
    length in characters (``None``: unbounded), reading only the model's schema. The
    lifecycle asks it before a transition that writes the app's own columns (a
    completion's ``fields=``, ``error_field``); without it, each name is checked as an
    attribute of the project. The Django, SQLAlchemy, Peewee and memory adapters offer it.

    It may offer ``non_text_fields(project, names) -> Mapping[str, str]`` too: each of
    ``names`` whose column holds no text (an integer, a date, JSON), with its type's name,
    reading only the schema. The lifecycle then refuses such a column as ``error_field`` or
    ``task_id_field`` when it is built. The Django, SQLAlchemy and Peewee adapters offer it.
    """

    def apply(self, project: ProjectT_contra, change: Change) -> bool:
        """Write ``change.values`` if, and only if, the stored status is in ``change.expected``.

        The check and the write must be one atomic step in the store (a single conditional
        ``UPDATE`` for a database), so that concurrent callers cannot both succeed.

        On success, set the new values on ``project`` too and return ``True``. When the
        stored status is not expected, write nothing, set ``project``'s status attribute to
        the value the store holds, and return ``False``.

        Raises:
            ProjectNotFoundError: ``project`` is not stored (unsaved or deleted).
        """
        ...

    def refresh_status(self, project: ProjectT_contra, status_field: str) -> None:
        """Set ``project``'s status attribute to the value the store holds now.

        The domain calls it before refusing a trigger that has no edge from the status
        the object holds, because that object may be stale. It must read the current
        row even inside the caller's transaction (a locking read where the isolation
        level would otherwise show an old snapshot). It writes nothing.

        Raises:
            ProjectNotFoundError: ``project`` is not stored (unsaved or deleted).
        """
        ...

    def project_key(self, project: ProjectT_contra) -> object:
        """Return the project's primary key, or ``None`` if it has none yet."""
        ...

    def empty_output(self, project: ProjectT_contra, field: str) -> str | None:
        """Return what ``field`` holds when there is no video: ``None`` or ``""``."""
        ...


class AsyncAdapter(Protocol[ProjectT_contra]):
    """:class:`Adapter`'s contract for async stores (``AsyncSession``, Django's async ORM).

    ``apply`` and ``refresh_status`` are coroutines with exactly the duties of their
    :class:`Adapter` namesakes: one atomic conditional write, and a current read before a
    refusal. ``project_key`` and ``empty_output`` stay plain methods: they read the object
    or its schema and never touch the store. A lifecycle bound to an async adapter is
    driven with ``astart_render()``, ``acomplete()`` and ``afail()``.
    """

    async def apply(self, project: ProjectT_contra, change: Change) -> bool:
        """Write ``change.values`` if, and only if, the stored status is in ``change.expected``.

        Same contract as :meth:`Adapter.apply`, awaited.

        Raises:
            ProjectNotFoundError: ``project`` is not stored (unsaved or deleted).
        """
        ...

    async def refresh_status(self, project: ProjectT_contra, status_field: str) -> None:
        """Set ``project``'s status attribute to the value the store holds now.

        Same contract as :meth:`Adapter.refresh_status`, awaited.

        Raises:
            ProjectNotFoundError: ``project`` is not stored (unsaved or deleted).
        """
        ...

    def project_key(self, project: ProjectT_contra) -> object:
        """Return the project's primary key, or ``None`` if it has none yet."""
        ...

    def empty_output(self, project: ProjectT_contra, field: str) -> str | None:
        """Return what ``field`` holds when there is no video: ``None`` or ``""``."""
        ...


class Observer(Protocol):
    """A callback told about each transition after the adapter has persisted it."""

    def __call__(self, record: TransitionRecord, /) -> None:
        """React to ``record``; an exception is logged and does not undo the transition."""


class ProgressSink(Protocol):
    """Where a renderer reports how far it got; called from the rendering thread.

    ``phase`` names the renderer's step. ``"rendering"`` counts video frames
    (``done``/``total`` are frames; they drive ``Progress.fraction`` and the ETA); any
    other name is a step of the renderer's own in its own units (``"writing audio"``:
    audio chunks; ``"fetch assets"``, ``"tts"``, ``"compose"``), shown as
    ``Progress.step``. The runner's own phases (``queued``, ``finalizing``, ``done``,
    ``failed``), an empty name or one over 32 characters raise ``ValueError``. The call is
    cheap: the runner throttles what it publishes, so a renderer may report every frame.
    A cancelled render's next call raises :class:`~renderstate.RenderCancelledError`.
    """

    def __call__(self, phase: str, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` units of ``phase`` are finished."""


class Renderer(Protocol[ProjectT_contra]):
    """Writes a project's video to ``target``, or to a file of its own that it returns.

    ``target`` is a path ending in ``.mp4``.
    The render runner owns the file: ``target`` is a temporary name next to the final
    file, moved into place only after the renderer returns. A renderer that picks its own
    output path returns it instead (a ``str`` or :class:`~pathlib.Path`, anywhere on the
    same file system, or on another one, where it is copied): the runner checks it
    (a regular, non-empty file, not a link, not the final file itself), fsyncs it and
    publishes it the same way. Return ``None`` (or ``target``) after writing ``target``.
    Raise to fail the render. For a function ``render(project, on_progress) -> path``,
    see :func:`renderstate.runner.own_path`. To save columns of the app with the
    completion (a duration, metadata), return :class:`~renderstate.runner.Rendered`
    ``(path, fields)``: they are written in the completion's guarded ``UPDATE``.

    Scratch files (a soundtrack, an intermediate) go beside ``target`` and their names
    start with ``target``'s file name (``<target name>.soundtrack.wav``), or are named
    by :func:`renderstate.files.scratch_path` (short and plain, for a ``target`` whose
    name is long or carries characters another program's input cannot); remove them
    before returning. A render killed with its process cannot, so the runner removes
    every file so named after a failed render and in ``recover_interrupted()``. Scratch
    files kept elsewhere (the system temporary directory, the working directory, where
    moviepy puts its ``TEMP_MPY_`` files by default) would outlive such a kill.
    """

    def __call__(
        self, project: ProjectT_contra, target: Path, progress: ProgressSink
    ) -> str | os.PathLike[str] | Rendered | None:
        """Render ``project`` into ``target`` (or a file it returns), reporting to ``progress``."""


class Job(Protocol):
    """One render job as an executor receives it (a :class:`~renderstate.RenderJob`).

    An executor either calls :meth:`run` (in a worker thread of this process, or inline),
    or sends :attr:`spec` as data (``spec.to_dict()``) to a process whose runner calls
    ``RenderRunner.execute(JobSpec.from_dict(data))``. Calling the job itself is the same
    as :meth:`run`, so an executor written for plain callables keeps working.
    """

    @property
    def spec(self) -> JobSpec:
        """The job as data: project key, ledger scope and attempt id, output path."""
        ...

    def run(self) -> None:
        """Run the job in the calling thread, to its end; it handles its own errors."""
        ...

    def __call__(self) -> None:
        """The same as :meth:`run`."""
        ...


class Executor(Protocol):
    """Runs the render runner's jobs somewhere: worker threads, a task queue, inline.

    An executor that, for now, runs each job in the caller's thread (a task queue's
    eager mode) says so with a true ``runs_in_caller`` attribute: the runner then
    renders immediately, without a heartbeat thread (see ``RenderRunner(immediate=)``).
    One that, then, still wants :meth:`schedule` called (its eager mode runs the app's own
    task in the caller, and that task renders the job) says so with a true
    ``schedules_immediate``: ``CeleryExecutor(app, task=...)``.

    An executor that sends jobs to a task system whose ids it can choose may offer
    ``new_task_id() -> str | None``: the runner asks it before each start, records the id
    with the start (the attempt's ``task_id``, the app's ``task_id_field``) and sets it as
    the job's ``task_id``, which :meth:`schedule` then sends the task under. The Celery
    executor offers it.
    """

    def schedule(self, job: Job, /) -> None:
        """Arrange for ``job`` to run once, soon; return without waiting for it.

        Either call ``job.run()`` (a thread, inline) or send ``job.spec.to_dict()`` to a
        worker that calls ``RenderRunner.execute()``. Raise if it cannot be scheduled (a
        closed executor, a broker that is down): the runner then fails the project with
        that error, so the claim is never orphaned, and re-raises it to ``submit()``'s
        caller.
        """

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting work; with ``wait``, return once every scheduled job has run."""


ProjectT_co = TypeVar("ProjectT_co", covariant=True)


class ProjectLoader(Protocol[ProjectT_co]):
    """Loads one kind of project by the key text the attempt ledger stores.

    The ledger stores give you one for a model (``store.loader(Project)``); write your
    own as any callable with a ``scope`` attribute.
    """

    scope: str
    """The kind of project it loads: the same text :meth:`AttemptStore.scope` gives."""

    def __call__(self, key: str, /) -> ProjectT_co | None:
        """Return the project whose primary key is ``key`` (as text), or ``None``."""


class AttemptStore(Protocol):
    """Persists attempt records for :class:`renderstate.ledger.Ledger`; one per ORM.

    A store never decides: the ledger tells it what to write and under which condition.
    Every method name is the same in every store (memory, SQLAlchemy, Django, Peewee).

    A store may also offer ``insert_and_find_live(attempt) -> tuple[Attempt, bool]``:
    :meth:`insert`, answering in the same statement whether the attempt's project has
    another queued or rendering attempt (``INSERT ... RETURNING`` with a subquery). The
    ledger's start then reads the live attempts only when there are some. The SQLAlchemy,
    Django and Peewee stores offer it.

    And ``renew(rows, lease_expires_at) -> dict[int, Attempt]``: in one transaction, set
    ``lease_expires_at`` and each row's ``progress`` on every row whose fences hold (as
    :meth:`update`'s: live, ``owner``, ``worker``, ``uncancelled``), skipping rows another
    transaction holds locked, and return the rows it read under its lock, by id (a row
    skipped, or not there, is left out). :meth:`Ledger.renew
    <renderstate.ledger.Ledger.renew>` then renews a worker's leases in one transaction;
    without it, with one :meth:`update` each. Every store renderstate ships offers it.
    """

    def atomic(self, project: Any) -> AbstractContextManager[None]:
        """Run the block as one transaction in ``project``'s database.

        The project's adapter must join it, so that the guarded ``UPDATE`` of the
        project's row and the ledger's writes commit or roll back together. Inside a
        caller's transaction it is a savepoint: leaving the block with an exception
        undoes only the block.
        """
        ...

    def scope(self, project: Any) -> str:
        """Return the text that names ``project``'s kind (its model label or table)."""
        ...

    def insert(self, attempt: Attempt) -> Attempt:
        """Store ``attempt`` (its ``id`` is ignored) and return it as stored, with its new id.

        Its times may be :class:`~renderstate.ledger.DatabaseTime`: the attempt returned
        holds the times the database wrote.

        Ids are unique in the store and increase: a later insert gets a larger id.
        """
        ...

    def update(
        self,
        attempt_id: int,
        values: Mapping[str, object],
        *,
        states: Collection[AttemptState],
        lease_before: float | DatabaseTime | None = None,
        worker: str | None = None,
        owner: str | None = None,
        uncancelled: bool = False,
    ) -> bool:
        """Set ``values`` on the attempt if its state is in ``states``, in one statement.

        A value (or ``lease_before``) that is a :class:`~renderstate.ledger.DatabaseTime`
        is the database's current time plus its ``seconds``, read in that statement (the
        memory store reads its process's clock). With ``lease_before``, only if its lease
        also expired before that time; with
        ``worker``, only if that worker began it (the attempt's ``worker`` column); with
        ``owner``, only if it is held under that owner token (the ``owner`` column);
        with ``uncancelled``, only if nobody asked it to cancel (``cancel_requested_at``
        is null).

        Returns:
            Whether the attempt matched (and was written).
        """
        ...

    def get(self, attempt_id: int) -> Attempt | None:
        """Return the attempt with that id, if there is one."""
        ...

    def history(self, scope: str, key: str, *, limit: int | None = None) -> list[Attempt]:
        """Return the project's attempts, newest first (at most ``limit``)."""
        ...

    def live(self, scope: str, key: str) -> list[Attempt]:
        """Return the project's queued or rendering attempts."""
        ...

    def expired(self, now: float | DatabaseTime, *, scope: str | None = None) -> list[Attempt]:
        """Return the live attempts whose lease expired before ``now``, oldest first.

        ``now`` as a :class:`~renderstate.ledger.DatabaseTime` is the database's time.
        """


class ProgressSource(Protocol[ProjectT_contra]):
    """Where :func:`renderstate.web.status_body` reads a project's render progress and error.

    :class:`~renderstate.RenderRunner` is one (it knows the attempts it ran in this
    process); a store that records attempts in the database can be another. Both methods
    are cheap reads, called on every poll; neither blocks on a render.
    """

    def progress(self, project: ProjectT_contra) -> Progress | None:
        """Return the latest progress of the project's current or last attempt, if known.

        A finished attempt (phase ``done`` or ``failed``) may be returned: the status body
        shows only an unfinished one, so a re-render never shows the previous figures.
        Return ``None`` when no attempt is known.
        """
        ...

    def error(self, project: ProjectT_contra) -> str | None:
        """Return why the project's last attempt failed, in one line, if it did and is known."""
        ...
