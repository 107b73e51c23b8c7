"""The errors renderstate raises, all under one base class.

::

    RenderStateError
    ├── InvalidTransitionError        the trigger has no edge from the current status
    │   └── RenderConflictError       start_render while PROCESSING (status_code 409)
    ├── UnknownStatusError            a stored value outside the four (mapped) statuses
    ├── InvalidOutputPathError        complete() got a path that is not URL-relative
    ├── UnsafePathError               a link or a swapped file where the library writes
    ├── ProjectNotFoundError          unsaved or deleted project (status_code 404)
    ├── TimelineError                 a timeline the renderer refuses before rendering
    ├── RenderOutputError             the renderer returned without writing a video
    ├── RenderInterruptedError        a render that never ran to its end (shutdown, dead process)
    │   ├── RenderCancelledError      a render stopped by RenderRunner.cancel() / job.cancel()
    │   └── RenderHandedBackError     a render stopped and queued again (a worker's shutdown)
    ├── AttemptSupersededError        a late worker of an attempt that is no longer current
    ├── AttemptOwnedError             a second begin of an attempt another live worker renders
    └── LedgerSchemaError             the ledger's table lacks a column this version needs

Every error carries structured attributes and writes its own message, which says
what happened and what to do about it. All of them pickle, so they cross process
boundaries (Celery, multiprocessing) intact.

Two messages: ``str(error)`` is for the developer and the server's log (absolute paths,
the argument that would allow it); :attr:`RenderStateError.public_message` is what an HTTP
client or an end user may read (no server path, no advice about the code). The web helpers
(:mod:`renderstate.web`) answer with the public one and log the other.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from typing import Any, ClassVar, Final

__all__ = [
    "AttemptOwnedError",
    "AttemptSupersededError",
    "InvalidOutputPathError",
    "InvalidTransitionError",
    "LedgerSchemaError",
    "ProjectNotFoundError",
    "RenderCancelledError",
    "RenderConflictError",
    "RenderHandedBackError",
    "RenderInterruptedError",
    "RenderOutputError",
    "RenderStateError",
    "TimelineError",
    "UnknownStatusError",
    "UnsafePathError",
]


def _subject(project_key: object) -> str:
    return "This project" if project_key is None else f"Project {project_key}"


def _either(names: Iterable[object]) -> str:
    words = sorted(str(n) for n in names)
    if not words:
        return "nowhere"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


# What a message for an HTTP client leaves out; see _public_text().
_ABSOLUTE: Final = r"(?:/|[A-Za-z]:[\\/])"
_QUOTED_PATH: Final = re.compile(rf"""(['"]){_ABSOLUTE}[^'"]*?([^'"/\\]*)\1""")
_BARE_PATH: Final = re.compile(r"""(?<![\w.'"/])/(?:[^\s/'"()]+/)+([^\s/'"(),;]+)""")
_PATH_ASIDE: Final = re.compile(rf"""\s*\([^()]*?['"]?{_ABSOLUTE}[^()]*\)""")
_BASE_DIR: Final = re.compile(r"\bbase_dir\b(\s*\([^()]*\))?")
_FOR_DEVELOPERS: Final = re.compile(
    r"\w\(|\w=\w|\bpip install\b|\brenderer\b|\btimeline file\b|\bbase_dir\b"
)
_CLAUSES: Final = re.compile(r"(;\s+|\.\s+(?=[A-Z]))")


def _public_text(text: str, fallback: str = "this value cannot be used") -> str:
    """Return ``text`` without what only the server's developer should read.

    For a message written for developers, such as a :class:`TimelineError`'s ``problem``
    raised without a ``public_problem``: the clauses (split at ``;`` and at sentences)
    that give advice about the code (a call such as ``load_timeline()``, an argument such
    as ``allow_outside_base_dir=True``, ``pip install``, the renderer, ``base_dir``) are
    dropped; an aside in parentheses that quotes an absolute path is dropped; any other
    absolute path is cut to ``…/<its last name>``; ``base_dir ('/srv/...')`` reads "the
    allowed directory". What is left is what the client sent and what is wrong with it,
    or ``fallback`` when nothing is::

        >>> _public_text("'/etc/passwd' is an absolute path; pass allow_outside_base_dir=True")
        "'…/passwd' is an absolute path"
    """
    parts = _CLAUSES.split(_BASE_DIR.sub("the allowed directory", text))
    shown = ""
    for clause, separator in zip(parts[::2], [*parts[1::2], ""], strict=True):
        if _FOR_DEVELOPERS.search(clause):
            continue
        kept = _PATH_ASIDE.sub("", clause)
        kept = _QUOTED_PATH.sub(lambda m: f"{m[1]}…/{m[2]}{m[1]}", kept)
        kept = _BARE_PATH.sub(lambda m: f"…/{m[1]}", kept).strip()
        if kept:
            shown += kept + separator
    # The separator after the last clause kept ends the text only if the text ended so.
    shown = shown.rstrip().rstrip(";")
    if not text.rstrip().endswith("."):
        shown = shown.rstrip(".")
    return shown or fallback


class RenderStateError(Exception):
    """Base class of every error renderstate raises."""

    _args: tuple[Any, ...] = ()

    @property
    def public_message(self) -> str:
        """The message for an HTTP client or an end user: no server path, no code advice.

        ``str(error)`` is the full message, for the developer and the server's log. Most
        errors' messages are fit for a client as they are (a 409's "already PROCESSING;
        wait ... then try again"), and this is the same text; those that name server
        details (:class:`TimelineError`'s files, :class:`AttemptOwnedError`'s worker,
        :class:`ProjectNotFoundError`'s adapter detail) write a shorter one.
        """
        return str(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword-only structured arguments, so the default
        # Exception pickling (cls(*self.args)) would not rebuild them.
        return (_rebuild, (type(self), self._kwargs()))

    def _kwargs(self) -> dict[str, Any]:
        return {}


def _rebuild(cls: type[RenderStateError], kwargs: dict[str, Any]) -> RenderStateError:
    return cls(**kwargs)


class InvalidTransitionError(RenderStateError):
    """The trigger has no edge from the project's current status."""

    def __init__(
        self,
        *,
        trigger: str,
        status: str,
        allowed: Iterable[str],
        project_key: object = None,
    ) -> None:
        self.trigger = str(trigger)
        """The trigger that was refused (``start_render``, ``complete`` or ``fail``)."""
        self.status = str(status)
        """The status the project had when it was refused."""
        self.allowed = tuple(sorted(str(a) for a in allowed))
        """The statuses from which ``trigger`` would have been accepted."""
        self.project_key = project_key
        """The project's primary key, or ``None`` when it has none."""
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"{_subject(self.project_key)} is {self.status}; {self.trigger} applies only from "
            f"{_either(self.allowed)}. Reload the project: another request or worker may "
            f"have moved it on."
        )

    def _kwargs(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "status": self.status,
            "allowed": self.allowed,
            "project_key": self.project_key,
        }


class RenderConflictError(InvalidTransitionError):
    """A render was asked for while one is already running (HTTP 409 Conflict)."""

    status_code: ClassVar[int] = 409
    """The HTTP status a web endpoint should answer with."""

    def _message(self) -> str:
        return (
            f"{_subject(self.project_key)} is already {self.status}; a render can start from "
            f"{_either(self.allowed)}. Wait for the current render to finish, then try again."
        )


class UnknownStatusError(RenderStateError, ValueError):
    """A status value that is none of the four (mapped) statuses."""

    def __init__(
        self,
        *,
        value: object,
        allowed: Iterable[Hashable],
        field: str = "status",
        project_key: object = None,
    ) -> None:
        self.value = value
        """The value that was found."""
        self.allowed = tuple(allowed)
        """The values the field may hold."""
        self.field = field
        """The name of the status field."""
        self.project_key = project_key
        """The project's primary key, or ``None`` when it has none."""
        allowed_text = ", ".join(repr(a) for a in self.allowed)
        super().__init__(
            f"{_subject(project_key)} has {field}={value!r}, which is not a known status; "
            f"expected one of {allowed_text}. If your model stores other literals, map them "
            f"with ProjectLifecycle(..., values={{Status.DRAFT: ..., ...}}), several for one "
            f"status as a list whose first is the one written, e.g. "
            f"values={{Status.PROCESSING: ['QUEUED', 'PROCESS']}}."
        )

    def _kwargs(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "allowed": self.allowed,
            "field": self.field,
            "project_key": self.project_key,
        }


class InvalidOutputPathError(RenderStateError, ValueError):
    """An output path that is not a URL-relative POSIX path."""

    def __init__(self, *, path: object, reason: str, hint: str | None = None) -> None:
        self.path = path
        """The rejected value."""
        self.reason = reason
        """Why it was rejected."""
        self.hint = hint
        """What to do instead, when the usual advice does not fit."""
        advice = hint or (
            "Pass a relative POSIX path below the media root, such as 'projects/42/final.mp4'"
        )
        super().__init__(f"Output path {path!r} is invalid: {reason}. {advice}.")

    def _kwargs(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason, "hint": self.hint}


class UnsafePathError(RenderStateError):
    """A path the library writes below the media root leads elsewhere, or was swapped.

    A symbolic link (or a file) where a directory should be, or a file replaced between
    its check and its use: someone who can write the media folder tried to turn a write
    against a file outside it. Nothing was written there and nothing was published.
    """

    def __init__(self, *, path: str, reason: str, hint: str) -> None:
        self.path = path
        """The path that was refused."""
        self.reason = reason
        """What was found there."""
        self.hint = hint
        """What to do about it."""
        super().__init__(
            f"Refused to write through {path!r}: {reason}. Nothing outside the media root was "
            f"written. {hint}."
        )

    def _kwargs(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason, "hint": self.hint}


class ProjectNotFoundError(RenderStateError, LookupError):
    """The project is not stored: it was never saved, or it was deleted (HTTP 404)."""

    status_code: ClassVar[int] = 404
    """The HTTP status a web endpoint should answer with."""

    def __init__(self, *, project_key: object = None, detail: str | None = None) -> None:
        self.project_key = project_key
        """The primary key that was looked for, or ``None`` for an unsaved project."""
        self.detail = detail
        """What the adapter found, when it has more to say."""
        if project_key is None:
            message = "The project has no primary key: save it before starting a render."
        else:
            message = (
                f"Project {project_key} does not exist (was it deleted?); "
                f"load an existing project and try again."
            )
        self._public = message
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message)

    @property
    def public_message(self) -> str:
        """The message without the adapter's ``detail`` (what it found is server-side)."""
        return self._public

    def _kwargs(self) -> dict[str, Any]:
        return {"project_key": self.project_key, "detail": self.detail}


class TimelineError(RenderStateError, ValueError):
    """A timeline that cannot be rendered; it is refused before any frame is written."""

    status_code: ClassVar[int] = 422
    """The HTTP status a web endpoint should answer with (the request's timeline is bad)."""

    def __init__(
        self,
        *,
        field: str,
        problem: str,
        scene: int | None = None,
        public_problem: str | None = None,
    ) -> None:
        self.scene = scene
        """The 0-based index of the scene at fault, or ``None`` for a timeline-wide field."""
        self.field = field
        """The offending key (``"duration"``, ``"background"``, ``"width"``, ...)."""
        self.problem = problem
        """What is wrong with it and what would be accepted, for the developer: it may name
        files on the server and the arguments that would allow them."""
        self.public_problem = public_problem
        """The same for an HTTP client, when the raiser wrote one; else :attr:`public_message`
        uses ``problem`` without the clauses of advice about the code and with server
        paths cut to their last name."""
        super().__init__(
            f"{self._where()}, field {field!r}: {problem}. Fix the timeline and render again; "
            f"nothing was rendered."
        )

    def _where(self) -> str:
        return "Timeline" if self.scene is None else f"Timeline scene {self.scene}"

    @property
    def public_message(self) -> str:
        """The field at fault and what is wrong with it, without server paths or code advice."""
        problem = self.public_problem or _public_text(self.problem)
        return (
            f"{self._where()}, field {self.field!r}: {problem}. Fix the timeline and try "
            f"again; nothing was rendered."
        )

    def _kwargs(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "problem": self.problem,
            "scene": self.scene,
            "public_problem": self.public_problem,
        }


class _RenderEndError(RenderStateError):
    """A render that ended without a new video."""

    def __init__(
        self, *, project_key: object = None, reason: str, untouched: bool | None = None
    ) -> None:
        self.project_key = project_key
        """The project's primary key."""
        self.reason = reason
        """What went wrong."""
        self.untouched = untouched
        """``True`` when the previous video was checked and is as it was (same file, same
        size and modification time); ``None`` when nobody checked, so nothing is claimed."""
        super().__init__(self._message())

    def _message(self) -> str:  # pragma: no cover - every subclass writes its own
        raise NotImplementedError

    def _previous(self) -> str:
        if self.untouched:
            return " The previous video, if any, is untouched (checked)."
        return ""

    def _kwargs(self) -> dict[str, Any]:
        return {"project_key": self.project_key, "reason": self.reason, "untouched": self.untouched}


class RenderOutputError(_RenderEndError):
    """The renderer returned without a usable video (no file, an empty one, a link...)."""

    def _message(self) -> str:
        subject = "this project" if self.project_key is None else f"project {self.project_key}"
        return (
            f"The renderer for {subject} returned but {self.reason}.{self._previous()} A "
            f"renderer must write the whole video to the target path it is given, or to a "
            f"path of its own that it returns."
        )


class RenderInterruptedError(_RenderEndError):
    """A render ended without running to the end: cancelled at shutdown, or its process died."""

    def _message(self) -> str:
        return (
            f"{_subject(self.project_key)} was not rendered to the end: {self.reason}."
            f"{self._previous()} Start the render again to retry."
        )


class RenderCancelledError(RenderInterruptedError):
    """A render stopped because someone cancelled it (``RenderRunner.cancel()``)."""

    def _message(self) -> str:
        return (
            f"The render of {_subject(self.project_key).lower()} was cancelled: {self.reason}."
            f"{self._previous()} Start the render again to retry."
        )


class RenderHandedBackError(RenderInterruptedError):
    """A render stopped before its end and its attempt went back to the queue.

    What a worker's warm shutdown does with a render it cannot finish within its grace
    period (:meth:`RenderRunner.hand_back <renderstate.RenderRunner.hand_back>`): the
    render stops at its next frame, its temporary files are removed, the previous video is
    untouched, and the project stays PROCESSING while another worker renders the same
    attempt again from the start. Nothing failed: a job that ends with this error saved
    nothing.
    """

    def _message(self) -> str:
        return (
            f"The render of {_subject(self.project_key).lower()} was handed back to the "
            f"queue: {self.reason}.{self._previous()} Another worker renders it again from "
            f"the start; the project stays PROCESSING."
        )


class AttemptSupersededError(RenderStateError):
    """A render attempt that is no longer its project's current one tried to act (HTTP 409).

    With an attempt ledger, finishing a render, renewing its lease or moving its file into
    place applies only while the attempt is the project's current, live one. A late worker
    (its lease expired and recovery failed it, or a newer attempt started) gets this error
    and has changed nothing.
    """

    status_code: ClassVar[int] = 409
    """The HTTP status a web endpoint should answer with."""

    def __init__(
        self, *, project_key: object = None, attempt_id: object, state: str | None = None
    ) -> None:
        self.project_key = project_key
        """The project's primary key."""
        self.attempt_id = attempt_id
        """The attempt that was refused."""
        self.state = state
        """What the ledger says of that attempt now (``interrupted``, ``superseded``, ...),
        or ``None`` if it has no such attempt."""
        now = "is not in the ledger" if state is None else f"is already {state}"
        super().__init__(
            f"Render attempt {attempt_id} of {_subject(self.project_key).lower()} {now}, so "
            f"it is no longer the project's current attempt; nothing was changed. Its work is "
            f"discarded: a newer attempt or recovery owns the project now."
        )

    def _kwargs(self) -> dict[str, Any]:
        return {
            "project_key": self.project_key,
            "attempt_id": self.attempt_id,
            "state": self.state,
        }


class AttemptOwnedError(RenderStateError):
    """An attempt that another worker renders, and keeps alive, was begun again (HTTP 409).

    A task queue may deliver one render twice (a broker's visibility timeout, a lost
    acknowledgement). The ledger lets one process at a time render an attempt: a second
    :meth:`~renderstate.ledger.Ledger.begin` while the first worker still renews its lease
    is refused, and nothing is written. Try again after :attr:`retry_after` seconds: if
    that worker died meanwhile, its lease has run out and the attempt can be taken over.
    """

    status_code: ClassVar[int] = 409
    """The HTTP status a web endpoint should answer with."""

    def __init__(
        self,
        *,
        project_key: object = None,
        attempt_id: object,
        worker: str | None = None,
        retry_after: float = 0.0,
    ) -> None:
        self.project_key = project_key
        """The project's primary key."""
        self.attempt_id = attempt_id
        """The attempt that was begun again."""
        self.worker = worker
        """``host:pid`` of the process rendering it."""
        self.retry_after = max(0.0, float(retry_after))
        """Seconds until the lease that worker holds now runs out."""
        super().__init__(
            f"Render attempt {attempt_id} of {_subject(project_key).lower()} is being rendered "
            f"by {worker or 'another worker'}, which renewed its lease; nothing was changed. "
            f"This is a duplicate delivery: drop it, or try again in {self.retry_after:.1f} s "
            f"(if that worker died, its lease has run out by then and the attempt is taken over)."
        )

    @property
    def public_message(self) -> str:
        """The message without the worker's host and process id."""
        return (
            f"{_subject(self.project_key)} is being rendered; nothing was changed. Try again "
            f"in {self.retry_after:.1f} s."
        )

    def _kwargs(self) -> dict[str, Any]:
        return {
            "project_key": self.project_key,
            "attempt_id": self.attempt_id,
            "worker": self.worker,
            "retry_after": self.retry_after,
        }


class LedgerSchemaError(RenderStateError):
    """The attempt ledger's table in the database lacks what this renderstate needs.

    Raised on the store's first use, before anything is written: a table created by an
    earlier version (before the ``owner`` column, say) would otherwise fail in the middle
    of a render. The message names the fix for the store in use.
    """

    def __init__(self, *, table: str, missing: Iterable[str], fix: str) -> None:
        self.table = table
        """The ledger's table."""
        self.missing = tuple(missing)
        """The columns it lacks (or ``("*",)`` when the table itself is missing)."""
        self.fix = fix
        """What to run to bring the table up to date."""
        lacks = (
            "does not exist"
            if self.missing == ("*",)
            else f"lacks the column{'s' if len(self.missing) > 1 else ''} {', '.join(self.missing)}"
        )
        super().__init__(
            f"The attempt ledger's table {table} {lacks}, which this version of renderstate "
            f"needs; nothing was written. {fix}"
        )

    def _kwargs(self) -> dict[str, Any]:
        return {"table": self.table, "missing": self.missing, "fix": self.fix}
