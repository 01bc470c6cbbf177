"""Auth and tenant isolation: no key, no access; another tenant's ids answer 404."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import FastAPI

from ttsbatch.storage.s3 import S3Store

from .conftest import AUTH_A, AUTH_B, TestClient

OPEN = {"/healthz", "/readyz", "/metrics"}


def test_every_non_health_route_without_a_key_or_with_a_wrong_one_answers_401(
    app: FastAPI, client: TestClient
) -> None:
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path))
        for path, item in app.openapi()["paths"].items()
        if path not in OPEN
        for method in item
    ]
    assert len(operations) >= 14
    for method, path in operations:
        for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": "Basic a"}):
            answer = client.request(method, path, headers=headers)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["WWW-Authenticate"] == "Bearer"
            assert answer.json()["error"] == "unauthorized"


def test_health_readiness_and_metrics_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz").json()
    assert ready == {"status": "ok", "checks": {"redis": "ok", "store": "ok"}}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "ttsbatch_api_requests_total" in metrics.text


def test_readiness_answers_503_naming_redis_when_it_is_unreachable(
    make_app: Callable[..., FastAPI],
) -> None:
    import redis  # noqa: PLC0415

    app = make_app()
    app.state.services.state.client.connection_pool = redis.ConnectionPool.from_url(
        "redis://127.0.0.1:1/0", decode_responses=True
    )
    with TestClient(app) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.json()["checks"]["redis"].startswith("unreachable")


def test_tenant_a_gets_404_for_tenant_bs_job_run_and_schedule(
    make_app: Callable[..., FastAPI], s3_store: S3Store
) -> None:
    s3_store.write("corpus/one.txt", b"One document.")
    app = make_app(store=s3_store, source_buckets=s3_store.bucket)
    with TestClient(app) as client:
        job = client.post("/v1/jobs", json={"input": "Hello there."}, headers=AUTH_B).json()["id"]
        run = client.post(
            "/v1/runs", json={"documents": [{"name": "a", "text": "Hi."}]}, headers=AUTH_B
        ).json()["id"]
        source = f"s3://{s3_store.bucket}/t/corpus/"
        schedule = client.post(
            "/v1/schedules", json={"cron": "0 2 * * *", "source": source}, headers=AUTH_B
        )
        assert schedule.status_code == 201, schedule.text
        schedule_id = schedule.json()["id"]
        for method, path in [
            ("GET", f"/v1/jobs/{job}"),
            ("DELETE", f"/v1/jobs/{job}"),
            ("POST", f"/v1/jobs/{job}/retry"),
            ("GET", f"/v1/jobs/{job}/result"),
            ("GET", f"/v1/jobs/{job}/events"),
            ("GET", f"/v1/jobs/{job}/files/manifest.json"),
            ("GET", f"/v1/runs/{run}"),
            ("GET", f"/v1/schedules/{schedule_id}"),
            ("POST", f"/v1/schedules/{schedule_id}/run"),
            ("DELETE", f"/v1/schedules/{schedule_id}"),
        ]:
            assert client.request(method, path, headers=AUTH_A).status_code == 404, path
        for kind, count in {"jobs": 2, "runs": 1, "schedules": 1}.items():  # the run's job too
            assert client.get(f"/v1/{kind}", headers=AUTH_A).json()["items"] == []
            assert len(client.get(f"/v1/{kind}", headers=AUTH_B).json()["items"]) == count
        assert client.get(f"/v1/jobs/{job}", headers=AUTH_B).status_code == 200
