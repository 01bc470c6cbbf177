"""Schedules: redbeat entries, and incremental runs over an S3 prefix (triggered directly)."""

from __future__ import annotations

from collections.abc import Callable

import redis
from fastapi import FastAPI

from scheduler.schedules import parse_cron, run_schedule
from ttsbatch.storage.s3 import S3Store

from .api import conftest as api_fixtures
from .api.conftest import AUTH_A, TestClient

make_app = api_fixtures.make_app  # the API tests' app factory, as a fixture here too


def test_a_cron_expression_needs_five_valid_fields() -> None:
    assert parse_cron("*/5 2 * * 1-5")
    for bad in ("* * * *", "61 * * * *", "a b c d e"):
        try:
            parse_cron(bad)
        except Exception as exc:  # noqa: BLE001 - the point is the message
            assert "cron" in str(exc)
        else:
            raise AssertionError(bad)


def test_a_schedule_run_synthesises_every_document_then_only_the_edited_and_the_added(
    make_app: Callable[..., FastAPI], s3_store: S3Store, redis_db_url: str
) -> None:
    for name in ("a", "b", "c"):
        s3_store.write(f"corpus/{name}.txt", f"Document {name} says hello.".encode())
    source = f"s3://{s3_store.bucket}/t/corpus/"
    app = make_app(store=s3_store, source_buckets=s3_store.bucket)
    ports = app.state.ports
    with TestClient(app) as client:
        created = client.post(
            "/v1/schedules",
            json={"cron": "0 2 * * *", "source": source, "voice": "en-gb", "tags": {"k": "v"}},
            headers=AUTH_A,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        beat = redis.Redis.from_url(redis_db_url, decode_responses=True)
        assert beat.exists(f"ttsbatch:redbeat:ttsbatch-schedule:{schedule_id}")

        first = run_schedule(ports, schedule_id)
        assert first is not None
        assert sorted(first["documents"]) == ["t/corpus/a.txt", "t/corpus/b.txt", "t/corpus/c.txt"]

        unchanged = run_schedule(ports, schedule_id)
        assert unchanged is not None and unchanged["documents"] == {}
        assert len(unchanged["skipped"]) == 3

        s3_store.write("corpus/b.txt", b"Document b was edited.")
        s3_store.write("corpus/d.txt", b"Document d is new.")
        second = run_schedule(ports, schedule_id)
        assert second is not None
        assert sorted(second["documents"]) == ["t/corpus/b.txt", "t/corpus/d.txt"]
        assert second["skipped"] == ["t/corpus/a.txt", "t/corpus/c.txt"]

        shown = client.get(f"/v1/schedules/{schedule_id}", headers=AUTH_A).json()
        assert shown["runs"] == [second["id"], unchanged["id"], first["id"]]
        run = client.get(f"/v1/runs/{second['id']}", headers=AUTH_A).json()
        assert run["schedule_id"] == schedule_id and run["progress"]["jobs_total"] == 2
        job = client.get(f"/v1/jobs/{run['jobs'][0]}", headers=AUTH_A).json()
        assert job["options"]["engine"]["voice"] == "en-gb" and job["tags"] == {"k": "v"}

        assert client.delete(f"/v1/schedules/{schedule_id}", headers=AUTH_A).status_code == 204
        assert not beat.exists(f"ttsbatch:redbeat:ttsbatch-schedule:{schedule_id}")
        assert client.get(f"/v1/schedules/{schedule_id}", headers=AUTH_A).status_code == 404
        assert run_schedule(ports, schedule_id) is None
        beat.close()


def test_a_document_whose_job_failed_is_synthesised_again_by_the_next_run(
    make_app: Callable[..., FastAPI], s3_store: S3Store
) -> None:
    s3_store.write("corpus/a.txt", b"Only one document.")
    app = make_app(store=s3_store, source_buckets=s3_store.bucket)
    ports = app.state.ports
    with TestClient(app) as client:
        source = f"s3://{s3_store.bucket}/t/corpus/"
        schedule_id = client.post(
            "/v1/schedules", json={"cron": "* * * * *", "source": source}, headers=AUTH_A
        ).json()["id"]
        first = run_schedule(ports, schedule_id)
        assert first is not None
        (job_id,) = first["documents"].values()
        ports.state.fail(job_id, "provider said no")
        again = run_schedule(ports, schedule_id)
        assert again is not None and list(again["documents"].values()) == [job_id]
