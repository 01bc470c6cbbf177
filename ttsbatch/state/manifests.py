"""The job's status in its stored manifest, the authoritative record."""

from __future__ import annotations

from ttsbatch.manifests import read_manifest, write_manifest
from ttsbatch.models import JobStatus
from ttsbatch.storage import Store


def mark_manifest(store: Store, job_id: str, status: JobStatus, error: str | None = None) -> None:
    """Record a failed or cancelled job in its stored manifest (the authoritative record).

    A manifest that already says ``succeeded`` is left alone.
    """
    manifest = read_manifest(store, job_id)
    if manifest.status is JobStatus.SUCCEEDED or (manifest.status, manifest.error) == (
        status,
        error,
    ):
        return
    write_manifest(store, manifest.model_copy(update={"status": status, "error": error}))
