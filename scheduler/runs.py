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

from scheduler.api.errors import InvalidRequestError, NotFoundError, TooLargeError
from scheduler.api.schemas import JobSpec, Run, RunProgress
from scheduler.api.service import Services, iso, load_manifest_or_404, owned, submit_job
from scheduler.api.sources import Upload, from_upload
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


def read_source(services: Services, url: str) -> list[Upload]:
    """Return every document under an ``s3://`` prefix (sorted by key).

    Raises:
        InvalidRequestError: the prefix holds nothing or the bucket is not allowed.
    """
    urls = services.sources.list(url)
    if not urls:
        raise InvalidRequestError(f"{url}: no documents under this prefix; check the path")
    if len(urls) > MAX_RUN_DOCUMENTS:
        raise TooLargeError(f"{url}: {len(urls)} documents; a run takes {MAX_RUN_DOCUMENTS}")
    limit = services.settings.api.max_request_bytes
    uploads = []
    for item in urls:
        upload = services.sources.read(item, limit)
        uploads.append(Upload(item.split("/", 3)[3], upload.data))
    return uploads


def start_run(
    services: Services,
    tenant: str,
    spec: JobSpec,
    uploads: Sequence[Upload],
    *,
    source: str | None = None,
    schedule_id: str | None = None,
    skipped: Sequence[str] = (),
    run_id: str | None = None,
) -> dict[str, object]:
    """Submit one job per upload under a new run; return the run's record.

    ``uploads`` are named by their key (or file name): each becomes a document
    whose name is the file's stem.
    """
    run_id = run_id or new_run_id()
    documents: dict[str, str] = {}
    for upload in uploads:
        document = from_upload(upload)
        spec_one = spec.model_copy(update={"name": spec.name or document.name})
        documents[upload.filename] = submit_job(
            services, tenant, [document], spec_one, run_id=run_id, capped=False
        )
    record: dict[str, object] = {
        "id": run_id,
        "name": spec.name,
        "source": source,
        "schedule_id": schedule_id,
        "documents": documents,
        "skipped": list(skipped),
        "created_at_ts": time.time(),
    }
    services.store.write(run_key(run_id), json.dumps(record, sort_keys=True, indent=1).encode())
    services.registry.put("runs", run_id, tenant, record)
    return record


def load_run(services: Services, tenant: str, run_id: str) -> dict[str, object]:
    """Return the tenant's run record.

    Raises:
        NotFoundError: unknown, or another tenant's.
    """
    record = services.registry.get("runs", run_id, tenant)
    if record is None:
        raise NotFoundError(f"no run {run_id}: check the id (GET /v1/runs lists yours)")
    return record


def show_run(services: Services, record: Mapping[str, object]) -> Run:
    """Return the run resource with its jobs' aggregate progress."""
    documents = dict(record.get("documents") or {})  # type: ignore[call-overload]
    jobs = list(dict.fromkeys(documents.values()))
    statuses: Counter[str] = Counter()
    total = done = failed = 0
    seconds = 0.0
    tenant = str(record["tenant"])
    for job_id in jobs:
        snapshot = services.state.snapshot(job_id)
        if snapshot is not None:
            statuses[snapshot.status.value] += 1
            total, done, failed = (
                total + snapshot.total,
                done + snapshot.done,
                failed + len(snapshot.failed),
            )
            seconds += snapshot.audio_seconds
            continue
        try:
            owned(services, tenant, job_id)
            manifest = load_manifest_or_404(services, job_id)
        except NotFoundError:
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
