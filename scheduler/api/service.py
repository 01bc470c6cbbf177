"""What the routes do, without HTTP: submit, show, list, cancel, retry and collect jobs.

Nothing here knows FastAPI; errors are :mod:`scheduler.api.errors` (and the
rest of the ttsbatch tree), which :mod:`scheduler.api.app` maps to statuses.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from celery import Celery

from scheduler.api.catalog import ENGINES, choose_engine
from scheduler.api.errors import ConflictError, NotFoundError, NoWorkerError, TooManyJobsError
from scheduler.api.registry import JobEntry, Registry
from scheduler.api.schemas import ChunkError, Job, JobProgress, JobSpec, ResultFile
from scheduler.api.sources import SourceReader, check_limits
from scheduler.dispatch import create_producer
from scheduler.planning import job_id_for
from scheduler.webhooks import check_target
from ttsbatch import distributed, keys, redisclient
from ttsbatch.messages import FINALIZE_QUEUE, queue_for
from ttsbatch.models import Document, JobOptions, JobStatus, Manifest
from ttsbatch.roster import Roster
from ttsbatch.settings import JobDefaults, Settings
from ttsbatch.state import TERMINAL, JobSnapshot, JobState
from ttsbatch.storage import Store, open_store
from ttsbatch.storage.s3 import S3Store

#: Where the checksums of a finished job's files are kept once computed.
_FILES_SUFFIX = "files.json"
_READ_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class Services:
    """The connections of an API process, made once by the app factory."""

    settings: Settings
    store: Store
    state: JobState
    registry: Registry
    producer: Celery
    sources: SourceReader

    @classmethod
    def connect(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        client: redis.Redis | None = None,
        producer: Celery | None = None,
    ) -> Services:
        """Open (lazily) the store, Redis and a producer named by ``settings``."""
        store = store or open_store(settings.store)
        client = client or redisclient.connect(settings.redis_url, decode_responses=True)
        return cls(
            settings=settings,
            store=store,
            state=JobState(client),
            registry=Registry(client),
            producer=producer or create_producer(settings),
            sources=SourceReader(settings.api, store),
        )

    @property
    def roster(self) -> Roster:
        """The workers' heartbeats, in the job state's Redis and namespace."""
        return Roster(self.state.client, namespace=self.state.namespace)

    @property
    def cluster(self) -> distributed.Cluster:
        """The store, job state and producer, as the distributed executor takes them."""
        return distributed.Cluster(store=self.store, state=self.state, producer=self.producer)


def iso(timestamp: float | None) -> str | None:
    """Return a POSIX time as ISO 8601 UTC, or None."""
    if not timestamp:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def job_options(spec: JobSpec, defaults: JobDefaults | None = None) -> JobOptions:
    """Return the job options a request asks for, the deployment's defaults filled in.

    Raises:
        InvalidRequestError: an unknown engine or voice, or a field the engine
            needs is missing (:func:`~scheduler.api.catalog.choose_engine`).
    """
    engine = choose_engine(
        spec.engine, spec.model, spec.voice, spec.language, defaults or JobDefaults()
    )
    fields: dict[str, object] = {"engine": engine, "audio_format": spec.audio_format}
    if spec.max_chars is not None:
        fields["max_chars"] = spec.max_chars
    if spec.pauses is not None:
        fields["pauses"] = spec.pauses
    return JobOptions.model_validate(fields)


def check_workers(services: Services, engine: str, job_id: str | None = None) -> None:
    """Refuse a job that no live worker would synthesise or stitch.

    A job already succeeded (``job_id``'s manifest) needs no worker. Skipped
    when ``TTSBATCH_API_REQUIRE_WORKERS`` is false (workers scaled from zero).

    Raises:
        NoWorkerError: naming the engine, the queue nobody reads, and the
            engines live workers do serve.
    """
    if not services.settings.api.require_workers:
        return
    needed = [queue_for(engine), FINALIZE_QUEUE]
    live = services.roster.live_queues({*needed, *(queue_for(e) for e in ENGINES)})
    missing = [queue for queue in needed if queue not in live]
    if not missing:
        return
    if job_id is not None:
        manifest = distributed.find_manifest(services.store, job_id)
        if manifest is not None and manifest.status is JobStatus.SUCCEEDED:
            return
    served = [e for e in ENGINES if queue_for(e) in live] if FINALIZE_QUEUE in live else []
    choice = (
        f"; engines served now: {', '.join(served)}" if served else "; no worker is running at all"
    )
    raise NoWorkerError(
        f"no running worker serves engine {engine}: nobody consumes queue"
        f" {' or '.join(missing)}. Start one (`ttsbatch worker --queues"
        f" {','.join(needed)}`), or send another `engine`{choice}"
    )


def tenant_job_id(tenant: str, documents: Sequence[Document], options: JobOptions) -> str:
    """Return the job id: deterministic per tenant, content and options.

    Submitting the same documents with the same options again finds the same
    job (and resumes it if it failed); another tenant gets a different id.
    """
    digest = hashlib.sha256(f"{tenant}\0{job_id_for(documents, options)}".encode())
    return digest.hexdigest()[:20]


def submit_job(
    services: Services,
    tenant: str,
    documents: Sequence[Document],
    spec: JobSpec,
    *,
    run_id: str | None = None,
    capped: bool = True,
) -> str:
    """Plan, record and dispatch a job for ``tenant``; return its id.

    Jobs of a run are not counted against the tenant's cap (``capped=False``):
    the run is one request, and its documents queue behind each other.

    Raises:
        TooLargeError: over the documents or characters limit.
        InvalidRequestError: unknown engine or voice, or a field its engine needs is missing.
        TooManyJobsError: the tenant is at its cap of running jobs.
        NoWorkerError: no live worker serves the job's engine.
    """
    check_limits(documents, services.settings.api)
    options = job_options(spec, services.settings.defaults)
    if spec.webhook_url:
        check_target(
            spec.webhook_url,
            allow_private=services.settings.api.webhook_allow_private,
            resolve=None,
        )
    job_id = tenant_job_id(tenant, documents, options)
    check_workers(services, options.engine.engine, job_id)
    cap = services.settings.api.max_concurrent_jobs if capped else 10**9
    if not services.registry.reserve(tenant, job_id, cap, lambda job: _ended(services, job)):
        raise TooManyJobsError(
            f"this tenant already runs {cap} jobs (TTSBATCH_API_MAX_CONCURRENT_JOBS):"
            " wait for one to end, or cancel one with DELETE /v1/jobs/{id}"
        )
    entry = JobEntry(
        job_id=job_id,
        tenant=tenant,
        name=spec.name or documents[0].name,
        tags=dict(spec.tags),
        webhook_url=spec.webhook_url,
        run_id=run_id,
        created_at=time.time(),
    )
    try:
        services.store.write(
            keys.job_prefix(job_id) + "api.json",
            json.dumps({"tenant": tenant, "name": entry.name, "tags": entry.tags}).encode(),
        )
        existing = services.registry.job(job_id)
        services.registry.add_job(entry if existing is None else _refreshed(existing, entry))
        if _active(services, job_id):
            return job_id  # the same job submitted again while it runs
        manifest = distributed.submit(
            documents, options, settings=services.settings, job_id=job_id, cluster=services.cluster
        )
        if manifest.status is JobStatus.SUCCEEDED:
            services.registry.release(tenant, job_id)
    except BaseException:
        services.registry.release(tenant, job_id)
        raise
    return job_id


def _refreshed(existing: JobEntry, entry: JobEntry) -> JobEntry:
    # A resubmission updates tags and webhook, keeps the creation time.
    tags = {**existing.tags, **entry.tags}
    return JobEntry(
        job_id=existing.job_id,
        tenant=existing.tenant,
        name=existing.name,
        tags=tags,
        webhook_url=entry.webhook_url or existing.webhook_url,
        run_id=entry.run_id or existing.run_id,
        created_at=existing.created_at,
    )


def _active(services: Services, job_id: str) -> bool:
    status = services.state.status(job_id)
    return status is not None and status not in TERMINAL


def _ended(services: Services, job_id: str) -> bool:
    return not _active(services, job_id)


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
    manifest = distributed.find_manifest(services.store, job_id)
    if manifest is None:
        raise NotFoundError(f"no job {job_id} in the store (it was purged)")
    return manifest


def show_job(services: Services, entry: JobEntry) -> Job:
    """Return the job resource: status and progress from Redis, the plan from the store."""
    manifest = load_manifest_or_404(services, entry.job_id)
    snapshot = services.state.snapshot(entry.job_id)
    status = manifest.status if snapshot is None else snapshot.status
    warning = (
        None
        if status in TERMINAL
        else services.roster.waiting_reason(manifest.options.engine.engine)
    )
    return render_job(entry, manifest, snapshot, warning=warning)


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


def cancel(services: Services, entry: JobEntry, *, purge: bool) -> None:
    """Cancel a job; with ``purge`` delete its artefacts and forget it."""
    distributed.cancel(services.cluster, load_manifest_or_404(services, entry.job_id))
    services.registry.release(entry.tenant, entry.job_id)
    if purge:
        services.store.delete(list(services.store.list(keys.job_prefix(entry.job_id))))
        services.registry.forget_job(entry)


def retry(services: Services, entry: JobEntry) -> None:
    """Re-run only what is missing or failed of a failed or cancelled job.

    Raises:
        ConflictError: the job is still running, or succeeded.
        NoWorkerError: no live worker serves the job's engine.
    """
    manifest = load_manifest_or_404(services, entry.job_id)
    status = services.state.status(entry.job_id) or manifest.status
    if manifest.status is JobStatus.SUCCEEDED or status is JobStatus.SUCCEEDED:
        raise ConflictError(f"job {entry.job_id} succeeded: there is nothing to retry")
    if status not in TERMINAL:
        raise ConflictError(
            f"job {entry.job_id} is {status}: retry only a failed or cancelled job,"
            " or cancel it first"
        )
    check_workers(services, manifest.options.engine.engine)
    cap = services.settings.api.max_concurrent_jobs
    if not services.registry.reserve(
        entry.tenant, entry.job_id, cap, lambda j: _ended(services, j)
    ):
        raise TooManyJobsError(
            f"this tenant already runs {cap} jobs: wait for one to end before retrying"
        )
    if entry.webhook_url:
        services.registry.add_job(entry)
    distributed.start(services.cluster, manifest)


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
