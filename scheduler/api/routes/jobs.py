"""``/v1/jobs``: submit, list, show, cancel, retry, collect and follow jobs."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Final

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from scheduler.api import control, results, submission, views
from scheduler.api.deps import ServicesDep, TenantDep
from scheduler.api.errors import InvalidRequestError, NotFoundError
from scheduler.api.media import media_type
from scheduler.api.ranges import BLOCK, RANGED, RangeHeader, ranged_response
from scheduler.api.routes.common import (
    CONFLICT,
    ERRORS,
    NOT_FOUND,
    SUBMIT,
    Limit,
    Offset,
    json_or_upload_body,
    parse_model,
    read_request,
)
from scheduler.api.schemas import Job, JobList, JobRequest, JobResult, JobSpec
from scheduler.api.services import Services
from scheduler.api.sources import Upload, cover_of, file_input
from scheduler.intake import Given
from scheduler.models import Caps
from ttsbatch.errors import ObjectNotFoundError
from ttsbatch.keys import job_prefix
from ttsbatch.models import Estimate, JobStatus
from ttsbatch.state import TERMINAL

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)

#: Seconds between two looks at a followed job's state; a keep-alive every so many.
EVENT_POLL: Final = 0.25
KEEPALIVE: Final = 15.0

_SUBMIT_BODY: Final = json_or_upload_body("JobRequest")


def _inputs(services: Services, request: JobRequest, uploads: list[Upload]) -> list[Given]:
    given = sum(x is not None for x in (request.input, request.documents, request.source)) + bool(
        uploads
    )
    if given != 1:
        raise InvalidRequestError(
            "give exactly one of `input` (text), `documents` (a list), `source` (s3://…)"
            " or uploaded `files`"
        )
    limit = services.settings.api.max_request_bytes
    if request.input is not None:
        return [Given.text(request.input, request.name or "text")]
    if request.documents is not None:
        return [Given.text(doc.text, doc.name) for doc in request.documents]
    if request.source is not None:
        uploads = [services.sources.read(request.source, limit)]
    return [file_input(upload.filename, upload.data) for upload in uploads]


def _digest(data: object, uploads: list[Upload]) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode())
    for upload in uploads:
        digest.update(upload.filename.encode() + b"\0" + hashlib.sha256(upload.data).digest())
    return digest.hexdigest()[:32]


@router.post(
    "",
    status_code=202,
    response_model=Job,
    summary="Submit a job",
    responses={
        **SUBMIT,
        202: {"model": Job, "description": "Accepted; follow its events."},
        200: {"model": Estimate, "description": "A dry run (`dry_run`): what it would cost."},
    },
    openapi_extra=_SUBMIT_BODY,
)
async def create_job(
    request: Request,
    services: ServicesDep,
    tenant: TenantDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Submitting again with the same key returns the first job.",
        ),
    ] = None,
) -> Job | JSONResponse:
    """Submit text (`input`), inline `documents`, an `s3://` `source`, or upload files.

    The job is accepted at once, `queued` with no chunks until it is planned;
    an input that cannot be read fails it then, saying why. The same content
    and options submitted again by the same tenant are the same job (a failed
    one resumes); an `Idempotency-Key` returns the first job too.
    """
    uploads, data = await read_request(request, services.settings.api.max_request_bytes)
    job_request = parse_model(JobRequest, data)
    digest = _digest(data, uploads)
    if idempotency_key:
        known = await run_in_threadpool(services.registry.idempotent, tenant, idempotency_key)
        if known is not None:
            job_id, seen = known
            if seen != digest:
                raise InvalidRequestError(
                    "this Idempotency-Key was used for a different request: use a new key"
                )
            entry = services.registry.job(job_id, tenant)
            if entry is not None:
                return await run_in_threadpool(views.show_job, services, entry)

    covers = [upload for upload in uploads if upload.field == "cover"]
    if len(covers) > 1:
        raise InvalidRequestError("send one `cover` image at most")
    cover = cover_of(covers[0]) if covers else None
    uploads = [upload for upload in uploads if upload.field != "cover"]

    def submit() -> Job | JSONResponse:
        given = _inputs(services, job_request, uploads)
        spec = JobSpec.model_validate(job_request.model_dump(include=set(JobSpec.model_fields)))
        if job_request.dry_run:
            found = submission.estimate_job(services, tenant, given, spec)
            return JSONResponse(found.model_dump(mode="json"), status_code=200)
        job = submission.accept_job(services, tenant, given, spec, cover=cover)
        if idempotency_key:
            services.registry.remember(tenant, idempotency_key, job.id, digest)
        request.app.state.metrics.jobs.labels(job.options.engine.engine).inc()
        return job

    return await run_in_threadpool(submit)


@router.get("", summary="List jobs")
def list_jobs(
    services: ServicesDep,
    tenant: TenantDep,
    *,
    offset: Offset = 0,
    limit: Limit = 20,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    tag: Annotated[
        list[str] | None,
        Query(description="key=value; repeat for several (all must match).", max_length=20),
    ] = None,
) -> JobList:
    """Return the tenant's jobs, newest first, filtered by status and tags."""
    tags: dict[str, str] = {}
    for item in tag or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidRequestError(f"tag filter {item!r}: write key=value")
        tags[key] = value
    items, next_offset = views.list_jobs(
        services, tenant, status=status, tags=tags, offset=offset, limit=limit
    )
    return JobList(items=items, next_offset=next_offset)


