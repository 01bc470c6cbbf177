"""Corpus runs: one job per document (of an ``s3://`` prefix or of uploads), under one run id.

A run's record (its jobs by document) is kept in the store
(``runs/<run_id>.json``) and indexed for its tenant in Redis; its progress is
the sum of its jobs'.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence

from scheduler.models import JobSpec, Run, RunProgress, iso
from scheduler.ports import Ports, SourceFile
from ttsbatch.errors import InvalidFieldError, LimitExceededError, NotFoundError
from ttsbatch.manifests import find_manifest
from ttsbatch.models import JobStatus
from ttsbatch.state import TERMINAL

#: Documents in one run at most (each is a job).
MAX_RUN_DOCUMENTS = 10_000


def run_key(run_id: str) -> str:
    """Return the store key of a run's record."""
    return f"runs/{run_id}.json"


def new_run_id() -> str:
    """Return a fresh run id."""
    return f"r-{uuid.uuid4().hex[:16]}"


def read_source(ports: Ports, url: str) -> list[SourceFile]:
    """Return every document under an ``s3://`` prefix (sorted by key), named by its key.

    Raises:
        InvalidFieldError: the prefix holds nothing.
        LimitExceededError: it holds more than :data:`MAX_RUN_DOCUMENTS`.
        InputError: the bucket is not one the service may read, or an object
            cannot be read (from ``ports.list_source``/``read_source``).
    """
    urls = ports.list_source(url)
    if not urls:
        raise InvalidFieldError(f"{url}: no documents under this prefix; check the path")
    if len(urls) > MAX_RUN_DOCUMENTS:
        raise LimitExceededError(f"{url}: {len(urls)} documents; a run takes {MAX_RUN_DOCUMENTS}")
    limit = ports.settings.api.max_request_bytes
    return [SourceFile(item.split("/", 3)[3], ports.read_source(item, limit)) for item in urls]


def start_run(
    ports: Ports,
    tenant: str,
    spec: JobSpec,
    documents: Sequence[SourceFile],
    *,
    source: str | None = None,
    schedule_id: str | None = None,
    skipped: Sequence[str] = (),
    run_id: str | None = None,
) -> dict[str, object]:
    """Submit one job per document under a new run; return the run's record.

    ``documents`` are named by their key (or file name): each job is named
    after its file's stem unless ``spec`` names it.
    """
    run_id = run_id or new_run_id()
    jobs: dict[str, str] = {}
    for document in documents:
        jobs[document.filename] = ports.submit(tenant, document, spec, run_id=run_id)
    record: dict[str, object] = {
        "id": run_id,
        "name": spec.name,
        "source": source,
        "schedule_id": schedule_id,
        "documents": jobs,
        "skipped": list(skipped),
        "created_at_ts": time.time(),
    }
    ports.store.write(run_key(run_id), json.dumps(record, sort_keys=True, indent=1).encode())
    ports.index.put("runs", run_id, tenant, record)
    return record


def load_run(ports: Ports, tenant: str, run_id: str) -> dict[str, object]:
    """Return the tenant's run record.

    Raises:
        NotFoundError: unknown, or another tenant's.
    """
    record = ports.index.get("runs", run_id, tenant)
    if record is None:
        raise NotFoundError(f"no run {run_id}: check the id (GET /v1/runs lists yours)")
    return record


def show_run(ports: Ports, record: Mapping[str, object]) -> Run:
    """Return the run resource with its jobs' aggregate progress."""
    documents = dict(record.get("documents") or {})  # type: ignore[call-overload]
    jobs = list(dict.fromkeys(documents.values()))
    statuses: Counter[str] = Counter()
    total = done = failed = 0
    seconds = 0.0
    tenant = str(record["tenant"])
    for job_id in jobs:
        snapshot = ports.state.snapshot(job_id)
        if snapshot is not None:
            statuses[snapshot.status.value] += 1
            total, done, failed = (
                total + snapshot.total,
                done + snapshot.done,
                failed + len(snapshot.failed),
            )
            seconds += snapshot.audio_seconds
            continue
        owned = ports.index.job(job_id, tenant) is not None
        manifest = find_manifest(ports.store, job_id) if owned else None
        if manifest is None:
            statuses["purged"] += 1
            continue
        chunks = sum(len(plan.chunks) for plan in manifest.documents)
        statuses[manifest.status.value] += 1
        total += chunks
        done += chunks if manifest.status is JobStatus.SUCCEEDED else 0
    return Run(
        id=str(record["id"]),
        name=record.get("name"),
        status=aggregate_status(statuses),
        source=record.get("source"),
        schedule_id=record.get("schedule_id"),
        jobs=jobs,
        documents=documents,
        skipped=list(record.get("skipped") or []),  # type: ignore[call-overload]
        progress=RunProgress(
            jobs_total=len(jobs),
            jobs_by_status=dict(statuses),
            chunks_total=total,
            chunks_done=done,
            chunks_failed=failed,
            audio_seconds=round(seconds, 3),
        ),
        created_at=iso(float(record.get("created_at_ts") or 0)),  # type: ignore[arg-type]
    )


def aggregate_status(statuses: Mapping[str, int]) -> JobStatus:
    """A run is running while any job is; then failed if any failed, else succeeded."""
    active = {s.value for s in JobStatus} - {s.value for s in TERMINAL}
    if any(statuses.get(s) for s in active):
        return JobStatus.RUNNING
    if statuses.get(JobStatus.FAILED.value):
        return JobStatus.FAILED
    if statuses.get(JobStatus.CANCELLED.value) and not statuses.get(JobStatus.SUCCEEDED.value):
        return JobStatus.CANCELLED
    return JobStatus.SUCCEEDED
