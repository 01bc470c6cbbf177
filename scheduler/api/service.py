"""What the routes do, without HTTP: submit, show, list, cancel, retry and collect jobs.

Submitting is cheap (:func:`accept_job`): checks that need no parsing, the
job's record with its input in the store, ``queued`` in Redis, and a planning
task for ``ttsbatch beat`` (:mod:`scheduler.intake`); a job not planned yet
shows as ``queued`` with no chunks. :func:`submit_job` plans at once (the
jobs of a run, whose documents are ingested already).

Nothing here knows FastAPI; errors are :mod:`scheduler.api.errors` (and the
rest of the ttsbatch tree), which :mod:`scheduler.api.app` maps to statuses.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from celery import Celery

from scheduler.api.catalog import ENGINES, choose_engine
from scheduler.api.errors import (
    ConflictError,
    NotFoundError,
    NoWorkerError,
    TooLargeError,
    TooManyJobsError,
    UnsupportedError,
)
from scheduler.api.registry import JobEntry, Registry
from scheduler.api.schemas import ChunkError, Job, JobProgress, JobSpec, ResultFile
from scheduler.api.sources import SourceReader, check_limits
from scheduler.dispatch import create_producer
from scheduler.ingest import ingest_text
from scheduler.ingest.formats import SUPPORTED, detect
from scheduler.intake import Given, send_plan, store_inputs, too_many_characters
from scheduler.planning import doc_ids, doc_ids_of, job_id_of, plan_into, start_job
from scheduler.records import JobRecord, read_job_record, write_job_record
from scheduler.webhooks import check_target
from ttsbatch import keys, redisclient
from ttsbatch.manifests import find_manifest
from ttsbatch.messages import FINALIZE_QUEUE, queue_for
from ttsbatch.models import Document, JobOptions, JobStatus, Manifest
from ttsbatch.roster import Roster
from ttsbatch.settings import ApiSettings, JobDefaults, Settings
from ttsbatch.state import TERMINAL, JobSnapshot, JobState, mark_manifest
from ttsbatch.storage import Store, open_store
from ttsbatch.storage.s3 import S3Store

#: Plans an accepted job, given its id and maybe its record (by default: queues the planning task).
Plan = Callable[[str, JobRecord | None], object]
CANCELLED_BY_USER = "cancelled by the user"

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
    #: Plans an accepted job: sends the planning task to ``ttsbatch beat``.
    plan: Plan

    @classmethod
    def connect(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        client: redis.Redis | None = None,
        producer: Celery | None = None,
        plan: Plan | None = None,
    ) -> Services:
        """Open (lazily) the store, Redis and a producer named by ``settings``.

        Args:
            plan: plans an accepted job (default: queue the planning task).
        """
        store = store or open_store(settings.store)
        client = client or redisclient.connect(settings.redis_url, decode_responses=True)
        producer = producer or create_producer(settings)
        state = JobState(client)
        plan = plan or functools.partial(send_plan, producer)
        return cls(
            settings=settings,
            store=store,
            state=state,
            registry=Registry(client, store=store, replan=functools.partial(_replan, state, plan)),
            producer=producer,
            sources=SourceReader(settings.api, store),
            plan=plan,
        )

    @property
    def roster(self) -> Roster:
        """The workers' heartbeats, in the job state's Redis and namespace."""
        return Roster(self.state.client, namespace=self.state.namespace)


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
        manifest = find_manifest(services.store, job_id)
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
    return tenant_job_id_of(tenant, [(d.name, d.source_sha256) for d in documents], options)


def tenant_job_id_of(
    tenant: str, identities: Sequence[tuple[str, str]], options: JobOptions
) -> str:
    """Return :func:`tenant_job_id` from each document's name and input SHA-256."""
    digest = hashlib.sha256(f"{tenant}\0{job_id_of(identities, options)}".encode())
    return digest.hexdigest()[:20]


def file_input(filename: str, data: bytes) -> Given:
    """Return an uploaded (or read) file as a job's input, its format known by name or content.

    Raises:
        UnsupportedError: not one of txt, md, html, epub.
        InputError: it is empty.
    """
    if detect(filename, data) is None:
        raise UnsupportedError(f"{filename}: not a supported format; upload one of: {SUPPORTED}")
    return Given.file(filename, data)


