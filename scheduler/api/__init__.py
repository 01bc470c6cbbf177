"""The REST API: ``create_app(settings)`` (FastAPI lives only in this package)."""

from __future__ import annotations

from scheduler.api.app import create_app

__all__ = ["create_app"]
