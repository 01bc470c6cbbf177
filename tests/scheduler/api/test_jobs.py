"""Jobs over the API: submit, show, list, cancel, retry, idempotency, limits."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
import redis
from fastapi import FastAPI
from starlette.testclient import TestClient

from scheduler.api import create_app
from scheduler.ingest import ingest_bytes
from scheduler.intake import PLAN_QUEUE
from scheduler.records import read_job_record
from ttsbatch import keys
from ttsbatch.errors import InputError
from ttsbatch.models import JobStatus
from ttsbatch.storage.local import LocalStore

from .conftest import AUTH_A, AUTH_B, api_settings, planner_of

TEXT = "It was a bright cold day in April. The clocks were striking thirteen."


def submit(client: TestClient, auth: dict[str, str] = AUTH_A, **body: object):
    return client.post("/v1/jobs", json={"input": TEXT, "name": "opening", **body}, headers=auth)


def queued(redis_url: str, queue: str) -> int:
    """Messages waiting in a broker queue."""
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def test_a_submitted_job_is_accepted_queued_with_its_input_stored_then_planned_by_the_planner(
    make_app: Callable[..., FastAPI], local_store: LocalStore, redis_db_url: str
) -> None:
    app = make_app(plan_here=False)
    with TestClient(app) as client:
        response = submit(client, tags={"project": "demo"})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["status"] == "queued" and job["documents"] == ["opening"]
        assert job["name"] == "opening" and job["tags"] == {"project": "demo"}
        assert job["progress"]["chunks_total"] == 0 and job["options"]["engine"]["engine"]
        record = read_job_record(local_store, job["id"])
        assert record is not None and record.inputs[0].text == TEXT
        assert not local_store.exists(keys.manifest_key(job["id"]))
        assert queued(redis_db_url, PLAN_QUEUE) == 1  # for ttsbatch beat
        assert client.get(f"/v1/jobs/{job['id']}", headers=AUTH_A).json() == job
        assert [j["id"] for j in client.get("/v1/jobs", headers=AUTH_A).json()["items"]] == [
            job["id"]
        ]

        assert planner_of(app)(job["id"]) is JobStatus.RUNNING
        shown = client.get(f"/v1/jobs/{job['id']}", headers=AUTH_A).json()
        assert shown["status"] == "running" and shown["progress"]["chunks_total"] >= 1
        assert shown["created_at"] == job["created_at"]
        assert local_store.exists(keys.manifest_key(job["id"]))


def test_the_same_job_submitted_again_while_queued_is_not_queued_twice(
    make_app: Callable[..., FastAPI], redis_db_url: str
) -> None:
    with TestClient(make_app(plan_here=False)) as client:
        first = submit(client, tags={"a": "1"}).json()
        again = submit(client, tags={"b": "2"}).json()
        keyed = {**AUTH_A, "Idempotency-Key": "k1"}
        by_key = [client.post("/v1/jobs", json={"input": TEXT}, headers=keyed) for _ in range(2)]
    assert again["id"] == first["id"] and again["tags"] == {"a": "1", "b": "2"}
    assert by_key[0].json()["id"] == by_key[1].json()["id"] != first["id"]
    assert by_key[1].json()["status"] == "queued"
    assert queued(redis_db_url, PLAN_QUEUE) == 2  # one per job


def test_an_upload_that_cannot_be_read_is_accepted_then_fails_saying_why(
    make_app: Callable[..., FastAPI],
) -> None:
    broken = b"PK\x03\x04 no zip archive at all"
    with pytest.raises(InputError) as ingested:
        ingest_bytes(broken, "book.epub")
    why = str(ingested.value)
    app = make_app(plan_here=False)
    with TestClient(app) as client:
        files = [("files", ("book.epub", broken, "application/epub+zip"))]
        job = client.post("/v1/jobs", files=files, headers=AUTH_A).json()
        assert job["status"] == "queued"
        assert planner_of(app)(job["id"]) is JobStatus.FAILED
        shown = client.get(f"/v1/jobs/{job['id']}", headers=AUTH_A).json()
        assert shown["status"] == "failed" and shown["error"] == why
        events = client.get(f"/v1/jobs/{job['id']}/events", headers=AUTH_A).text
        assert events.startswith("event: end\n") and '"failed"' in events
        retried = client.post(f"/v1/jobs/{job['id']}/retry", headers=AUTH_A)
        assert retried.status_code == 202 and retried.json()["status"] == "queued"
        assert planner_of(app)(job["id"]) is JobStatus.FAILED  # the same input fails the same way
        empty = client.post(
            "/v1/jobs", files=[("files", ("e.txt", b" ", "text/plain"))], headers=AUTH_A
        )
        assert empty.status_code == 422 and "e.txt: the file is empty" in empty.json()["detail"]


def test_a_job_cancelled_before_it_is_planned_stays_cancelled(
    make_app: Callable[..., FastAPI], local_store: LocalStore
) -> None:
    app = make_app(plan_here=False)
    with TestClient(app) as client:
        job_id = submit(client).json()["id"]
        assert client.delete(f"/v1/jobs/{job_id}", headers=AUTH_A).status_code == 204
        assert planner_of(app)(job_id) is None
        shown = client.get(f"/v1/jobs/{job_id}", headers=AUTH_A).json()
        assert shown["status"] == "cancelled" and shown["error"] == "cancelled by the user"
        assert not local_store.exists(keys.manifest_key(job_id))
        retried = client.post(f"/v1/jobs/{job_id}/retry", headers=AUTH_A)
        assert retried.status_code == 202 and retried.json()["status"] == "queued"
        assert planner_of(app)(job_id) is JobStatus.RUNNING


def test_the_same_text_from_two_tenants_is_two_jobs_and_each_sees_only_its_own(
    client: TestClient,
) -> None:
    a = submit(client).json()["id"]
    b = submit(client, AUTH_B).json()["id"]
    assert a != b
    assert client.get(f"/v1/jobs/{b}", headers=AUTH_A).status_code == 404
    assert [j["id"] for j in client.get("/v1/jobs", headers=AUTH_A).json()["items"]] == [a]


def test_an_idempotency_key_returns_the_first_job_and_refuses_another_body(
    client: TestClient,
) -> None:
    headers = {**AUTH_A, "Idempotency-Key": "k1"}
    first = client.post("/v1/jobs", json={"input": TEXT}, headers=headers)
    again = client.post("/v1/jobs", json={"input": TEXT}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = client.post("/v1/jobs", json={"input": TEXT + " More."}, headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]


def test_jobs_are_listed_newest_first_in_pages_and_filtered_by_tag_and_status(
    client: TestClient,
) -> None:
    ids = [
        submit(client, input=f"Sentence number {n}.", tags={"n": str(n % 2)}).json()["id"]
        for n in range(5)
    ]
    page = client.get("/v1/jobs?limit=2", headers=AUTH_A).json()
    assert [j["id"] for j in page["items"]] == ids[::-1][:2] and page["next_offset"] == 2
    tagged = client.get("/v1/jobs?tag=n=1&limit=50", headers=AUTH_A).json()["items"]
    assert sorted(j["id"] for j in tagged) == sorted(ids[1::2])
    assert client.get("/v1/jobs?status=succeeded", headers=AUTH_A).json()["items"] == []
    assert len(client.get("/v1/jobs?status=running", headers=AUTH_A).json()["items"]) == 5


def test_a_cancelled_job_says_so_and_a_purged_one_is_gone_from_store_and_api(
    client: TestClient, local_store: LocalStore
) -> None:
    job_id = submit(client).json()["id"]
    assert client.delete(f"/v1/jobs/{job_id}", headers=AUTH_A).status_code == 204
    assert client.get(f"/v1/jobs/{job_id}", headers=AUTH_A).json()["status"] == "cancelled"
    assert client.delete(f"/v1/jobs/{job_id}?purge=true", headers=AUTH_A).status_code == 204
    assert client.get(f"/v1/jobs/{job_id}", headers=AUTH_A).status_code == 404
    assert not list(local_store.list(keys.job_prefix(job_id)))


def test_retry_refuses_a_running_job_and_restarts_a_cancelled_one(client: TestClient) -> None:
    job_id = submit(client).json()["id"]
    conflict = client.post(f"/v1/jobs/{job_id}/retry", headers=AUTH_A)
    assert conflict.status_code == 409 and "cancel it first" in conflict.json()["detail"]
    client.delete(f"/v1/jobs/{job_id}", headers=AUTH_A)
    retried = client.post(f"/v1/jobs/{job_id}/retry", headers=AUTH_A)
    assert retried.status_code == 202 and retried.json()["status"] == "running"


def test_the_result_of_an_unfinished_job_is_409_saying_to_follow_its_events(
    client: TestClient,
) -> None:
    job_id = submit(client).json()["id"]
    answer = client.get(f"/v1/jobs/{job_id}/result", headers=AUTH_A)
    assert answer.status_code == 409 and "/events" in answer.json()["detail"]


def test_an_uploaded_markdown_file_becomes_a_job_named_after_it(client: TestClient) -> None:
    files = [("files", ("notes.md", b"# Title\n\nSome *text* here.\n", "text/markdown"))]
    answer = client.post(
        "/v1/jobs", files=files, data={"voice": "en-gb", "tags": '{"a": "b"}'}, headers=AUTH_A
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["documents"] == ["notes"] and answer.json()["tags"] == {"a": "b"}


def test_limits_answer_4xx_saying_what_to_change(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(
        max_chars_per_job=50, max_documents_per_job=2, max_request_bytes=4000, max_concurrent_jobs=1
    )
    with TestClient(app) as client:
        chars = submit(client)
        assert chars.status_code == 413 and "TTSBATCH" not in chars.json()["detail"]
        assert "split the text" in chars.json()["detail"]
        docs = [{"name": f"d{n}", "text": "Hi."} for n in range(3)]
        many = client.post("/v1/jobs", json={"documents": docs}, headers=AUTH_A)
        assert many.status_code == 413 and "limit is 2" in many.json()["detail"]
        big = client.post("/v1/jobs", json={"input": "x" * 5000}, headers=AUTH_A)
        assert big.status_code == 413 and "TTSBATCH_API_MAX_REQUEST_BYTES" in big.json()["detail"]
        pdf = [("files", ("a.pdf", b"%PDF-1.4 \x00\x01\x02binary", "application/pdf"))]
        assert client.post("/v1/jobs", files=pdf, headers=AUTH_A).status_code == 415
        xml = client.post(
            "/v1/jobs", content=b"<a/>", headers={**AUTH_A, "Content-Type": "text/xml"}
        )
        assert xml.status_code == 415
        engine = submit(client, input="Hello.", engine="nope")
        assert engine.status_code == 422 and "espeak" in engine.json()["detail"]
        voice = submit(client, input="Hello.", voice="xx-nowhere")
        assert voice.status_code == 422 and "en-us" in voice.json()["detail"]
        assert submit(client, input="One.").status_code == 202
        capped = submit(client, input="Two.")
        assert capped.status_code == 429 and "cancel one" in capped.json()["detail"]


def test_a_webhook_to_a_loopback_address_is_refused_at_submission(client: TestClient) -> None:
    answer = submit(client, webhook_url="http://127.0.0.1:9/hook")
    assert answer.status_code == 422 and "ALLOW_PRIVATE" in answer.json()["detail"]


def test_an_s3_source_outside_the_allowed_buckets_is_refused(client: TestClient) -> None:
    answer = client.post("/v1/jobs", json={"source": "s3://elsewhere/a.txt"}, headers=AUTH_A)
    assert answer.status_code == 422 and "TTSBATCH_API_SOURCE_BUCKETS" in answer.json()["detail"]


def test_a_job_that_succeeded_lists_its_files_with_sizes_checksums_and_urls(
    app: FastAPI, client: TestClient, local_store: LocalStore
) -> None:
    job = submit(client).json()
    manifest_key = keys.manifest_key(job["id"])
    manifest = json.loads(local_store.read(manifest_key))
    out = keys.output_key(job["id"], "opening", "wav")
    local_store.write(out, b"RIFF-fake")
    manifest.update(status=JobStatus.SUCCEEDED.value, outputs={"opening": {"audio": out}})
    local_store.write(manifest_key, json.dumps(manifest).encode())
    app.state.services.state.finish(job["id"], JobStatus.SUCCEEDED)
    result = client.get(f"/v1/jobs/{job['id']}/result", headers=AUTH_A).json()
    names = [f["name"] for f in result["files"]]
    assert names == ["opening.wav", "manifest.json"]
    wav = result["files"][0]
    assert wav["size"] == 9 and len(wav["sha256"]) == 64
    body = client.get(wav["url"], headers=AUTH_A)
    assert body.status_code == 200 and body.content == b"RIFF-fake"
    events = client.get(f"/v1/jobs/{job['id']}/events", headers=AUTH_A)
    assert events.text.startswith("event: end\n") and '"succeeded"' in events.text


def test_the_api_runs_no_background_threads_rescue_and_webhooks_are_the_beats(
    redis_db_url: str, local_store: LocalStore
) -> None:
    before = {thread.ident for thread in threading.enumerate()}
    settings = api_settings(redis_db_url, local_store.url)
    with TestClient(create_app(settings, store=local_store)) as client:
        assert client.get("/healthz").status_code == 200
        started = {t.name for t in threading.enumerate() if t.ident not in before}
        # The test client's event loop may run threads; nothing rescues or calls webhooks.
        assert not [name for name in started if "rescue" in name or "webhook" in name]


def test_a_retry_with_caps_changes_only_those_it_gives_and_only_when_it_runs(
    client: TestClient, local_store: LocalStore
) -> None:
    job_id = submit(client, max_billed_chars=500).json()["id"]
    refused = client.post(f"/v1/jobs/{job_id}/retry", json={"max_cost": 9}, headers=AUTH_A)
    assert refused.status_code == 409  # still running: the job is left as it was
    record = read_job_record(local_store, job_id)
    assert record is not None and (record.max_cost, record.max_billed_chars) == (None, 500)
    client.delete(f"/v1/jobs/{job_id}", headers=AUTH_A)
    retried = client.post(f"/v1/jobs/{job_id}/retry", json={"max_cost": 9}, headers=AUTH_A)
    assert retried.status_code == 202
    record = read_job_record(local_store, job_id)
    assert record is not None and (record.max_cost, record.max_billed_chars) == (9, 500)
