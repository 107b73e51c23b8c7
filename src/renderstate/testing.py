"""Test doubles for code that uses renderstate; the library's own tests use them too."""

from __future__ import annotations

import dataclasses
import threading
import uuid

from renderstate._memory import MemoryAdapter
from renderstate._records import TransitionRecord

__all__ = ["MemoryAdapter", "MemoryProject", "RecordingObserver"]


@dataclasses.dataclass(eq=False)
class MemoryProject:
    """A plain project with the reference model's fields and defaults."""

    title: str = "Untitled"
    id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    status: str = "DRAFT"
    output_path: str | None = None
    resolution_width: int = 1920
    resolution_height: int = 1080
    framerate: int = 30
    timeline: dict[str, object] = dataclasses.field(default_factory=dict)


class RecordingObserver:
    """An observer that keeps every record it is given, safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[TransitionRecord] = []

    def __call__(self, record: TransitionRecord, /) -> None:
        """Keep ``record``."""
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[TransitionRecord]:
        """A copy of the records received so far, oldest first."""
        with self._lock:
            return list(self._records)
