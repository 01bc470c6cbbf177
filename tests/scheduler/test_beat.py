"""The beat's app: its periodic scans, its broker settings, and its tasks in a real worker.

The worker is Celery's test worker on a threads pool, in this process, on a
real Redis (never eager mode); the receiver is a real HTTP server.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from fastapi import FastAPI
from pydantic import SecretStr

from scheduler.beat import (
    BEAT_QUEUES,
    BEAT_SCHEDULER,
    DELIVER_WEBHOOK,
    RESCUE_STALLED,
    SCAN_WEBHOOKS,
    WEBHOOK_QUEUE,
    create_beat_app,
    visibility_timeout,
)
from scheduler.ports import Ports
from scheduler.schedules import SCHEDULED_RUN
from scheduler.webhooks import ID_HEADER, WebhookDelivery, signing_key, verify
from ttsbatch.models import JobStatus
from ttsbatch.settings import ApiSettings, Settings

from .api import conftest as api_fixtures
from .api.conftest import AUTH_A, TestClient
from .receiver import Receiver, receiving

make_app = api_fixtures.make_app  # the API tests' app factory, as a fixture here too

SECRET = "whsec_c2VjcmV0LWtleS1vZi10aGUtdGVzdA=="  # noqa: S105 - a test key


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
    return value


@pytest.fixture
def receiver() -> Iterator[Callable[[list[int]], Receiver]]:
    with ExitStack() as stack:
        yield lambda statuses: stack.enter_context(receiving(statuses))


def beat_settings(redis_url: str, store_url: str = "", **api: Any) -> Settings:
    return Settings(
        redis_url=redis_url,
        store=store_url,
        api=ApiSettings(webhook_secret=SecretStr(SECRET), webhook_allow_private=True, **api),
    )


def test_the_beat_scans_for_stalled_jobs_and_due_webhooks_and_consumes_its_two_queues() -> None:
    app = create_beat_app(beat_settings("redis://127.0.0.1:1/0"))
    entries = {entry["task"]: entry for entry in app.conf.beat_schedule.values()}
    assert entries[RESCUE_STALLED]["schedule"] == 5.0
    assert entries[SCAN_WEBHOOKS]["schedule"] == 2.0
    assert all(entry["options"]["expires"] for entry in entries.values())
    assert WEBHOOK_QUEUE in BEAT_QUEUES and app.conf.beat_scheduler == BEAT_SCHEDULER
    assert not app.tasks.keys() & {DELIVER_WEBHOOK, SCHEDULED_RUN}  # the API's copy sends only


def test_a_killed_beats_deliveries_return_after_a_short_timeout_on_the_beats_own_keys() -> None:
    # 5 attempts: the longest countdown is 8 s, a POST 10 s; doubled.
    assert visibility_timeout(5) == 36.0 and visibility_timeout(1) == 20.0
    app = create_beat_app(beat_settings("redis://127.0.0.1:1/0", webhook_attempts=5))
    options = app.conf.broker_transport_options
    assert options["visibility_timeout"] == 36.0
    # kombu's sweep re-queues every message of its keys older than its timeout:
    # the workers' chunks (minutes) must not be swept by the beat.
    assert {
        options[k] for k in ("unacked_key", "unacked_index_key", "unacked_mutex_key")
    }.isdisjoint({"unacked", "unacked_index", "unacked_mutex"})
    assert options["unacked_restore_interval"] <= 10


def no_ports() -> Ports:
    raise AssertionError("a delivery needs no ports")


def worker_of(app: Celery, *, concurrency: int = 2) -> Any:
    return start_worker(
        app,
        pool="threads",
        concurrency=concurrency,
        perform_ping_check=False,
        shutdown_timeout=10,
        queues=list(BEAT_QUEUES),
    )


def test_a_delivery_answered_503_is_retried_until_it_arrives_with_the_same_id_every_time(
    redis_db_url: str, receiver: Callable[[list[int]], Receiver]
) -> None:
    target = receiver([503, 500])
    settings = beat_settings(redis_db_url, webhook_attempts=3)
    app = create_beat_app(settings, connect=no_ports, retry_delay=lambda attempt: 0.05)
    assert app.tasks[DELIVER_WEBHOOK].max_retries == 2
    delivery = WebhookDelivery(
        id="job_j1_succeeded_1", url=target.url, event="job.succeeded", payload={"id": "j1"}
    )
    with worker_of(app):
        app.send_task(DELIVER_WEBHOOK, kwargs={"delivery": delivery.encode()}, queue=WEBHOOK_QUEUE)
        wait_until(target.delivered, timeout=20, what="the third attempt")
    requests = target.requests()
    assert [status for _, _, status in requests] == [503, 500, 200]
    assert {headers[ID_HEADER] for headers, _, _ in requests} == {delivery.id}
    for headers, body, _ in requests:
        assert verify(signing_key(SECRET), headers, body)


def test_a_delivery_gives_up_after_its_attempts(
    redis_db_url: str, receiver: Callable[[list[int]], Receiver]
) -> None:
    failing = receiver([503] * 10)
    after = receiver([])
    app = create_beat_app(
        beat_settings(redis_db_url, webhook_attempts=2), connect=no_ports, retry_delay=lambda n: 0
    )

    def send(url: str) -> None:
        delivery = WebhookDelivery(id=url, url=url, event="job.failed", payload={})
        app.send_task(DELIVER_WEBHOOK, kwargs={"delivery": delivery.encode()}, queue=WEBHOOK_QUEUE)

    with worker_of(app, concurrency=1):
        send(failing.url)
        wait_until(lambda: len(failing.requests()) == 2, timeout=20, what="two attempts")
        # A third attempt would be queued before this delivery, and one thread takes them in order.
        send(after.url)
        wait_until(after.delivered, timeout=20, what="the next delivery")
    assert len(failing.requests()) == 2


def test_the_scan_task_enqueues_what_the_worker_delivers_and_the_rescue_task_calls_rescue(
    make_app: Callable[..., FastAPI],
    redis_db_url: str,
    receiver: Callable[[list[int]], Receiver],
) -> None:
    target = receiver([])
    api = make_app(webhook_allow_private=True)
    rescues: list[str] = []
    ports = dataclasses.replace(api.state.ports, rescue=lambda: rescues.append("rescued"))
    with TestClient(api) as client:
        job_id = client.post(
            "/v1/jobs", json={"input": "Hello.", "webhook_url": target.url}, headers=AUTH_A
        ).json()["id"]
    ports.state.finish(job_id, JobStatus.SUCCEEDED)
    app = create_beat_app(beat_settings(redis_db_url), connect=lambda: ports)
    with worker_of(app):
        app.send_task(RESCUE_STALLED)
        for _ in range(2):  # the second scan finds the delivery enqueued already
            app.send_task(SCAN_WEBHOOKS)
        ((headers, body),) = wait_until(target.delivered, timeout=20, what="the webhook")
        wait_until(lambda: rescues, timeout=20, what="the rescue")
    assert headers["X-Ttsbatch-Event"] == "job.succeeded"
    assert headers[ID_HEADER].startswith(f"job_{job_id}_succeeded_")
    assert verify(signing_key(SECRET), headers, body)
    assert len(target.requests()) == 1
