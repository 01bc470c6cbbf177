"""The app's own middleware, as plain ASGI: the request-size guard and the request metrics.

Plain ASGI rather than ``@app.middleware("http")`` (Starlette's
``BaseHTTPMiddleware``): that runs the rest of the app in a task of its own and
passes the response through a memory stream, which cost each request about a
millisecond of CPU on this project's 2 shared cores (``bench/bench_api.py``).
These pass every message straight on and only look at the response's start.
"""

from __future__ import annotations

import time

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.api.metrics import Metrics


class BodySizeGuard:
    """Refuse a request whose ``Content-Length`` exceeds ``max_bytes`` before reading it.

    A body without ``Content-Length`` (chunked) is counted as it is read, by
    the routes; this only spares reading a body announced as too large.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, refusal: Response) -> None:
        """Wrap ``app``; ``refusal`` (a 413 problem) answers each refused request."""
        self.app = app
        self.max_bytes = max_bytes
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``refusal`` to an HTTP request announced as too large, else pass it on."""
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if value.isdigit() and int(value) > self.max_bytes:
                        await self.refusal(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


class RequestMetrics:
    """Count each HTTP request by method, route and status, and time it to its response's start.

    The route is the matched route's path (``/v1/jobs/{job_id}``, not the
    URL), ``unmatched`` when none matched, so the labels stay few. A request
    that raised past the exception handlers (a 500 answered by the server's
    last resort) is not counted.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        """Wrap ``app``, recording into ``metrics``."""
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and record it when its response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_measured(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", "unmatched")
                self.metrics.observe(scope["method"], route, message["status"], elapsed)
            await send(message)

        await self.app(scope, receive, send_measured)
