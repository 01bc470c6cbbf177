"""The app's plain ASGI middleware: the request-size guard and the request metrics."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from scheduler.api.metrics import Metrics
from scheduler.api.middleware import BodySizeGuard, RequestMetrics

from .conftest import AUTH_A, TestClient


def count(app: FastAPI, method: str, route: str, status: int) -> float:
    registry = app.state.metrics.registry
    labels = {"method": method, "route": route, "status": str(status)}
    return registry.get_sample_value("ttsbatch_api_requests_total", labels) or 0.0


def timed(app: FastAPI, method: str, route: str) -> float:
    labels = {"method": method, "route": route}
    registry = app.state.metrics.registry
    return registry.get_sample_value("ttsbatch_api_request_seconds_count", labels) or 0.0


def http_scope(headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {"type": "http", "method": "POST", "path": "/v1/jobs", "headers": headers or []}


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class Recorder:
    """An ASGI app that answers 200 in two body messages, and the messages sent onwards."""

    def __init__(self) -> None:
        self.called = 0
        self.sent: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called += 1
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            await send({"type": "http.response.body", "body": b"b"})

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def test_each_request_is_counted_by_method_route_template_and_status(
    app: FastAPI, client: TestClient
) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/v1/jobs/no-such-job", headers=AUTH_A).status_code == 404
    assert client.get("/v1/jobs/other-job", headers=AUTH_A).status_code == 404
    assert client.get("/nowhere").status_code == 404
    assert count(app, "GET", "/healthz", 200) == 1
    assert count(app, "GET", "/v1/jobs/{job_id}", 404) == 2
    assert timed(app, "GET", "/v1/jobs/{job_id}") == 2
    assert count(app, "GET", "unmatched", 404) == 1
    assert "ttsbatch_api_request_seconds_bucket" in client.get("/metrics").text


def test_a_body_announced_too_large_is_refused_before_the_app_reads_it() -> None:
    inner = Recorder()
    refusal = JSONResponse({"error": "request_too_large"}, status_code=413)
    guard = BodySizeGuard(inner, max_bytes=100, refusal=refusal)
    asyncio.run(guard(http_scope([(b"content-length", b"101")]), no_body, inner.send))
    assert inner.called == 0
    assert inner.sent[0]["status"] == 413 and b"request_too_large" in inner.sent[1]["body"]
    for headers in ([(b"content-length", b"100")], [(b"content-length", b"x")], []):
        asyncio.run(guard(http_scope(headers), no_body, inner.send))
    asyncio.run(guard({"type": "lifespan"}, no_body, inner.send))
    assert inner.called == 4


def test_a_response_passes_through_unchanged_and_is_timed_at_its_start() -> None:
    inner = Recorder()
    metrics = Metrics()
    measured = RequestMetrics(inner, metrics=metrics)
    asyncio.run(measured(http_scope(), no_body, inner.send))
    asyncio.run(measured({"type": "lifespan"}, no_body, inner.send))
    assert [m["type"] for m in inner.sent] == ["http.response.start", *["http.response.body"] * 2]
    assert [m.get("body") for m in inner.sent[1:]] == [b"a", b"b"]
    labels = {"method": "POST", "route": "unmatched", "status": "200"}
    assert metrics.registry.get_sample_value("ttsbatch_api_requests_total", labels) == 1
    assert inner.called == 2
