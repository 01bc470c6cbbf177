"""A job as the API shows it: the :class:`~scheduler.api.schemas.Job` resource.

Pure: made from the job's index entry, its manifest (once planned) and its
live state in Redis, all read by the caller (:mod:`scheduler.api.views`, or
:mod:`scheduler.api.submission` for a job it has just accepted).
"""

from __future__ import annotations

from scheduler.api.registry import JobEntry
from scheduler.api.schemas import ChunkError, Job, JobProgress
from scheduler.models import iso
from ttsbatch.models import JobStatus, Manifest
from ttsbatch.state import JobSnapshot


def render_unplanned(
    entry: JobEntry,
    status: JobStatus,
    snapshot: JobSnapshot | None,
    *,
    error: str | None = None,
    warning: str | None = None,
) -> Job:
    """Return the resource of a job not planned (yet, or ever: its input could not be read)."""
    assert entry.options is not None  # noqa: S101 - only records with options are shown so
    return Job(
        id=entry.job_id,
        name=entry.name,
        status=status,
        progress=JobProgress(
            chunks_total=0,
            chunks_done=0,
            chunks_failed=0,
            characters_total=0,
            characters_done=0,
            audio_seconds=0.0,
            eta_seconds=None,
        ),
        error=error,
        warning=warning,
        errors=[],
        documents=list(entry.documents),
        tags=entry.tags,
        options=entry.options,
        run_id=entry.run_id,
        webhook_url=entry.webhook_url,
        created_at=iso(entry.created_at),
        started_at=iso(snapshot.started_at if snapshot else None),
        finished_at=iso(snapshot.finished_at if snapshot else None),
    )


def render_job(
    entry: JobEntry, manifest: Manifest, snapshot: JobSnapshot | None, *, warning: str | None = None
) -> Job:
    """Return the job resource of a record, its manifest and its live state."""
    total = sum(len(plan.chunks) for plan in manifest.documents)
    chars = sum(plan.chars for plan in manifest.documents)
    succeeded = manifest.status is JobStatus.SUCCEEDED
    if snapshot is None:
        progress = JobProgress(
            chunks_total=total,
            chunks_done=total if succeeded else 0,
            chunks_failed=0,
            characters_total=chars,
            characters_done=chars if succeeded else 0,
            audio_seconds=0.0,
            eta_seconds=None,
        )
        status, error, errors = manifest.status, manifest.error, []
        started = finished = None
    else:
        progress = JobProgress(
            chunks_total=snapshot.total,
            chunks_done=snapshot.done,
            chunks_failed=len(snapshot.failed),
            characters_total=snapshot.chars_total,
            characters_done=snapshot.chars_done,
            audio_seconds=round(snapshot.audio_seconds, 3),
            eta_seconds=None if snapshot.eta_seconds is None else round(snapshot.eta_seconds, 1),
        )
        status = snapshot.status
        error = snapshot.error or manifest.error
        errors = [
            ChunkError(chunk=c, error=e, final=True) for c, e in sorted(snapshot.failed.items())
        ]
        errors += [
            ChunkError(chunk=c, error=e, final=False)
            for c, e in sorted(snapshot.errors.items())
            if c not in snapshot.failed
        ]
        started, finished = snapshot.started_at, snapshot.finished_at
    return Job(
        id=entry.job_id,
        name=entry.name,
        status=status,
        progress=progress,
        error=error,
        warning=warning,
        errors=errors,
        documents=[plan.doc for plan in manifest.documents],
        tags=entry.tags,
        options=manifest.options,
        run_id=entry.run_id,
        webhook_url=entry.webhook_url,
        created_at=iso(entry.created_at),
        started_at=iso(started),
        finished_at=iso(finished),
        audio=dict(manifest.audio),
        usage=manifest.usage,
    )
