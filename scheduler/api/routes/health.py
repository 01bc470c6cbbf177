"""Liveness, readiness and metrics: no API key needed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scheduler.api.deps import ServicesDep
from scheduler.api.schemas import Health
from ttsbatch.errors import TtsBatchError
from ttsbatch.keys import manifest_key

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> Health:
    """Answer 200 while the process runs."""
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: Redis and the store are reachable",
    responses={503: {"model": Health, "description": "A dependency is unreachable."}},
)
def readyz(services: ServicesDep) -> JSONResponse:
    """Answer 200 when Redis answers PING and the store answers a lookup, else 503."""
    checks: dict[str, str] = {}
    try:
        services.state.client.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; it is reported
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    try:
        services.store.exists(manifest_key("readyz-probe"))
        checks["store"] = "ok"
    except (TtsBatchError, OSError) as exc:
        checks["store"] = f"unreachable: {exc}"
    ok = all(value == "ok" for value in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"example": "ttsbatch_api_requests_total 3.0"}}}
    },
)
def metrics(request: Request) -> Response:
    """Return the app's metrics in the Prometheus text format."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
