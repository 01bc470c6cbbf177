"""Webhooks: signatures, refused targets, retries with backoff, one call per finished job."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fastapi import FastAPI

from scheduler.webhooks import (
    SIGNATURE_HEADER,
    WebhookNotifier,
    WebhookRefusedError,
    backoff,
    check_target,
    deliver,
    sign,
    verify,
)
from ttsbatch.models import JobStatus

from .api import conftest as api_fixtures
from .api.conftest import AUTH_A, TestClient

make_app = api_fixtures.make_app  # the API tests' app factory, as a fixture here too

SECRET = b"s3cret"


class Receiver:
    """A real HTTP server answering a scripted list of statuses, recording requests."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Callable[[list[int]], Receiver]]:
    started: list[Receiver] = []

    def start(statuses: list[int]) -> Receiver:
        server = Receiver(statuses)
        threading.Thread(target=server.server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.server.shutdown()
        server.server.server_close()


def test_a_signature_verifies_only_for_its_body_and_secret() -> None:
    header = sign(SECRET, 1_700_000_000, b"{}")
    assert verify(SECRET, header, b"{}", tolerance=10**10)
    assert not verify(SECRET, header, b"{ }", tolerance=10**10)
    assert not verify(b"other", header, b"{}", tolerance=10**10)
    assert not verify(SECRET, header, b"{}", tolerance=60)  # too old
    assert not verify(SECRET, "garbage", b"{}")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8000/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "ftp://example.com/x",
    ],
)
def test_private_loopback_and_non_http_targets_are_refused(url: str) -> None:
    with pytest.raises(WebhookRefusedError):
        check_target(url, allow_private=False, resolve=lambda host: ["93.184.216.34"])


def test_a_name_resolving_to_a_private_address_is_refused_and_a_public_one_passes() -> None:
    with pytest.raises(WebhookRefusedError, match=r"10\.0\.0\.5"):
        check_target("https://hooks.example/x", allow_private=False, resolve=lambda h: ["10.0.0.5"])
    check_target(
        "https://hooks.example/x", allow_private=False, resolve=lambda h: ["93.184.216.34"]
    )
    check_target("http://127.0.0.1/x", allow_private=True)


def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    assert [backoff(n) for n in (1, 2, 3, 7, 20)] == [1, 2, 4, 60, 60]


def test_a_delivery_is_retried_after_5xx_with_backoff_and_signed(
    receiver: Callable[[list[int]], Receiver],
) -> None:
    target = receiver([503, 500, 200])
    waits: list[float] = []
    with httpx.Client() as client:
        ok = deliver(
            client,
            target.url,
            "job.succeeded",
            {"id": "j1"},
            secret=SECRET,
            attempts=5,
            sleep=waits.append,
        )
    assert ok and waits == [1.0, 2.0] and len(target.received) == 3
    headers, body = target.received[-1]
    assert json.loads(body) == {"id": "j1"}
    assert verify(SECRET, headers[SIGNATURE_HEADER], body)
    assert headers["X-Ttsbatch-Event"] == "job.succeeded"


def test_a_delivery_stops_at_a_4xx_and_after_its_attempts(
    receiver: Callable[[list[int]], Receiver],
) -> None:
    refused = receiver([400])
    failing = receiver([500] * 10)
    with httpx.Client() as client:
        assert not deliver(
            client, refused.url, "e", {}, secret=SECRET, attempts=5, sleep=lambda s: None
        )
        assert not deliver(
            client, failing.url, "e", {}, secret=SECRET, attempts=3, sleep=lambda s: None
        )
    assert len(refused.received) == 1 and len(failing.received) == 3


def test_a_finished_job_calls_its_webhook_once_and_a_cancelled_one_not_at_all(
    make_app: Callable[..., FastAPI], receiver: Callable[[list[int]], Receiver]
) -> None:
    target = receiver([])
    app = make_app(webhook_allow_private=True, webhook_secret=SECRET.decode())
    services = app.state.services
    with TestClient(app) as client:
        ids = [
            client.post(
                "/v1/jobs",
                json={"input": f"Job {n}.", "webhook_url": target.url, "tags": {"n": str(n)}},
                headers=AUTH_A,
            ).json()["id"]
            for n in range(3)
        ]
    notifier = WebhookNotifier(services, sleep=lambda s: None)
    try:
        assert notifier.run_once(wait=True) == 0  # all still running
        services.state.finish(ids[0], JobStatus.SUCCEEDED)
        services.state.fail(ids[1], "provider said no")
        services.state.cancel(ids[2])
        assert notifier.run_once(wait=True) == 2
        assert notifier.run_once(wait=True) == 0
    finally:
        notifier.stop()
    calls = {
        json.loads(body)["id"]: (headers, json.loads(body)) for headers, body in target.received
    }
    assert set(calls) == {ids[0], ids[1]}
    assert calls[ids[0]][1]["status"] == "succeeded" and calls[ids[0]][1]["tags"] == {"n": "0"}
    assert (
        calls[ids[1]][1]["status"] == "failed" and "provider said no" in calls[ids[1]][1]["error"]
    )
    headers, body = target.received[0]
    assert verify(SECRET, headers[SIGNATURE_HEADER], body)
