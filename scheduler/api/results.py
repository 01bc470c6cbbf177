"""A succeeded job's files: where to download each, its size and SHA-256.

The checksums are computed once, streaming each file, and kept beside the
job's outputs (``jobs/<id>/files.json``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from scheduler.api.errors import ConflictError, GoneError
from scheduler.api.registry import JobEntry
from scheduler.api.schemas import ResultFile
from scheduler.api.services import Services
from scheduler.api.views import load_manifest_or_404
from ttsbatch import keys
from ttsbatch.models import JobStatus, Manifest
from ttsbatch.storage import Store
from ttsbatch.storage.s3 import S3Store

#: Where the checksums of a finished job's files are kept once computed.
_FILES_SUFFIX = "files.json"
_READ_BLOCK = 1 << 20


def result_files(
    services: Services, entry: JobEntry, api_url: str
) -> tuple[list[ResultFile], int | None]:
    """Return every output of a succeeded job with a URL, its size and SHA-256.

    On S3 the URLs are presigned; on a local store they point at
    ``{api_url}/v1/jobs/{id}/files/{name}``.

    Raises:
        ConflictError: the job has not succeeded.
    """
    manifest = load_manifest_or_404(services, entry.job_id)
    if manifest.expired:
        raise GoneError(
            f"job {entry.job_id}: its lifetime passed and its files were removed;"
            " submit it again to make them again (unchanged chunks come from the cache)"
        )
    if manifest.status is not JobStatus.SUCCEEDED:
        status = services.state.status(entry.job_id) or manifest.status
        raise ConflictError(
            f"job {entry.job_id} is {status}, not succeeded: follow GET /v1/jobs/{entry.job_id}/events"
            " until it succeeds"
        )
    files = output_keys(manifest)
    sums = _checksums(services.store, entry.job_id, files)
    ttl = services.settings.api.result_url_ttl
    store = services.store
    result = []
    for name, key in files.items():
        if isinstance(store, S3Store):
            url = store.presigned_url(key, expires=ttl)
        else:
            url = f"{api_url}/v1/jobs/{entry.job_id}/files/{name}"
        size, sha256 = sums[key]
        result.append(ResultFile(name=name, url=url, size=size, sha256=sha256))
    return result, ttl if isinstance(store, S3Store) else None


def output_keys(manifest: Manifest) -> dict[str, str]:
    """Return every output of a finished job by file name (``<doc>.<suffix>``), manifest last."""
    files: dict[str, str] = {}
    for plan in manifest.documents:
        prefix = f"{keys.job_prefix(manifest.job_id)}out/{plan.doc}."
        for key in manifest.outputs.get(plan.doc, {}).values():
            files[f"{plan.doc}.{key.removeprefix(prefix)}"] = key
    files["manifest.json"] = keys.manifest_key(manifest.job_id)
    return files


def _checksums(store: Store, job_id: str, files: Mapping[str, str]) -> dict[str, tuple[int, str]]:
    cache_key = keys.job_prefix(job_id) + _FILES_SUFFIX
    if store.exists(cache_key):
        cached = {k: (int(v[0]), str(v[1])) for k, v in json.loads(store.read(cache_key)).items()}
        if set(files.values()) <= set(cached):
            return cached
    sums: dict[str, tuple[int, str]] = {}
    for key in files.values():
        digest = hashlib.sha256()
        size = 0
        with store.open_read(key) as stream:
            while block := stream.read(_READ_BLOCK):
                digest.update(block)
                size += len(block)
        sums[key] = (size, digest.hexdigest())
    store.write(cache_key, json.dumps(sums).encode())
    return sums
