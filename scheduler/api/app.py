"""The app factory: ``create_app(settings)`` wires routes, services, auth, errors and metrics.

Only this package imports FastAPI, and only :func:`create_app`'s handlers turn
ttsbatch errors into HTTP statuses.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema

from scheduler.api.auth import KeyRing, load_keys
from scheduler.api.errors import DOMAIN_STATUSES, ApiError, TooLargeError
from scheduler.api.listening import Listening
from scheduler.api.metrics import Metrics
from scheduler.api.middleware import BodySizeGuard, RequestMetrics
from scheduler.api.ports import ports_of
from scheduler.api.routes import documents, health, jobs, runs, schedules
from scheduler.api.routes.common import too_large
from scheduler.api.schemas import JobRequest, JobSpec, Problem, RunRequest
from scheduler.api.services import Services
from scheduler.api.ui import install as install_ui
from scheduler.beat import create_beat_app
from ttsbatch import __version__
from ttsbatch.errors import (
    BrokerError,
    InputError,
    StorageError,
    StoreAccessError,
    TtsBatchError,
)
from ttsbatch.settings import Settings
from ttsbatch.storage import Store

#: Retry-After (s) of a job refused because no worker serves it: about one heartbeat.
NO_WORKER_RETRY_AFTER = 10

DESCRIPTION = """Batch text-to-speech: submit documents or corpora, follow them, collect audio
with a word-level timeline. Every route but health and metrics needs
`Authorization: Bearer <key>` (or the session cookie of the web page at `/ui/`);
each key is a tenant that sees only its own jobs, runs and schedules."""


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    redis: redis.Redis | None = None,
    celery: Celery | None = None,
) -> FastAPI:
    """Return the API app; nothing connects until the first request.

    The app runs nothing in the background: webhook deliveries and the rescue
    of stalled jobs are the beat's (:mod:`scheduler.beat`), once per cluster.

    Args:
        settings: every setting (``settings.api`` for keys and limits).
        store: the job store (default: ``settings.store``).
        redis: a client with ``decode_responses=True`` (default: ``settings.redis_url``).
        celery: the producer that sends chunk tasks (default: one on ``settings.redis_url``).
    """
    services = Services.connect(settings, store=store, client=redis, producer=celery)
    app = FastAPI(title="ttsbatch", version=__version__, description=DESCRIPTION)
    app.state.services = services
    app.state.ports = ports_of(services)
    app.state.keyring = KeyRing(load_keys(settings.api))
    app.state.metrics = Metrics()
    app.state.beat = create_beat_app(settings)
    app.state.listening = Listening(services)
    for router in (health.router, jobs.router, documents.router, runs.router, schedules.router):
        app.include_router(router)
    install_ui(app)
    _add_error_handlers(app)
    _add_middleware(app, settings.api.max_request_bytes)
    _add_openapi(app)
    return app


def _problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = Problem(error=code, detail=detail).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
        headers = None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        elif exc.status == 503:
            headers = {"Retry-After": str(NO_WORKER_RETRY_AFTER)}
        return _problem(exc.status, exc.code, str(exc), headers)

    async def domain_error(request: Request, exc: Exception) -> Response:
        status, code = next(
            DOMAIN_STATUSES[cls] for cls in type(exc).__mro__ if cls in DOMAIN_STATUSES
        )
        return _problem(status, code, str(exc))

    async def input_error(request: Request, exc: Exception) -> Response:
        return _problem(422, "invalid_input", str(exc))

    async def storage_error(request: Request, exc: Exception) -> Response:
        return _problem(503, "store_unavailable", f"the store failed: {exc}; try again")

    async def store_access_error(request: Request, exc: Exception) -> Response:
        # The deployment's store settings are wrong: retrying will not help.
        return _problem(500, "store_misconfigured", f"the store refused access: {exc}")

    async def broker_error(request: Request, exc: Exception) -> Response:
        headers = {"Retry-After": str(NO_WORKER_RETRY_AFTER)}
        return _problem(503, "broker_unavailable", str(exc), headers)

    async def other_error(request: Request, exc: Exception) -> Response:
        return _problem(500, "internal", f"{type(exc).__name__}: {exc}")

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
        detail = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return _problem(422, "invalid_request", jsonable_encoder(detail))

    app.add_exception_handler(ApiError, api_error)
    for domain in DOMAIN_STATUSES:
        app.add_exception_handler(domain, domain_error)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(StorageError, storage_error)
    app.add_exception_handler(StoreAccessError, store_access_error)
    app.add_exception_handler(BrokerError, broker_error)
    app.add_exception_handler(TtsBatchError, other_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def _add_middleware(app: FastAPI, max_bytes: int) -> None:
    # Added last, the guard is outermost: a refused request is not measured (as before).
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    error: TooLargeError = too_large(max_bytes)
    refusal = _problem(error.status, error.code, str(error))
    app.add_middleware(BodySizeGuard, max_bytes=max_bytes, refusal=refusal)


def _add_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _, definitions = models_json_schema(
            [(JobRequest, "validation"), (RunRequest, "validation")],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(definitions["$defs"])
        components["JobUpload"] = _upload_schema()
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign] # FastAPI's documented way to extend it


def _upload_schema() -> dict[str, Any]:
    """The multipart form of ``POST /v1/jobs``: files plus the options as fields."""
    properties: dict[str, Any] = {
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "txt, md, html or epub files; each is a document of the job.",
        }
    }
    for name, field in JobSpec.model_fields.items():
        properties[name] = {"type": "string", "description": field.description or name}
    properties["tags"]["description"] = 'JSON object, e.g. {"project": "demo"}'
    properties["pauses"]["description"] = 'JSON object, e.g. {"sentence_ms": 200}'
    return {
        "type": "object",
        "required": ["files"],
        "properties": properties,
        "example": {"files": ["book.txt"], "engine": "espeak", "voice": "en-us"},
    }
