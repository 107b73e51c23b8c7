"""A render job as data: what an executor sends to the process that renders it.

Pure data, no I/O. The runner builds a :class:`JobSpec` for each job it schedules
(``RenderJob.spec``); a task system serialises it with :meth:`JobSpec.to_dict` (plain JSON
types only), and the worker that receives it rebuilds it with :meth:`JobSpec.from_dict` and
hands it to ``RenderRunner.execute()``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final, NoReturn

from renderstate._attempts import WIDTHS
from renderstate._paths import validate_output_path

__all__ = ["SPEC_VERSION", "JobSpec"]

SPEC_VERSION: Final = 1
"""The version of :meth:`JobSpec.to_dict`'s format, stored under ``"version"``."""

_FIELDS: Final = ("project_key", "output_path", "scope", "attempt_id", "actor")
# A W3C trace context is a traceparent of 55 characters and a tracestate of at most 512;
# a propagator may add baggage (at most 8192). Anything much larger is not one.
_TRACE_ENTRIES: Final = 8
_TRACE_TEXT: Final = 8192 + 64
MAX_ATTEMPT_ID: Final = 2**63 - 1
"""The largest attempt id every ledger store holds (a signed 64-bit ``BIGINT``)."""


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to run one render attempt, as plain values.

    Frozen and hashable; :meth:`to_dict` gives a JSON-serialisable ``dict`` and
    :meth:`from_dict` rebuilds the spec from it, checking every field. The project itself
    is not in the spec: the worker loads it fresh by ``project_key`` (with the runner's
    ``loader``), so a spec never carries a stale copy of the row.

    Raises:
        ValueError: a field is missing, has the wrong type, or is out of range (the
            message names the field and what it must be).
    """

    project_key: str
    """The project's primary key as the ledger stores it (``renderstate.ledger`` encodes
    scalar keys as ``str(key)``, composite keys as a JSON list)."""
    output_path: str
    """The URL-relative path the video is stored at when the render succeeds."""
    scope: str | None = None
    """The ledger's name for the project's kind (model label or table); ``None`` without a
    ledger."""
    attempt_id: int | None = None
    """The attempt's id in the ledger, its fencing token; ``None`` without a ledger."""
    actor: str | None = None
    """Who asked for the render, if the caller said."""
    trace: Mapping[str, str] | None = dataclasses.field(default=None, compare=False)
    """The trace context of the sender's span (W3C ``traceparent`` and ``tracestate``, as
    OpenTelemetry's propagator writes them), so the worker continues its trace; ``None``
    when no OpenTelemetry SDK is configured (see "Metrics and traces"). Not part of the
    spec's identity: two specs of one attempt are equal whatever their traces."""

    def __post_init__(self) -> None:
        # The annotations are not checked at run time, and a spec comes from the wire.
        fields: dict[str, object] = {name: getattr(self, name) for name in _FIELDS}
        key, path, scope = fields["project_key"], fields["output_path"], fields["scope"]
        attempt_id, actor = fields["attempt_id"], fields["actor"]
        if not isinstance(key, str) or not key:
            _refuse("project_key", key, "a non-empty string (the key as text)")
        if not isinstance(path, str):
            _refuse("output_path", path, "a string")
        _check_width("project_key", key)
        _check_width("output_path", path)
        try:
            validate_output_path(path)
        except ValueError as exc:
            msg = f"JobSpec.output_path is unusable: {exc}"
            raise ValueError(msg) from exc
        if scope is not None and (not isinstance(scope, str) or not scope):
            _refuse("scope", scope, "a non-empty string or None")
        _check_width("scope", scope)
        if attempt_id is not None and (
            isinstance(attempt_id, bool)
            or not isinstance(attempt_id, int)
            or not 1 <= attempt_id <= MAX_ATTEMPT_ID
        ):
            _refuse("attempt_id", attempt_id, f"a positive integer up to {MAX_ATTEMPT_ID} or None")
        if (scope is None) != (attempt_id is None):
            msg = (
                "JobSpec needs scope and attempt_id together (a job recorded in a ledger) "
                f"or neither, got scope={scope!r} and attempt_id={attempt_id!r}"
            )
            raise ValueError(msg)
        if actor is not None and not isinstance(actor, str):
            _refuse("actor", actor, "a string or None")
        _check_width("actor", actor)
        _check_trace(self.trace)
        if self.trace is not None:  # a copy: the caller's dict may change, the spec may not
            object.__setattr__(self, "trace", dict(self.trace))

    def to_dict(self) -> dict[str, str | int | dict[str, str] | None]:
        """Return the spec as a ``dict`` of JSON types, with a ``"version"`` entry.

        ``"trace"`` is there only when the spec has one: without OpenTelemetry the dict is
        what earlier versions wrote.
        """
        data: dict[str, str | int | dict[str, str] | None] = {"version": SPEC_VERSION}
        data.update({name: getattr(self, name) for name in _FIELDS})
        if self.trace is not None:
            data["trace"] = dict(self.trace)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> JobSpec:
        """Rebuild a spec from :meth:`to_dict`'s output (after a JSON round trip too).

        Raises:
            TypeError: ``data`` is not a mapping.
            ValueError: a missing or unknown field, a field of the wrong type or out of
                range, or a ``"version"`` this renderstate does not read.
        """
        given: object = data  # from the wire: the annotation is not checked at run time
        if not isinstance(given, Mapping):
            msg = f"JobSpec.from_dict() needs a mapping, got {type(data).__name__}"
            raise TypeError(msg)
        version = data.get("version", SPEC_VERSION)  # a missing one is named below
        if version != SPEC_VERSION:
            msg = (
                f"this job spec has version {version!r}; this renderstate reads version "
                f"{SPEC_VERSION}: run the same renderstate version in the sender and the worker"
            )
            raise ValueError(msg)
        unknown = sorted(set(data) - {*_FIELDS, "version", "trace"})
        if unknown:
            msg = f"JobSpec.from_dict() got unknown fields {unknown}; it reads {list(_FIELDS)}"
            raise ValueError(msg)
        # Every field to_dict() writes, None included: a spec that lacks one was not made
        # by to_dict(), and a default would silently stand in for what the sender meant.
        missing = [name for name in ("version", *_FIELDS) if name not in data]
        if missing:
            msg = (
                f"JobSpec.from_dict() is missing the fields {missing}; it needs every field "
                f"JobSpec.to_dict() writes, None included: {['version', *_FIELDS]}"
            )
            raise ValueError(msg)
        values = {name: data[name] for name in _FIELDS}
        values["trace"] = data.get("trace")  # optional: only a traced sender writes it
        return cls(**values)  # type: ignore[arg-type]  # __post_init__ checks each type