@router.get("/{job_id}", summary="Show a job", responses=NOT_FOUND)
def get_job(job_id: str, services: ServicesDep, tenant: TenantDep) -> Job:
    """Return status, progress (chunks, characters, audio seconds, ETA), errors and times."""
    return views.show_job(services, views.owned(services, tenant, job_id))


@router.delete("/{job_id}", status_code=204, summary="Cancel a job", responses=NOT_FOUND)
def delete_job(
    job_id: str,
    services: ServicesDep,
    tenant: TenantDep,
    purge: Annotated[bool, Query(description="Also delete every artefact of the job.")] = False,
) -> Response:
    """Cancel the job (queued chunks are dropped); with `purge=true` delete its artefacts."""
    control.cancel(services, views.owned(services, tenant, job_id), purge=purge)
    return Response(status_code=204)


@router.post(
    "/{job_id}/retry",
    status_code=202,
    summary="Retry a failed or cancelled job",
    responses={**NOT_FOUND, **CONFLICT, 429: SUBMIT[429], 503: SUBMIT[503]},
)
def retry_job(
    job_id: str, services: ServicesDep, tenant: TenantDep, caps: Caps | None = None
) -> Job:
    """Re-run only the chunks that are missing or failed, then stitch.

    A body with caps replaces the job's (a job stopped at its cap goes on with a higher one).
    """
    entry = views.owned(services, tenant, job_id)
    control.retry(services, entry, caps)
    return views.show_job(services, entry)


@router.get(
    "/{job_id}/result",
    summary="Download URLs of a succeeded job's files",
    responses={**NOT_FOUND, **CONFLICT},
)
def get_result(
    job_id: str, request: Request, services: ServicesDep, tenant: TenantDep
) -> JobResult:
    """Return every output (audio, timestamps, source text, subtitles, manifest) with a URL."""
    entry = views.owned(services, tenant, job_id)
    base = str(request.base_url).rstrip("/")
    files, expires = results.result_files(services, entry, base)
    return JobResult(id=job_id, expires_in=expires, files=files)


@router.get(
    "/{job_id}/files/{name}",
    summary="Download one output (ranges; stores without presigned URLs, the player)",
    response_class=Response,
    responses={
        **NOT_FOUND,
        **RANGED,
        200: {"content": {"application/octet-stream": {}}, "description": "The file."},
    },
)
def get_file(
    job_id: str,
    name: str,
    services: ServicesDep,
    tenant: TenantDep,
    range_header: RangeHeader = None,
) -> Response:
    """Stream one output with its media type, honouring `Range` (206), never read whole.

    The player plays finished audio from here (same origin, same key), on
    either store; on S3, /result hands out presigned URLs as well.
    """
    entry = views.owned(services, tenant, job_id)
    manifest = views.load_manifest_or_404(services, entry.job_id)
    key = results.output_keys(manifest).get(name)
    if key is None or not key.startswith(job_prefix(job_id)):
        raise NotFoundError(f"job {job_id} has no file {name!r}: GET its /result for the list")
    try:
        size = services.store.size(key)
    except ObjectNotFoundError as exc:
        raise NotFoundError(f"job {job_id}: {name} is not stored ({exc})") from exc

    def read(start: int, end: int) -> Iterator[bytes]:
        with services.store.open_range(key, start, end) as stream:
            while block := stream.read(BLOCK):
                yield block

    return ranged_response(range_header, size, read, media_type=media_type(name))


@router.get(
    "/{job_id}/events",
    summary="Follow a job's progress (server-sent events)",
    response_class=StreamingResponse,
    responses={
        **NOT_FOUND,
        200: {
            "content": {
                "text/event-stream": {
                    "example": 'event: progress\ndata: {"id": "3f9c…", "status": "running", …}\n\n'
                    'event: end\ndata: {"id": "3f9c…", "status": "succeeded", …}\n\n'
                }
            },
            "description": "`progress` events whenever the job changes; one `end` event.",
        },
    },
)
def job_events(
    job_id: str, request: Request, services: ServicesDep, tenant: TenantDep
) -> StreamingResponse:
    """Stream `progress` events (the job resource) until the job ends, then `end`."""
    entry = views.owned(services, tenant, job_id)

    async def stream() -> AsyncIterator[str]:
        last = ""
        quiet = 0.0
        while True:
            try:
                job = await run_in_threadpool(views.show_job, services, entry)
            except NotFoundError:
                return  # purged while followed: nothing more to say
            body = job.model_dump_json()
            if job.status in TERMINAL:
                yield f"event: end\ndata: {body}\n\n"
                return
            if body != last:
                last, quiet = body, 0.0
                yield f"event: progress\ndata: {body}\n\n"
            elif quiet >= KEEPALIVE:
                quiet = 0.0
                yield ": keep-alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_POLL)
            quiet += EVENT_POLL

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
