"""A job's lifetime through the API: its marker is written when it is accepted, and the
files of a job whose lifetime passed answer 410."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from scheduler import retention
from ttsbatch.manifests import write_manifest
from ttsbatch.models import JobOptions, JobStatus, Manifest

from .conftest import AUTH_A


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
    app.state.services.state.client.close()


def test_a_lifetime_is_marked_and_an_expired_jobs_files_are_gone(
    client: TestClient, app: FastAPI
) -> None:
    store = app.state.services.store
    before = time.time()
    job = client.post(
        "/v1/jobs",
        json={"input": "A short text to keep for an hour.", "time_to_live_hours": 1},
        headers=AUTH_A,
    ).json()
    (marker,) = list(store.list("expiry/"))
    due = int(marker.removeprefix("expiry/").split("-", 1)[0])
    assert marker.endswith(job["id"]) and before + 3600 - 1 <= due <= time.time() + 3600
    expired = Manifest(
        job_id=job["id"],
        created_at="2026-01-01T00:00:00+00:00",
        options=JobOptions(),
        documents=(),
        status=JobStatus.SUCCEEDED,
        expired=True,
    )
    write_manifest(store, expired)
    answer = client.get(f"/v1/jobs/{job['id']}/result", headers=AUTH_A)
    assert answer.status_code == 410 and "lifetime passed" in answer.text
    assert retention.expiry_key(due, job["id"]) == marker
