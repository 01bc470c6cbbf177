"""Finding and showing a tenant's jobs: one job (:func:`show_job`), or a page of them.

Status and progress come from Redis, the plan from the store; a job accepted
and not yet planned is shown from its index entry, without a store read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from scheduler.api.availability import waiting_reason
from scheduler.api.errors import NotFoundError
from scheduler.api.registry import JobEntry
from scheduler.api.rendering import render_job, render_unplanned
from scheduler.api.schemas import Job
from scheduler.api.services import Services
from scheduler.records import read_job_record
from ttsbatch.manifests import find_manifest
from ttsbatch.models import JobStatus, Manifest
from ttsbatch.state import CANCELLED_BY_USER


def owned(services: Services, tenant: str, job_id: str) -> JobEntry:
    """Return the tenant's job record.

    Raises:
        NotFoundError: unknown, or another tenant's.
    """
    entry = services.registry.job(job_id, tenant)
    if entry is None:
        raise NotFoundError(f"no job {job_id}: check the id (GET /v1/jobs lists yours)")
    return entry


def load_manifest_or_404(services: Services, job_id: str) -> Manifest:
    """Return a job's manifest.

    Raises:
        NotFoundError: the store holds none (never made, or purged).
    """
    manifest = find_manifest(services.store, job_id)
    if manifest is None:
        raise NotFoundError(f"no job {job_id} in the store (it was purged)")
    return manifest


def show_job(services: Services, entry: JobEntry) -> Job:
    """Return the job resource: status and progress from Redis, the plan from the store.

    A job accepted and not yet planned is shown from its record (in Redis, no
    store read while it is ``queued``): no chunks, no characters yet.

    Raises:
        NotFoundError: the store holds neither its manifest nor its record (purged).
    """
    job_id = entry.job_id
    snapshot = services.state.snapshot(job_id)
    status = services.state.status(job_id) if snapshot is None else snapshot.status
    manifest = None
    if not (status is JobStatus.QUEUED and snapshot is None and entry.options is not None):
        manifest = find_manifest(services.store, job_id)
    if manifest is not None:
        status = manifest.status if snapshot is None else snapshot.status
        warning = waiting_reason(services, status, manifest.options)
        return render_job(entry, manifest, snapshot, warning=warning)
    if entry.options is None:
        raise NotFoundError(f"no job {job_id} in the store (it was purged)")
    error = None
    if status is not JobStatus.QUEUED:  # failed or cancelled before it was planned, or no state
        record = read_job_record(services.store, job_id)
        if record is None:
            raise NotFoundError(f"no job {job_id} in the store (it was purged)")
        status = status or record.status
        error = (snapshot.error if snapshot else None) or record.error
        if status is JobStatus.CANCELLED:
            error = error or CANCELLED_BY_USER
    assert status is not None  # noqa: S101 - a record always has one
    return render_unplanned(
        entry,
        status,
        snapshot,
        error=error,
        warning=waiting_reason(services, status, entry.options),
    )


def list_jobs(
    services: Services,
    tenant: str,
    *,
    status: JobStatus | None,
    tags: Mapping[str, str],
    offset: int,
    limit: int,
) -> tuple[list[Job], int | None]:
    """Return a page of the tenant's jobs, newest first, filtered by status and tags."""

    def matching() -> Iterator[Job]:
        for job_id in services.registry.ids(tenant, "jobs"):
            entry = services.registry.job(job_id, tenant)
            if entry is None or any(entry.tags.get(k) != v for k, v in tags.items()):
                continue
            if status is not None:
                live = services.state.status(job_id)
                if live is not None and live is not status:
                    continue
            try:
                job = show_job(services, entry)
            except NotFoundError:
                continue
            if status is None or job.status is status:
                yield job

    jobs: list[Job] = []
    for index, job in enumerate(matching()):
        if index < offset:
            continue
        if len(jobs) == limit:
            return jobs, offset + limit
        jobs.append(job)
    return jobs, None
