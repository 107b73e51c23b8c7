"""The command line's embedded database: the reference Project model on SQLAlchemy.

The table mirrors the reference model (``id``, ``title``, ``created_at``, ``updated_at``,
``status``, resolution, ``framerate``, ``output_path``, ``timeline``); transitions go through
:class:`~renderstate.adapters.sqlalchemy.SQLAlchemyAdapter` like any user's model.
"""

from __future__ import annotations

import datetime
import uuid
from importlib.util import find_spec
from pathlib import Path
from typing import Any

try:
    from sqlalchemy import JSON, DateTime, String, create_engine, select, update
    from sqlalchemy.engine import Engine, make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    msg = "the renderstate command line needs SQLAlchemy: pip install 'renderstate[cli]'"
    raise ImportError(msg) from exc

from renderstate._attempts import Attempt, encode_key
from renderstate._status import Status
from renderstate.adapters.sqlalchemy import SQLAlchemyAdapter
from renderstate.ledger import Ledger
from renderstate.ledger._sa_folds import MULTI_STATEMENTS
from renderstate.ledger.sqlalchemy import SQLAlchemyAttemptStore, SQLAlchemyLoader, attempt_table

__all__ = ["Project", "Store", "StoreError"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class _Base(DeclarativeBase):
    pass


class Project(_Base):
    """A video project, with the reference model's fields and defaults."""

    __tablename__ = "renderstate_project"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now
    )
    status: Mapped[str] = mapped_column(String(20), default=Status.DRAFT.value)
    resolution_width: Mapped[int] = mapped_column(default=1920)
    resolution_height: Mapped[int] = mapped_column(default=1080)
    framerate: Mapped[int] = mapped_column(default=30)
    output_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    timeline: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


ATTEMPTS = attempt_table(_Base.metadata)
"""The attempt ledger's table, created with the projects' table."""


class StoreError(Exception):
    """The database URL is unusable or a project is missing; the message says which."""


def _create_tables(engine: Engine, attempts: SQLAlchemyAttemptStore) -> None:
    """The command line's tables, created if missing, the ledger's brought up to date.

    ``create_all`` looks, then creates: two processes opening one new database at once
    (``renderstate worker`` and ``renderstate render``) both see no table, and the slower
    one's CREATE fails with "already exists". Looking again finds that table; SQLite
    commits each CREATE on its own, so it may find the next one still being created by the
    other process: each such failure means one more table exists, so one more look than
    there are tables always ends it.
    """
    tries = len(_Base.metadata.tables) + 2
    for number in range(tries):
        last = number == tries - 1
        try:
            _Base.metadata.create_all(engine)
            # A database file of an earlier version gains the ledger's newer columns.
            attempts.create_table(engine)
        except SQLAlchemyError as exc:  # SQLite, PostgreSQL and MariaDB all say so
            if last or "already exists" not in str(exc):
                raise
        else:
            return


