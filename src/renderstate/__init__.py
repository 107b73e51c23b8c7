"""renderstate: the render lifecycle of a video project, done once, properly.

The facade re-exports the framework-agnostic core. Integrations live in their own
modules (``renderstate.adapters.django`` ...) and are never imported from here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from renderstate._claim import aclaim_render, afail_on_error, claim_render, fail_on_error
from renderstate._lifecycle import ProjectLifecycle, can_start_render, validate_output_path
from renderstate._records import Change, TransitionRecord
from renderstate._status import (
    INITIAL_STATUS,
    RENDERABLE_STATUSES,
    TRANSITIONS,
    Edge,
    Status,
    Transition,
    Trigger,
    to_dot,
    to_mermaid,
)
from renderstate.exceptions import (
    AttemptOwnedError,
    AttemptSupersededError,
    InvalidOutputPathError,
    InvalidTransitionError,
    LedgerSchemaError,
    ProjectNotFoundError,
    RenderCancelledError,
    RenderConflictError,
    RenderHandedBackError,
    RenderInterruptedError,
    RenderOutputError,
    RenderStateError,
    TimelineError,
    UnknownStatusError,
    UnsafePathError,
)
from renderstate.runner import Progress, RenderJob, RenderRunner

try:
    __version__ = version("renderstate")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "INITIAL_STATUS",
    "RENDERABLE_STATUSES",
    "TRANSITIONS",
    "AttemptOwnedError",
    "AttemptSupersededError",
    "Change",
    "Edge",
    "InvalidOutputPathError",
    "InvalidTransitionError",
    "LedgerSchemaError",
    "Progress",
    "ProjectLifecycle",
    "ProjectNotFoundError",
    "RenderCancelledError",
    "RenderConflictError",
    "RenderHandedBackError",
    "RenderInterruptedError",
    "RenderJob",
    "RenderOutputError",
    "RenderRunner",
    "RenderStateError",
    "Status",
    "TimelineError",
    "Transition",
    "TransitionRecord",
    "Trigger",
    "UnknownStatusError",
    "UnsafePathError",
    "__version__",
    "aclaim_render",
    "afail_on_error",
    "can_start_render",
    "claim_render",
    "fail_on_error",
    "to_dot",
    "to_mermaid",
    "validate_output_path",
]
