"""Redis loss loses no listing: after a flush the API lists the same jobs, runs and schedules.

The tenant index in Redis is rebuilt from the records in the store (each job's
``api.json``, each run's and schedule's record) the first time it is needed.
The tests flush their own Redis database (``FLUSHDB``: the server is shared;
the integration test flushes a server of its own with ``FLUSHALL``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import redis
from fastapi import FastAPI

from scheduler.api.auth import tenant_of
from scheduler.intake import PLAN_QUEUE
from ttsbatch import keys
from ttsbatch.models import JobStatus
from ttsbatch.storage.local import LocalStore
from ttsbatch.storage.s3 import S3Store

from .conftest import AUTH_A, AUTH_B, KEY_A, TestClient, planner_of, pretend_worker


def flush(redis_url: str) -> None:
    """Lose everything Redis held; the pretend worker announces itself again."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    pretend_worker(redis_url).client.close()


def listing(client: TestClient, kind: str, auth: dict[str, str]) -> list[dict[str, object]]:
    page = client.get(f"/v1/{kind}?limit=200", headers=auth)
    assert page.status_code == 200, page.text
    items: list[dict[str, object]] = page.json()["items"]
    return items


def test_after_a_flush_the_api_lists_the_same_jobs_runs_and_schedules(
    make_app: Callable[..., FastAPI], s3_store: S3Store, redis_db_url: str
) -> None:
    s3_store.write("corpus/a.txt", b"Document a says hello.")
    app = make_app(store=s3_store, source_buckets=s3_store.bucket)
    source = f"s3://{s3_store.bucket}/t/corpus/"
    with TestClient(app) as client:
        for n in range(3):
            body = {"input": f"Job {n} speaks.", "name": f"job{n}", "tags": {"n": str(n)}}
            assert client.post("/v1/jobs", json=body, headers=AUTH_A).status_code == 202
        docs = [{"name": "d", "text": "A run's document."}]
        assert client.post("/v1/runs", json={"documents": docs}, headers=AUTH_B).status_code == 202
        schedule = client.post(
            "/v1/schedules", json={"cron": "0 2 * * *", "source": source}, headers=AUTH_A
        )
        assert schedule.status_code == 201, schedule.text
        run = client.post(f"/v1/schedules/{schedule.json()['id']}/run", headers=AUTH_A)
        assert run.status_code == 202, run.text
        before = {
            (kind, key): listing(client, kind, auth)
            for kind in ("jobs", "runs", "schedules")
            for key, auth in (("a", AUTH_A), ("b", AUTH_B))
        }

        flush(redis_db_url)
        after = {
            (kind, key): listing(client, kind, auth)
            for kind in ("jobs", "runs", "schedules")
            for key, auth in (("a", AUTH_A), ("b", AUTH_B))
        }
        for where, items in before.items():
            assert [i["id"] for i in after[where]] == [i["id"] for i in items], where
        assert len(after["jobs", "a"]) == 4 and len(after["jobs", "b"]) == 1  # runs' jobs too
        assert len(after["runs", "a"]) == len(after["runs", "b"]) == 1
        for job in after["jobs", "a"]:
            shown = next(i for i in before["jobs", "a"] if i["id"] == job["id"])
            same = ("name", "tags", "documents", "options", "run_id", "created_at")
            assert {k: job[k] for k in same} == {k: shown[k] for k in same}
        assert client.get("/v1/jobs?tag=n=1", headers=AUTH_A).json()["items"][0]["tags"] == {
            "n": "1"
        }
        schedule_id = schedule.json()["id"]
        shown = client.get(f"/v1/schedules/{schedule_id}", headers=AUTH_A)
        assert shown.status_code == 200 and shown.json()["runs"] == [run.json()["id"]]
        assert client.get(f"/v1/schedules/{schedule_id}", headers=AUTH_B).status_code == 404


def test_a_job_accepted_but_not_planned_when_redis_was_lost_is_queued_again(
    make_app: Callable[..., FastAPI], redis_db_url: str
) -> None:
    app = make_app(plan_here=False)
    with TestClient(app) as client:
        job_id = client.post("/v1/jobs", json={"input": "Never planned."}, headers=AUTH_A).json()[
            "id"
        ]
        flush(redis_db_url)  # its planning message is gone with the rest
        (job,) = listing(client, "jobs", AUTH_A)
        assert job["id"] == job_id and job["status"] == "queued"
        broker = redis.Redis.from_url(redis_db_url)
        try:
            assert broker.llen(PLAN_QUEUE) == 1  # sent again by the rebuild
        finally:
            broker.close()
        assert planner_of(app)(job_id) is JobStatus.RUNNING
        assert client.get(f"/v1/jobs/{job_id}", headers=AUTH_A).json()["status"] == "running"


def test_a_job_recorded_before_records_kept_its_options_is_listed_from_its_manifest(
    make_app: Callable[..., FastAPI], local_store: LocalStore, redis_db_url: str
) -> None:
    with TestClient(make_app()) as client:
        job = client.post("/v1/jobs", json={"input": "Old.", "name": "old"}, headers=AUTH_A)
        shown = job.json()
        old = {"tenant": tenant_of(KEY_A), "name": "old", "tags": {"k": "v"}}
        local_store.write(keys.job_prefix(shown["id"]) + "api.json", json.dumps(old).encode())
        flush(redis_db_url)
        (listed,) = listing(client, "jobs", AUTH_A)
    assert listed["id"] == shown["id"] and listed["tags"] == {"k": "v"}
    assert listed["created_at"] is not None and listed["documents"] == ["old"]


def test_a_healthy_index_is_not_rebuilt_and_a_flushed_one_once(
    make_app: Callable[..., FastAPI], local_store: LocalStore, redis_db_url: str
) -> None:
    with TestClient(make_app()) as client:
        job_id = client.post("/v1/jobs", json={"input": "One."}, headers=AUTH_A).json()["id"]
        local_store.delete([keys.job_prefix(job_id) + "api.json"])
        assert [j["id"] for j in listing(client, "jobs", AUTH_A)] == [job_id]  # Redis is the index
        flush(redis_db_url)
        assert listing(client, "jobs", AUTH_A) == []  # rebuilt: the store no longer records it
