"""The REST API: ``create_app(settings)`` (FastAPI lives only in this package)."""

from scheduler.api.app import create_app

__all__ = ["create_app"]