def check_size(given: Sequence[Given], limits: ApiSettings) -> None:
    """Refuse at once what is over the documents limit, or surely over the characters limit.

    Inline text is counted as ingested (only when its raw length is over the
    limit: ingestion drops whitespace and markup); files are counted when planned.

    Raises:
        TooLargeError: saying the limit.
    """
    if len(given) > limits.max_documents_per_job:
        raise TooLargeError(
            f"{len(given)} documents in one job; the limit is"
            f" {limits.max_documents_per_job}: split them over several jobs or use /v1/runs"
        )
    texts = [item for item in given if item.kind == "text"]
    if sum(len(item.data) for item in texts) <= limits.max_chars_per_job:
        return  # UTF-8 bytes are at least as many as characters
    chars = sum(
        len(ingest_text(item.data.decode("utf-8", "surrogatepass"), item.name).text)
        for item in texts
    )
    if chars > limits.max_chars_per_job:
        raise TooLargeError(too_many_characters(chars, limits.max_chars_per_job))


def accept_job(
    services: Services,
    tenant: str,
    given: Sequence[Given],
    spec: JobSpec,
    *,
    run_id: str | None = None,
    capped: bool = True,
) -> Job:
    """Accept a job for ``tenant``: store its input, queue its planning; return its resource.

    The job is ``queued`` until ``ttsbatch beat`` plans it; an input that
    cannot be read fails it then, with ingestion's message. The same job
    submitted again while it is active (or after it succeeded) is only
    recorded again (tags, webhook); a failed or cancelled one is accepted again.
    The answer is made from what the request knows (no store read), unless
    the job was known already.

    Raises:
        TooLargeError: over the documents or characters limit.
        InvalidRequestError: unknown engine or voice, or a field its engine needs is missing.
        TooManyJobsError: the tenant is at its cap of running jobs.
        NoWorkerError: no live worker serves the job's engine.
    """
    check_size(given, services.settings.api)
    options = job_options(spec, services.settings.defaults)
    _check_webhook(services, spec)
    names = [item.document_name for item in given]
    job_id = tenant_job_id_of(tenant, [(i.document_name, i.sha256) for i in given], options)
    check_workers(services, options.engine.engine, job_id)
    _reserve(services, tenant, job_id, capped=capped)
    try:
        entry = _entry(services, tenant, job_id, spec, options, names, doc_ids_of(names), run_id)
        status = services.state.status(job_id)
        if status is JobStatus.SUCCEEDED or (status is not None and status not in TERMINAL):
            _record_again(services, entry)  # the same job again, while it runs or once it succeeded
            if status is JobStatus.SUCCEEDED:
                services.registry.release(tenant, job_id)
            return show_job(services, entry)
        record = _job_record(entry, inputs=store_inputs(services.store, job_id, given))
        write_job_record(services.store, record)
        services.registry.add_job(entry)
        services.state.set_status(job_id, JobStatus.QUEUED, only_if_active=False)
        services.plan(job_id, record)
    except BaseException:
        services.registry.release(tenant, job_id)
        raise
    warning = _waiting(services, JobStatus.QUEUED, options)
    return render_unplanned(entry, JobStatus.QUEUED, None, warning=warning)


