"""The async side of the lifecycle: which adapters are async, and sync ones on an event loop.

:class:`~renderstate.ProjectLifecycle` takes a sync or an async adapter.
:func:`is_async_adapter` tells them apart once per class (and checks the adapter contract);
:class:`ThreadedAdapter` lets the awaitable methods drive a sync adapter without blocking
the event loop; :data:`AWAITABLE` names the awaitable method a sync call should have been.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Mapping
from typing import Any, Final

from renderstate._fields import column_lengths, non_text_columns
from renderstate._records import Change
from renderstate._status import Trigger
from renderstate.typing import Adapter

__all__ = ["AWAITABLE", "ThreadedAdapter", "is_async_adapter"]

_ADAPTER_METHODS: Final = ("apply", "refresh_status", "project_key", "empty_output")

# Adapter classes already checked: class -> whether its ``apply`` is a coroutine function.
# Deciding from the class keeps binding cheap; an instance that gets its methods from
# elsewhere (attributes set on the instance) is checked on its own every time.
_ADAPTER_KINDS: dict[type, bool] = {}


def is_async_adapter(adapter: object) -> bool:
    """Whether ``adapter``'s ``apply`` is a coroutine function.

    Raises:
        TypeError: ``adapter`` lacks a method of the adapter contract.
    """
    cls = type(adapter)
    kind = _ADAPTER_KINDS.get(cls)
    if kind is not None:
        return kind
    missing = [m for m in _ADAPTER_METHODS if not hasattr(adapter, m)]
    if missing:
        msg = (
            f"{cls.__name__} is not an adapter: it lacks {', '.join(missing)}; "
            f"see renderstate.typing.Adapter and renderstate.typing.AsyncAdapter"
        )
        raise TypeError(msg)
    kind = inspect.iscoroutinefunction(adapter.apply)  # type: ignore[attr-defined]
    if all(hasattr(cls, m) for m in _ADAPTER_METHODS) and "apply" not in getattr(
        adapter, "__dict__", ()
    ):
        _ADAPTER_KINDS[cls] = kind
    return kind


class ThreadedAdapter:
    """Presents a sync adapter as an async one: its store calls run in a worker thread."""

    __slots__ = ("_adapter",)

    def __init__(self, adapter: Adapter[Any]) -> None:
        self._adapter = adapter

    async def apply(self, project: object, change: Change) -> bool:
        import asyncio  # noqa: PLC0415 - only async callers pay for importing asyncio

        return await asyncio.to_thread(self._adapter.apply, project, change)

    async def refresh_status(self, project: object, status_field: str) -> None:
        import asyncio  # noqa: PLC0415 - only async callers pay for importing asyncio

        await asyncio.to_thread(self._adapter.refresh_status, project, status_field)

    def project_key(self, project: object) -> object:
        return self._adapter.project_key(project)

    def empty_output(self, project: object, field: str) -> str | None:
        return self._adapter.empty_output(project, field)

    def check_fields(self, project: object, names: Collection[str]) -> Mapping[str, int | None]:
        return column_lengths(self._adapter, project, names)

    def non_text_fields(self, project: object, names: Collection[str]) -> Mapping[str, str]:
        return non_text_columns(self._adapter, project, names)


# The awaitable method to name when a sync trigger method is called with an async adapter.
AWAITABLE: Final = {
    Trigger.START_RENDER: "astart_render()",
    Trigger.COMPLETE: "acomplete(output_path)",
    Trigger.FAIL: "afail(error)",
}
