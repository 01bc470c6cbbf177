"""Cancelling and retrying a job, planned or not yet.

A job not planned yet is cancelled in Redis and in its record, so that its
planning (now, or after Redis lost it) leaves it alone; retried, it is
accepted again. A planned job is retried from its manifest: only what is
missing or failed runs again.
"""

from __future__ import annotations

from scheduler.api.availability import check_workers
from scheduler.api.errors import ConflictError, NotFoundError
from scheduler.api.registry import JobEntry
from scheduler.api.reservations import reserve_retry
from scheduler.api.services import Services
from scheduler.intake import spend_limit
from scheduler.models import Caps
from scheduler.planning import start_job
from scheduler.records import JobRecord, read_job_record, write_job_record
from ttsbatch import keys
from ttsbatch.billing import Billing
from ttsbatch.manifests import find_manifest, write_manifest
from ttsbatch.models import JobStatus
from ttsbatch.state import CANCELLED_BY_USER, TERMINAL, mark_manifest

#: The error of a job the user cancelled.


def cancel(services: Services, entry: JobEntry, *, purge: bool) -> None:
    """Cancel a job; with ``purge`` delete its artefacts and forget it.

    A job not planned yet is cancelled in Redis and in its record, so that its
    planning (now, or after Redis lost it) leaves it alone.

    Raises:
        NotFoundError: the store holds neither its manifest nor its record (purged).
    """
    job_id = entry.job_id
    manifest = find_manifest(services.store, job_id)
    cancelled = False
    if manifest is None:
        record = read_job_record(services.store, job_id)
        if record is None:
            raise NotFoundError(f"no job {job_id} in the store (it was purged)")
        cancelled = services.state.cancel(job_id)
        if record.status is JobStatus.QUEUED:
            update = {"status": JobStatus.CANCELLED, "error": CANCELLED_BY_USER}
            write_job_record(services.store, record.model_copy(update=update))
        manifest = find_manifest(services.store, job_id)  # planned meanwhile?
    succeeded = manifest is None or manifest.status is JobStatus.SUCCEEDED
    if not succeeded and (cancelled or services.state.cancel(job_id)):
        mark_manifest(services.store, job_id, JobStatus.CANCELLED, CANCELLED_BY_USER)
    services.registry.release(entry.tenant, job_id)
    if purge:
        services.store.delete(list(services.store.list(keys.job_prefix(entry.job_id))))
        Billing.of(services.state).forget(job_id)
        services.registry.forget_job(entry)


def retry(services: Services, entry: JobEntry, caps: Caps | None = None) -> None:
    """Re-run only what is missing or failed of a failed or cancelled job.

    ``caps`` replace the job's; either way the job's limit is made again
    from its caps and the deployment's monthly cap as they are now, so a job
    stopped at a cap goes on once the cap is raised.

    Raises:
        ConflictError: the job is still running, or succeeded.
        NoWorkerError: no live worker serves the job's engine.
    """
    manifest = find_manifest(services.store, entry.job_id)
    if manifest is None:
        _retry_unplanned(services, entry, caps)
        return
    status = services.state.status(entry.job_id) or manifest.status
    if manifest.status is JobStatus.SUCCEEDED or status is JobStatus.SUCCEEDED:
        raise ConflictError(f"job {entry.job_id} succeeded: there is nothing to retry")
    if status not in TERMINAL:
        raise ConflictError(
            f"job {entry.job_id} is {status}: retry only a failed or cancelled job,"
            " or cancel it first"
        )
    check_workers(services, manifest.options.engine.engine)
    reserve_retry(services, entry.tenant, entry.job_id)
    if entry.webhook_url:
        services.registry.add_job(entry)
    record = read_job_record(services.store, entry.job_id)
    if record is not None:
        record = _with_caps(services, record, caps)
        limit = spend_limit(record, services.settings)
        if limit != manifest.limit:
            manifest = manifest.model_copy(update={"limit": limit})
            write_manifest(services.store, manifest)
    start_job(services.store, services.state, services.producer, manifest)


def _with_caps(services: Services, record: JobRecord, caps: Caps | None) -> JobRecord:
    """The job's record with the caps a retry gave (only those it gave), stored."""
    update = caps.model_dump(exclude_unset=True) if caps is not None else {}
    if not update:
        return record
    changed = record.model_copy(update=update)
    write_job_record(services.store, changed)
    return changed


def _retry_unplanned(services: Services, entry: JobEntry, caps: Caps | None) -> None:
    """Accept again a job that failed or was cancelled before it was planned."""
    job_id = entry.job_id
    record = read_job_record(services.store, job_id)
    if record is None or record.options is None:
        raise NotFoundError(f"no job {job_id} in the store (it was purged)")
    status = services.state.status(job_id) or record.status
    if status not in TERMINAL:
        raise ConflictError(
            f"job {job_id} is {status}: retry only a failed or cancelled job, or cancel it first"
        )
    check_workers(services, record.options.engine.engine)
    reserve_retry(services, entry.tenant, entry.job_id)
    try:
        update = {"status": JobStatus.QUEUED, "error": None}
        if caps is not None:
            update |= caps.model_dump(exclude_unset=True)
        queued = record.model_copy(update=update)
        write_job_record(services.store, queued)
        services.registry.add_job(entry)
        services.state.set_status(job_id, JobStatus.QUEUED, only_if_active=False)
        services.plan(job_id, queued)
    except BaseException:
        services.registry.release(entry.tenant, job_id)
        raise