def submit_job(
    services: Services,
    tenant: str,
    documents: Sequence[Document],
    spec: JobSpec,
    *,
    run_id: str | None = None,
    capped: bool = True,
) -> str:
    """Plan, record and dispatch a job of ingested documents for ``tenant``; return its id.

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
    _check_webhook(services, spec)
    job_id = tenant_job_id(tenant, documents, options)
    check_workers(services, options.engine.engine, job_id)
    _reserve(services, tenant, job_id, capped=capped)
    try:
        names = [document.name for document in documents]
        entry = _entry(services, tenant, job_id, spec, options, names, doc_ids(documents), run_id)
        write_job_record(services.store, _job_record(entry))
        services.registry.add_job(entry)
        if _active(services, job_id):
            return job_id  # the same job submitted again while it runs
        manifest, texts, fresh = plan_into(services.store, documents, options, job_id=job_id)
        if manifest.status is JobStatus.SUCCEEDED:
            services.registry.release(tenant, job_id)
        else:
            start_job(
                services.store, services.state, services.producer, manifest, texts, fresh=fresh
            )
    except BaseException:
        services.registry.release(tenant, job_id)
        raise
    return job_id


def _check_webhook(services: Services, spec: JobSpec) -> None:
    if spec.webhook_url:
        check_target(
            spec.webhook_url,
            allow_private=services.settings.api.webhook_allow_private,
            resolve=None,
        )


def _reserve(services: Services, tenant: str, job_id: str, *, capped: bool) -> None:
    cap = services.settings.api.max_concurrent_jobs if capped else 10**9
    if not services.registry.reserve(tenant, job_id, cap, lambda job: _ended(services, job)):
        raise TooManyJobsError(
            f"this tenant already runs {cap} jobs (TTSBATCH_API_MAX_CONCURRENT_JOBS):"
            " wait for one to end, or cancel one with DELETE /v1/jobs/{id}"
        )


def _entry(  # noqa: PLR0917 - one private helper of the two submit paths
    services: Services,
    tenant: str,
    job_id: str,
    spec: JobSpec,
    options: JobOptions,
    names: Sequence[str],
    documents: Sequence[str],
    run_id: str | None,
) -> JobEntry:
    """The job's index entry; a job known already keeps its creation time and old tags."""
    entry = JobEntry(
        job_id=job_id,
        tenant=tenant,
        name=spec.name or names[0],
        tags=dict(spec.tags),
        webhook_url=spec.webhook_url,
        run_id=run_id,
        created_at=time.time(),
        options=options,
        documents=tuple(documents),
    )
    existing = services.registry.job(job_id)
    return entry if existing is None else _refreshed(existing, entry)


def _job_record(entry: JobEntry, **fields: object) -> JobRecord:
    return JobRecord.model_validate(
        {
            "job_id": entry.job_id,
            "tenant": entry.tenant,
            "name": entry.name,
            "tags": entry.tags,
            "webhook_url": entry.webhook_url,
            "run_id": entry.run_id,
            "created_at": entry.created_at,
            "options": entry.options,
            "documents": entry.documents,
            **fields,
        }
    )


def _record_again(services: Services, entry: JobEntry) -> None:
    """Record new tags and webhook of a job submitted again; its input stays as it was."""
    stored = read_job_record(services.store, entry.job_id)
    kept = {} if stored is None else {"inputs": stored.inputs, "status": stored.status}
    write_job_record(services.store, _job_record(entry, **kept))
    services.registry.add_job(entry)


def _replan(state: JobState, plan: Plan, job_id: str) -> None:
    """Plan again a job accepted before Redis lost its state and its planning message."""
    if state.status(job_id) is None:
        state.set_status(job_id, JobStatus.QUEUED, only_if_active=False)
        plan(job_id, None)


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
        options=entry.options,
        documents=entry.documents,
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
        warning = _waiting(services, status, manifest.options)
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
        entry, status, snapshot, error=error, warning=_waiting(services, status, entry.options)
    )


def _waiting(services: Services, status: JobStatus, options: JobOptions) -> str | None:
    return None if status in TERMINAL else services.roster.waiting_reason(options.engine.engine)


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
        services.registry.forget_job(entry)


def retry(services: Services, entry: JobEntry) -> None:
    """Re-run only what is missing or failed of a failed or cancelled job.

    Raises:
        ConflictError: the job is still running, or succeeded.
        NoWorkerError: no live worker serves the job's engine.
    """
    manifest = find_manifest(services.store, entry.job_id)
    if manifest is None:
        _retry_unplanned(services, entry)
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
    _reserve_retry(services, entry)
    if entry.webhook_url:
        services.registry.add_job(entry)
    start_job(services.store, services.state, services.producer, manifest)


def _retry_unplanned(services: Services, entry: JobEntry) -> None:
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
    _reserve_retry(services, entry)
    try:
        queued = record.model_copy(update={"status": JobStatus.QUEUED, "error": None})
        write_job_record(services.store, queued)
        services.registry.add_job(entry)
        services.state.set_status(job_id, JobStatus.QUEUED, only_if_active=False)
        services.plan(job_id, queued)
    except BaseException:
        services.registry.release(entry.tenant, job_id)
        raise


def _reserve_retry(services: Services, entry: JobEntry) -> None:
    cap = services.settings.api.max_concurrent_jobs
    if not services.registry.reserve(
        entry.tenant, entry.job_id, cap, lambda j: _ended(services, j)
    ):
        raise TooManyJobsError(
            f"this tenant already runs {cap} jobs: wait for one to end before retrying"
        )


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
