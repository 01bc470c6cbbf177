"""Corpus runs: one job per document, grouped, with aggregate progress."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from scheduler.runs import aggregate_status
from ttsbatch.models import JobStatus
from ttsbatch.storage.s3 import S3Store

from .api import conftest as api_fixtures
from .api.conftest import AUTH_A, AUTH_B, TestClient

make_app = api_fixtures.make_app  # the API tests' app factory, as a fixture here too
client = api_fixtures.client
app = api_fixtures.app


def test_a_run_of_inline_documents_makes_one_job_each_with_aggregate_progress(
    client: TestClient,
) -> None:
    docs = [{"name": f"doc{n}", "text": f"Document {n} has a sentence."} for n in range(3)]
    answer = client.post("/v1/runs", json={"documents": docs, "tags": {"r": "1"}}, headers=AUTH_A)
    assert answer.status_code == 202, answer.text
    run = answer.json()
    assert len(run["jobs"]) == 3 and sorted(run["documents"]) == [
        "doc0.txt",
        "doc1.txt",
        "doc2.txt",
    ]
    assert run["status"] == "running"
    assert run["progress"]["jobs_by_status"] == {"running": 3}
    assert run["progress"]["chunks_total"] == 3
    jobs = client.get("/v1/jobs?tag=r=1", headers=AUTH_A).json()["items"]
    assert {job["run_id"] for job in jobs} == {run["id"]}
    listed = client.get("/v1/runs", headers=AUTH_A).json()["items"]
    assert [r["id"] for r in listed] == [run["id"]]
    assert client.get(f"/v1/runs/{run['id']}", headers=AUTH_B).status_code == 404


def test_a_run_over_an_s3_prefix_makes_a_job_per_object(
    make_app: Callable[..., FastAPI], s3_store: S3Store
) -> None:
    for name in ("x", "y"):
        s3_store.write(f"in/{name}.md", f"# {name}\n\nText of {name}.".encode())
    with TestClient(make_app(store=s3_store, source_buckets=s3_store.bucket)) as client:
        source = f"s3://{s3_store.bucket}/t/in/"
        run = client.post("/v1/runs", json={"source": source}, headers=AUTH_A).json()
        assert sorted(run["documents"]) == ["t/in/x.md", "t/in/y.md"]
        empty = client.post("/v1/runs", json={"source": source + "nothing/"}, headers=AUTH_A)
        assert empty.status_code == 422 and "no documents" in empty.json()["detail"]


def test_a_run_is_running_while_a_job_is_then_failed_if_any_failed() -> None:
    assert aggregate_status({"running": 1, "succeeded": 2}) is JobStatus.RUNNING
    assert aggregate_status({"failed": 1, "succeeded": 2}) is JobStatus.FAILED
    assert aggregate_status({"succeeded": 2}) is JobStatus.SUCCEEDED
    assert aggregate_status({}) is JobStatus.SUCCEEDED
