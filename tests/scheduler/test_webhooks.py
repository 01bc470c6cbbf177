"""Webhooks: Standard Webhooks signatures, refused targets, one attempt, the scan that enqueues."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest
from fastapi import FastAPI

from scheduler.api.registry import JobEntry
from scheduler.ports import Ports
from scheduler.webhooks import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Outcome,
    WebhookDelivery,
    WebhookRefusedError,
    backoff,
    check_target,
    deliver,
    outcome_of,
    scan,
    sign,
    signing_key,
    verify,
)
from ttsbatch.models import JobStatus

from .api import conftest as api_fixtures
from .api.conftest import AUTH_A, TestClient
from .receiver import Receiver, receiving

make_app = api_fixtures.make_app  # the API tests' app factory, as a fixture here too

KEY = b"s3cret"


@pytest.fixture
def receiver() -> Iterator[Callable[[list[int]], Receiver]]:
    with ExitStack() as stack:
        yield lambda statuses: stack.enter_context(receiving(statuses))


def a_delivery(url: str, **fields: object) -> WebhookDelivery:
    return WebhookDelivery.model_validate(
        {"id": "job_j1_succeeded_1", "url": url, "event": "job.succeeded", "payload": {"id": "j1"}}
        | fields
    )


# -- signatures -----------------------------------------------------------------


def test_the_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # The example of the Standard Webhooks specification (and of its libraries' tests).
    key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_secret_without_the_whsec_prefix_is_used_as_its_bytes() -> None:
    assert signing_key("s3cret") == b"s3cret"
    assert signing_key("whsec_" + base64.b64encode(b"raw key").decode()) == b"raw key"
    assert signing_key("whsec_not base64!") == b"whsec_not base64!"


def test_a_signature_verifies_only_for_its_id_timestamp_body_and_key() -> None:
    now = 1_700_000_000
    headers = {
        ID_HEADER: "msg_1",
        TIMESTAMP_HEADER: str(now),
        SIGNATURE_HEADER: sign(KEY, "msg_1", now, b"{}"),
    }
    assert verify(KEY, headers, b"{}", now=now)
    assert verify(KEY, {k.title(): v for k, v in headers.items()}, b"{}", now=now)
    assert not verify(KEY, headers, b"{ }", now=now)
    assert not verify(b"other", headers, b"{}", now=now)
    assert not verify(KEY, {**headers, ID_HEADER: "msg_2"}, b"{}", now=now)
    assert not verify(KEY, headers, b"{}", now=now + 301)  # too old
    assert not verify(KEY, {**headers, TIMESTAMP_HEADER: "soon"}, b"{}", now=now)
    rotated = {**headers, SIGNATURE_HEADER: f"v1,bm9wZQ== {headers[SIGNATURE_HEADER]}"}
    assert verify(KEY, rotated, b"{}", now=now)


# -- targets --------------------------------------------------------------------


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


# -- one attempt ----------------------------------------------------------------


def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    assert [backoff(n) for n in (1, 2, 3, 7, 20)] == [1, 2, 4, 60, 60]


def test_5xx_408_425_429_and_network_errors_are_retried_other_answers_are_final() -> None:
    assert outcome_of(200) is outcome_of(204) is Outcome.DELIVERED
    assert {outcome_of(s) for s in (500, 502, 503, 408, 425, 429)} == {Outcome.RETRY}
    assert {outcome_of(s) for s in (301, 400, 401, 404, 410, 422)} == {Outcome.REFUSED}


def test_an_attempt_posts_the_payload_signed_with_the_standard_webhooks_headers(
    receiver: Callable[[list[int]], Receiver],
) -> None:
    target = receiver([503])
    delivery = a_delivery(target.url)
    with httpx.Client() as client:
        attempt = [
            deliver(client, delivery, key=KEY, allow_private=True, clock=lambda: 1_700_000_000.0)
            for _ in range(2)
        ]
    assert attempt == [Outcome.RETRY, Outcome.DELIVERED]
    for headers, body, _ in target.requests():
        assert json.loads(body) == {"id": "j1"}
        assert headers[ID_HEADER] == "job_j1_succeeded_1"
        assert headers[TIMESTAMP_HEADER] == "1700000000"
        assert headers[EVENT_HEADER] == "job.succeeded"
        assert verify(KEY, headers, body, now=1_700_000_000)


def test_a_refused_target_is_final_without_a_request_and_a_dead_one_is_retried(
    receiver: Callable[[list[int]], Receiver],
) -> None:
    target = receiver([])
    with httpx.Client(timeout=2) as client:
        refused = deliver(client, a_delivery(target.url), key=KEY, allow_private=False)
        dead = deliver(client, a_delivery("http://127.0.0.1:9/x"), key=KEY, allow_private=True)
    assert refused is Outcome.REFUSED and not target.received
    assert dead is Outcome.RETRY


# -- the scan -------------------------------------------------------------------


def submit_three(client: TestClient, url: str) -> list[str]:
    return [
        client.post(
            "/v1/jobs",
            json={"input": f"Job {n}.", "webhook_url": url, "tags": {"n": str(n)}},
            headers=AUTH_A,
        ).json()["id"]
        for n in range(3)
    ]


def test_a_scan_enqueues_one_delivery_per_ended_job_once_and_none_for_a_cancelled_one(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(webhook_allow_private=True)
    ports: Ports = app.state.ports
    enqueued: list[WebhookDelivery] = []
    with TestClient(app) as client:
        ids = submit_three(client, "http://127.0.0.1:9/hook")
    assert scan(ports, enqueued.append) == 0  # all still running
    ports.state.finish(ids[0], JobStatus.SUCCEEDED)
    ports.state.fail(ids[1], "provider said no")
    ports.state.cancel(ids[2])
    assert scan(ports, enqueued.append) == 2
    assert scan(ports, enqueued.append) == 0
    by_job = {delivery.payload["id"]: delivery for delivery in enqueued}
    assert set(by_job) == {ids[0], ids[1]}
    succeeded, failed = by_job[ids[0]], by_job[ids[1]]
    assert succeeded.event == "job.succeeded" and succeeded.payload["tags"] == {"n": "0"}
    assert succeeded.payload["status"] == "succeeded"
    assert failed.event == "job.failed" and "provider said no" in failed.payload["error"]
    assert succeeded.id.startswith(f"job_{ids[0]}_succeeded_") and succeeded.id != failed.id
    assert ports.index.webhook_jobs() == []


def test_a_failed_enqueue_is_enqueued_by_the_next_scan_with_the_same_id(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(webhook_allow_private=True)
    ports: Ports = app.state.ports
    with TestClient(app) as client:
        job_id = submit_three(client, "http://127.0.0.1:9/hook")[0]
    ports.state.finish(job_id, JobStatus.SUCCEEDED)

    def broken(delivery: WebhookDelivery) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        scan(ports, broken)
    enqueued: list[WebhookDelivery] = []
    assert scan(ports, enqueued.append) == 1
    assert scan(ports, enqueued.append) == 0
    (delivery,) = enqueued
    assert delivery.payload["id"] == job_id


def test_a_job_that_ends_again_after_a_retry_is_a_new_event_with_a_new_id(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(webhook_allow_private=True)
    ports: Ports = app.state.ports
    enqueued: list[WebhookDelivery] = []
    with TestClient(app) as client:
        job_id = submit_three(client, "http://127.0.0.1:9/hook")[0]
        ports.state.fail(job_id, "first try")
        assert scan(ports, enqueued.append) == 1
        assert client.post(f"/v1/jobs/{job_id}/retry", headers=AUTH_A).status_code == 202
    ports.state.fail(job_id, "second try")
    assert scan(ports, enqueued.append) == 1
    first, second = enqueued
    assert first.event == second.event == "job.failed" and first.id != second.id


def test_a_job_that_failed_before_it_was_planned_still_gets_its_webhook(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(webhook_allow_private=True)
    ports: Ports = app.state.ports
    entry = JobEntry(job_id="j-unplanned", tenant="a", name="n", webhook_url="http://127.0.0.1:9/")
    app.state.services.registry.add_job(entry)
    ports.state.set_status(entry.job_id, JobStatus.FAILED, error="unreadable", only_if_active=False)
    enqueued: list[WebhookDelivery] = []
    assert scan(ports, enqueued.append) == 1
    (delivery,) = enqueued
    assert delivery.event == "job.failed" and delivery.id == "job_j-unplanned_failed_0"
