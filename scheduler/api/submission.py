"""Accepting and submitting jobs: their ids, checks, slots and index entries.

Submitting is cheap (:func:`accept_job`): checks that need no parsing, the
job's record with its input in the store, ``queued`` in Redis, and a planning
task for ``ttsbatch beat`` (:mod:`scheduler.intake`); a job not planned yet
shows as ``queued`` with no chunks. :func:`submit_job` plans at once (the
jobs of a run, whose documents are ingested already).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from scheduler import retention
from scheduler.api.availability import check_workers, waiting_reason
from scheduler.api.options import job_options
from scheduler.api.registry import JobEntry
from scheduler.api.rendering import render_unplanned
from scheduler.api.reservations import is_active, reserve
from scheduler.api.schemas import Job, JobSpec
from scheduler.api.services import Services
from scheduler.api.sources import check_limits, check_size
from scheduler.api.views import show_job
from scheduler.costing import estimate, preview
from scheduler.intake import Given, store_cover, store_inputs
from scheduler.planning import doc_ids_of, job_id_of, plan_into, plan_job, start_job
from scheduler.records import JobRecord, read_job_record, write_job_record
from scheduler.webhooks import check_target
from ttsbatch.billing import account_of
from ttsbatch.cache import ChunkCache, tenant_scope
from ttsbatch.models import Cover, Document, Estimate, JobOptions, JobStatus
from ttsbatch.state import TERMINAL


def tenant_job_id(tenant: str, identities: Sequence[tuple[str, str]], options: JobOptions) -> str:
    """Return the job id: deterministic per tenant, content and options.

    Submitting the same documents with the same options again finds the same
    job (and resumes it if it failed); another tenant gets a different id.

    Args:
        identities: each document's name and input SHA-256.
    """
    digest = hashlib.sha256(f"{tenant}\0{job_id_of(identities, options)}".encode())
    return digest.hexdigest()[:20]


def accept_job(
    services: Services,
    tenant: str,
    given: Sequence[Given],
    spec: JobSpec,
    *,
    run_id: str | None = None,
    capped: bool = True,
    cover: Cover | None = None,
) -> Job:
    """Accept a job for ``tenant``: store its input, queue its planning; return its resource.

    ``cover``, uploaded with the job, goes over each document's own.

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
    identities = [(item.document_name, item.sha256) for item in given]
    options, entry = _admit(
        services, tenant, spec, identities, run_id=run_id, capped=capped, cover=cover
    )
    job_id = entry.job_id
    try:
        status = services.state.status(job_id)
        if status is JobStatus.SUCCEEDED or (status is not None and status not in TERMINAL):
            _record_again(services, entry)  # the same job again, while it runs or once it succeeded
            if status is JobStatus.SUCCEEDED:
                services.registry.release(tenant, job_id)
            return show_job(services, entry)
        record = _job_record(
            entry,
            inputs=store_inputs(services.store, job_id, given),
            cache_scope=cache_scope(services, tenant, spec),
            cover=store_cover(services.store, job_id, cover),
            account=account_of(tenant),
            preview_seconds=spec.preview_seconds,
            max_cost=spec.max_cost,
            max_billed_chars=spec.max_billed_chars,
        )
        write_job_record(services.store, record)
        retention.mark(services.store, job_id, lifetime(services, spec))
        services.registry.add_job(entry)
        services.state.set_status(job_id, JobStatus.QUEUED, only_if_active=False)
        services.plan(job_id, record)
    except BaseException:
        services.registry.release(tenant, job_id)
        raise
    warning = waiting_reason(services, JobStatus.QUEUED, options)
    return render_unplanned(entry, JobStatus.QUEUED, None, warning=warning)


def estimate_job(
    services: Services, tenant: str, given: Sequence[Given], spec: JobSpec
) -> Estimate:
    """What the job would cost (a dry run): it is ingested and split as planning would,
    its chunks looked up in the tenant's cache; nothing is stored or sent.

    Raises:
        TooLargeError, InputError, InvalidRequestError: as submitting the job would.
    """
    check_size(given, services.settings.api)
    options = job_options(spec, services.settings.defaults)
    documents = [item.document() for item in given]
    check_limits(documents, services.settings.api)
    if spec.preview_seconds is not None:
        documents = preview(documents, options, spec.preview_seconds)
    manifest = plan_job(documents, options)
    texts = {plan.doc: doc.text for plan, doc in zip(manifest.documents, documents, strict=True)}
    scope = cache_scope(services, tenant, spec)
    cache = ChunkCache(services.store, scope) if scope else None
    return estimate(manifest, texts, services.settings, cache)


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
        TooLargeError, InvalidRequestError, TooManyJobsError, NoWorkerError:
            as :func:`accept_job` does.
    """
    check_limits(documents, services.settings.api)
    identities = [(document.name, document.source_sha256) for document in documents]
    options, entry = _admit(services, tenant, spec, identities, run_id=run_id, capped=capped)
    job_id = entry.job_id
    try:
        scope = cache_scope(services, tenant, spec)
        write_job_record(
            services.store, _job_record(entry, cache_scope=scope, account=account_of(tenant))
        )
        retention.mark(services.store, job_id, lifetime(services, spec))
        services.registry.add_job(entry)
        if is_active(services, job_id):
            return job_id  # the same job submitted again while it runs
        manifest, texts, fresh = plan_into(
            services.store,
            documents,
            options,
            job_id=job_id,
            cache_scope=scope,
            account=account_of(tenant),
        )
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


def _admit(
    services: Services,
    tenant: str,
    spec: JobSpec,
    identities: Sequence[tuple[str, str]],
    *,
    run_id: str | None,
    capped: bool,
    cover: Cover | None = None,
) -> tuple[JobOptions, JobEntry]:
    """Check what both submit paths check, take the job's slot; return its options and entry.

    Args:
        identities: each document's name and input SHA-256.
        cover: the job's uploaded cover (it is part of the job's identity).
    """
    options = job_options(spec, services.settings.defaults, cover=cover)
    if spec.webhook_url:
        check_target(
            spec.webhook_url,
            allow_private=services.settings.api.webhook_allow_private,
            resolve=None,
        )
    job_id = tenant_job_id(tenant, identities, options)
    check_workers(services, options.engine.engine, job_id)
    reserve(services, tenant, job_id, capped=capped)
    try:
        names = [name for name, _ in identities]
        return options, _entry(services, tenant, job_id, spec, options, names, run_id)
    except BaseException:
        services.registry.release(tenant, job_id)
        raise


def _entry(  # noqa: PLR0917 - a private helper of _admit, which has every field at hand
    services: Services,
    tenant: str,
    job_id: str,
    spec: JobSpec,
    options: JobOptions,
    names: Sequence[str],
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
        documents=tuple(doc_ids_of(names)),
    )
    existing = services.registry.job(job_id)
    return entry if existing is None else _refreshed(existing, entry)


def lifetime(services: Services, spec: JobSpec) -> float | None:
    """Hours a job's outputs live: its own, or the deployment's (0 or ``None``: for ever)."""
    return spec.time_to_live_hours or services.settings.api.job_ttl_hours or None


def cache_scope(services: Services, tenant: str, spec: JobSpec) -> str | None:
    """The chunk cache a tenant's job uses: the tenant's own, the deployment's shared one,
    or none (``"cache": false``)."""
    if not spec.cache:
        return None
    return tenant_scope(tenant, shared=services.settings.chunk_cache.shared)


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