def _refuse(field: str, value: object, expected: str) -> NoReturn:
    msg = f"JobSpec.{field} must be {expected}, got {value!r}"
    raise ValueError(msg)


def _check_trace(trace: object) -> None:
    if trace is None:
        return
    if not isinstance(trace, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in trace.items()
    ):
        _refuse("trace", trace, "a mapping of strings to strings (a trace context) or None")
    if len(trace) > _TRACE_ENTRIES or any(len(k) + len(v) > _TRACE_TEXT for k, v in trace.items()):
        msg = (
            f"JobSpec.trace has {len(trace)} entries, or one longer than {_TRACE_TEXT} "
            f"characters; a trace context has at most {_TRACE_ENTRIES} short ones "
            "(traceparent, tracestate, baggage)"
        )
        raise ValueError(msg)


def _check_width(field: str, value: object) -> None:
    # The ledger stores these in columns of fixed widths, and no database stores NUL in
    # text: a spec that no store could hold is refused here, not by a driver's DataError
    # in the worker.
    if not isinstance(value, str):
        return
    width = WIDTHS[field]
    if len(value) > width:
        msg = (
            f"JobSpec.{field} is {len(value)} characters; the ledger stores at most {width}: "
            "shorten it"
        )
        raise ValueError(msg)
    if "\x00" in value:
        msg = f"JobSpec.{field} contains a NUL character, which databases do not store in text"
        raise ValueError(msg)
