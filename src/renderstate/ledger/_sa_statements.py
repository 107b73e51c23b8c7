"""The SQLAlchemy store's statements: built once per shape, the database's clock inside.

Every value is a bound parameter, so :class:`~renderstate.ledger.sqlalchemy.SQLAlchemyAttemptStore`
keeps each statement it sends (per database and shape) and SQLAlchemy keys and compiles it
once; a time the database chooses is its clock (:func:`~renderstate.ledger._clock.now_sql`)
plus a parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    Double,
    Table,
    and_,
    bindparam,
    case,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import ColumnElement

from renderstate._attempts import ACTIVE_STATES, FIELDS, Attempt, DatabaseTime
from renderstate.ledger._clock import now_sql
from renderstate.ledger._renewals import PROGRESS_FIELDS, RowRenewal

__all__ = [
    "UpdateShape",
    "compared",
    "database_time",
    "insert_finding_live",
    "landed",
    "renew_statement",
    "returned",
    "update_statement",
]


class UpdateShape(NamedTuple):
    """What makes two of the store's ``UPDATE`` statements the same statement."""

    values: tuple[tuple[str, bool], ...]
    """The columns set, each with whether the database's clock sets it."""
    states: tuple[str, ...]
    lease: bool | None
    """Whether a lease fence is the database's time (``None``: no lease fence)."""
    worker: bool
    owner: bool
    uncancelled: bool = False
    """Whether it matches only an attempt nobody asked to cancel."""


def returned(table: Table, timed: frozenset[str]) -> list[ColumnElement[Any]]:
    """What an attempt's ``INSERT`` returns: its id and the times the database chose.

    Every other column holds what the store sent, so the store builds the attempt as
    stored from those; a row of every column cost the driver and SQLAlchemy a column
    description and a result processor each (25 of them, on every start).
    """
    return [table.c.id, *(table.c[name] for name in sorted(timed))]


def landed(attempt: Attempt, row: Any) -> tuple[Attempt, bool]:
    """``attempt`` as its ``INSERT`` stored it, and whether its project has other live ones.

    ``row`` is what the statement returned (:func:`returned`, and ``renderstate_others``):
    the id and the times the database chose; every other column holds ``attempt``'s own
    value.
    """
    found = dict(row._mapping)
    others = found.pop("renderstate_others")
    found["id"] = int(found["id"])
    return dataclasses.replace(attempt, **found), bool(others)


def insert_finding_live(table: Table, dialect: Dialect, timed: frozenset[str]) -> Insert:
    """The ``INSERT ... RETURNING`` of ``insert_and_find_live``, every value a parameter.

    A time the database chooses (those named in ``timed``) is its clock plus a parameter,
    so the store builds, keys and compiles the statement once, not once per start. It
    returns :func:`returned` and whether the project has another live attempt.
    """
    t = table
    other = t.alias("renderstate_other")
    # The new row, named by its table (the INSERT's own row in RETURNING): on MariaDB
    # and SQLite the subquery sees it too.
    named = dialect.identifier_preparer.format_table(t)
    new_id: ColumnElement[Any] = literal_column(f"{named}.id")
    others = (
        select(other.c.id)
        .where(
            other.c.scope == bindparam("renderstate_scope"),
            other.c.project_key == bindparam("renderstate_key"),
            other.c.state.in_([s.value for s in ACTIVE_STATES]),
            other.c.id != new_id,
        )
        .exists()
    )
    now: ColumnElement[float] = literal_column(now_sql(dialect.name), Double())
    values = {
        name: now + bindparam(name, type_=Double())
        if name in timed
        else bindparam(name, type_=t.c[name].type)
        for name in FIELDS
        if name != "id"
    }
    answer = [*returned(t, timed), others.label("renderstate_others")]
    return insert(t).values(values).returning(*answer)


def update_statement(table: Table, dialect: Dialect, shape: UpdateShape) -> Update:
    """The store's ``UPDATE`` of that shape, every value a parameter.

    The parameters are ``rs_<column>`` for the values set, and ``rs_id``, ``rs_if_lease``,
    ``rs_if_worker`` and ``rs_if_owner`` for the fences: a fence on a column the same
    statement also sets (a takeover fenced by the old owner that writes a new one) needs a
    parameter of its own, or both would be bound to one value.
    A heartbeat, a begin and an end each send the same few shapes again and again, so the
    store builds, keys and compiles each once, not once per call.
    """
    c = table.c
    now: ColumnElement[float] = literal_column(now_sql(dialect.name), Double())

    def value(name: str, type_: Any, timed: bool) -> ColumnElement[Any]:
        return now + bindparam(name, type_=Double()) if timed else bindparam(name, type_=type_)

    where = [c.id == bindparam("rs_id", type_=c.id.type), c.state.in_(shape.states)]
    if shape.lease is not None:
        where.append(c.lease_expires_at < value("rs_if_lease", Double(), shape.lease))
    if shape.worker:
        where.append(c.worker == bindparam("rs_if_worker", type_=c.worker.type))
    if shape.owner:
        where.append(c.owner == bindparam("rs_if_owner", type_=c.owner.type))
    if shape.uncancelled:
        where.append(c.cancel_requested_at.is_(None))
    sets = {name: value(f"rs_{name}", c[name].type, timed) for name, timed in shape.values}
    return update(table).where(*where).values(sets)


def database_time(session: Session) -> Callable[[float], ColumnElement[float]]:
    """What stands for DatabaseTime(seconds) in a statement on ``session``'s database."""
    name = session.connection().dialect.name

    def at(seconds: float) -> ColumnElement[float]:
        now: ColumnElement[float] = literal_column(now_sql(name), Double())
        return now + seconds if seconds else now

    return at


def compared(
    value: float | DatabaseTime, at: Callable[[float], ColumnElement[float]]
) -> float | ColumnElement[float]:
    return at(value.seconds) if isinstance(value, DatabaseTime) else value


def renew_statement(
    table: Table, rows: Sequence[RowRenewal], lease: float | ColumnElement[float]
) -> Update:
    """The one ``UPDATE`` of a store's ``renew``: every lease, and each row's own progress.

    Each row's fences (live, its owner or worker, not asked to cancel) are one term of the
    ``WHERE``, and pick its progress out of a ``CASE`` per column, so two owners of one
    attempt in one batch are told apart as two statements would.
    """
    c = table.c
    fences: list[ColumnElement[bool]] = []
    for row in rows:
        terms = [c.id == literal(row.id, c.id.type)]
        if row.owner is not None:
            terms.append(c.owner == literal(row.owner, c.owner.type))
        if row.worker is not None:
            terms.append(c.worker == literal(row.worker, c.worker.type))
        if row.uncancelled:
            terms.append(c.cancel_requested_at.is_(None))
        fences.append(and_(*terms))
    sets: dict[str, Any] = {"lease_expires_at": lease}
    for name in PROGRESS_FIELDS:
        whens = [
            (fence, literal(row.progress[name], c[name].type))
            for fence, row in zip(fences, rows, strict=True)
            if name in row.progress
        ]
        if whens:
            sets[name] = case(*whens, else_=c[name])
    live = [s.value for s in ACTIVE_STATES]
    ids = sorted({row.id for row in rows})
    return update(table).where(c.id.in_(ids), c.state.in_(live), or_(*fences)).values(sets)