class Store:
    """Projects in one database, and the adapter that persists their transitions.

    Args:
        url: A SQLAlchemy URL; for a SQLite file, its directory is created if missing.
        create: Whether a missing SQLite file may be created (``False`` for commands that
            only read or repair).

    Raises:
        StoreError: the URL cannot be parsed or the database cannot be opened.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            msg = f"--db {url!r} is not a database URL; use e.g. sqlite:///renderstate.sqlite3"
            raise StoreError(msg) from exc
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            file = Path(parsed.database)
            if not create and not file.exists():
                msg = (
                    f"there is no database at {file} yet; `renderstate demo` or "
                    f"`renderstate render TIMELINE` creates it"
                )
                raise StoreError(msg)
            file.parent.mkdir(parents=True, exist_ok=True)
        parsed = _with_multi_statements(_with_installed_driver(parsed))
        attempts = SQLAlchemyAttemptStore(sessionmaker(), table=ATTEMPTS)
        try:
            self.engine = create_engine(parsed)
            _create_tables(self.engine, attempts)
        except ImportError as exc:
            raise StoreError(_driver_hint(url, parsed.get_backend_name(), exc)) from exc
        except SQLAlchemyError as exc:
            msg = f"cannot open the database {url!r}: {exc}"
            raise StoreError(msg) from exc
        self.url = url
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.adapter = SQLAlchemyAdapter(self.sessions)
        """Shared by every thread: each transition runs in a fresh session."""
        attempts = SQLAlchemyAttemptStore(self.sessions, table=ATTEMPTS)
        attempts._checked = True  # create_table() above brought the table up to date
        self.ledger = Ledger(attempts)
        """The attempt ledger, in the same database: every command records and fences
        attempts, so several `renderstate` processes can share one database."""
        self.loader: SQLAlchemyLoader[Project] = attempts.loader(Project)
        """Loads a project by the key the ledger stores."""

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def create(
        self,
        title: str,
        timeline: dict[str, Any],
        *,
        width: int | None = None,
        height: int | None = None,
        fps: int | None = None,
    ) -> Project:
        """Insert a DRAFT project and return it (detached, ready for a lifecycle)."""
        project = Project(id=str(uuid.uuid4()), title=title, timeline=timeline)
        if width is not None and height is not None:
            project.resolution_width, project.resolution_height = width, height
        if fps is not None:
            project.framerate = fps
        with self.sessions.begin() as session:
            session.add(project)
        return project

    def update_timeline(
        self,
        project: Project,
        timeline: dict[str, Any],
        *,
        width: int | None = None,
        height: int | None = None,
        fps: int | None = None,
    ) -> None:
        """Store ``timeline`` (and the size and rate it sets) in ``project``'s row.

        One ``UPDATE`` of these columns only, so the status the runner writes is untouched;
        ``project`` itself, which a render may be reading, is left as it is.
        """
        values: dict[str, Any] = {"timeline": timeline}
        if width is not None and height is not None:
            values["resolution_width"], values["resolution_height"] = width, height
        if fps is not None:
            values["framerate"] = fps
        with self.sessions.begin() as session:
            session.execute(update(Project).where(Project.id == project.id).values(values))

    def get(self, key: str) -> Project:
        """Return the project whose id is ``key`` (a unique prefix is enough).

        Raises:
            StoreError: no project, or several, match ``key``.
        """
        with self.sessions() as session:
            found = session.get(Project, key)
            if found is not None:
                return found
            matches = list(
                session.scalars(select(Project).where(Project.id.startswith(key, autoescape=True)))
            )
        if len(matches) == 1:
            return matches[0]
        if not matches:
            msg = f"no project {key!r} in {self.url}; `renderstate status` lists them"
        else:
            msg = f"{key!r} matches {len(matches)} projects; give more of the id"
        raise StoreError(msg)

    def all(self) -> list[Project]:
        """Every project, newest first."""
        with self.sessions() as session:
            return list(session.scalars(select(Project).order_by(Project.created_at.desc())))

    def current_attempt(self, project: Project) -> Attempt | None:
        """The project's newest render attempt, if it has one."""
        return self.ledger.current(Project.__tablename__, encode_key(project.id))

    def video(self, project: Project) -> str | None:
        """The URL-relative path of the project's current video, if it has one.

        Its ``output_path``; for a row without one (rendered by a runner with
        ``output_field=None``, which writes the status alone), the path of its newest
        completed attempt in the ledger.
        """
        if project.output_path:
            return project.output_path
        if project.status == Status.DRAFT.value:
            return None  # never rendered: no query
        return self.ledger.video(Project.__tablename__, encode_key(project.id))

    def attempt_number(self, project: Project, attempt_id: int) -> int:
        """The attempt's number among the project's own (1 for its first render).

        The ledger numbers attempts across every project; its history of one project
        (ids ascending) gives the order a user counts in.
        """
        history = self.ledger.history(Project.__tablename__, encode_key(project.id))
        return sum(1 for attempt in history if attempt.id <= attempt_id)

    def with_status(self, status: Status) -> list[Project]:
        """The projects whose stored status is ``status``."""
        with self.sessions() as session:
            return list(session.scalars(select(Project).where(Project.status == status.value)))


# The drivers the extras install, per database, when the URL names none.
_DRIVERS = {"postgresql": ("psycopg", "psycopg[binary]"), "mysql": ("pymysql", "pymysql")}
_DRIVERS["mariadb"] = _DRIVERS["mysql"]


def _with_installed_driver(url: Any) -> Any:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg (3) when only it is there."""
    backend = url.get_backend_name()
    if backend not in _DRIVERS or "+" in url.drivername:
        return url
    default = url.get_dialect().driver  # what SQLAlchemy would import: psycopg2, mysqldb
    module = {"psycopg2": "psycopg2", "mysqldb": "MySQLdb"}.get(default, default)
    driver, _ = _DRIVERS[backend]
    if find_spec(module) is None and find_spec(driver) is not None:
        return url.set(drivername=f"{backend}+{driver}")
    return url


def _with_multi_statements(url: Any) -> Any:
    """MySQL/MariaDB through PyMySQL: connections that take several statements at once.

    The ledger then sends a start's attempt ``INSERT`` with the project's guarded
    ``UPDATE`` in one round trip. Every statement the store sends binds its values as
    parameters.
    """
    if url.get_backend_name() not in {"mysql", "mariadb"} or url.get_driver_name() != "pymysql":
        return url
    given = url.query.get("client_flag", "0")
    flags = int(given if isinstance(given, str) else given[-1]) | MULTI_STATEMENTS
    return url.update_query_dict({"client_flag": str(flags)})


def _driver_hint(url: str, backend: str, exc: ImportError) -> str:
    if backend in _DRIVERS:
        driver, package = _DRIVERS[backend]
        scheme = url.split("://", 1)[0].split("+", 1)[0]
        return (
            f"cannot open the database {url!r}: its driver is not installed ({exc}). "
            f"Install one, e.g. pip install '{package}', and name it in the URL: "
            f"{scheme}+{driver}://..."
        )
    return f"cannot open the database {url!r}: a module it needs is missing ({exc})"
