"""The REST API: ``create_app(settings)`` (FastAPI lives only in this package).

The factory is imported on first use: :mod:`scheduler.schedules` and
:mod:`scheduler.runs` use this package's service modules, and the app uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scheduler.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from scheduler.api.app import create_app  # noqa: PLC0415 - breaks an import cycle

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
