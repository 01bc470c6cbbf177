"""``/v1/runs``: corpus runs, one job per document, with aggregate progress."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from scheduler import runs
from scheduler.api.deps import ServicesDep, TenantDep
from scheduler.api.errors import InvalidRequestError
from scheduler.api.ports import PortsDep
from scheduler.api.registry import page
from scheduler.api.routes.common import (
    ERRORS,
    NOT_FOUND,
    SUBMIT,
    Limit,
    Offset,
    json_or_upload_body,
    parse_model,
    read_request,
)
from scheduler.api.schemas import JobSpec, Run, RunList, RunRequest
from scheduler.ports import SourceFile

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=ERRORS)

_RUN_BODY: Final = json_or_upload_body("RunRequest")


@router.post(
    "",
    status_code=202,
    summary="Start a corpus run",
    responses={**SUBMIT, 202: {"model": Run, "description": "Accepted: one job per document."}},
    openapi_extra=_RUN_BODY,
)
async def create_run(request: Request, ports: PortsDep, tenant: TenantDep) -> Run:
    """Start one job per document of an `s3://` prefix (`source`), of `documents`, or of uploaded `files`."""
    uploads, data = await read_request(request, ports.settings.api.max_request_bytes)
    run_request = parse_model(RunRequest, data)
    if any(upload.field == "cover" for upload in uploads):
        raise InvalidRequestError(
            "a run takes no `cover`: send it with each job, or use the books' own"
        )
    given = (run_request.source is not None) + (run_request.documents is not None) + bool(uploads)
    if given != 1:
        raise InvalidRequestError(
            "give exactly one of `source` (an s3:// prefix), `documents` or uploaded `files`"
        )

    def start() -> Run:
        documents = [SourceFile(upload.filename, upload.data) for upload in uploads]
        if run_request.source is not None:
            documents = runs.read_source(ports, run_request.source)
        elif run_request.documents is not None:
            documents = [
                SourceFile(f"{doc.name}.txt", doc.text.encode()) for doc in run_request.documents
            ]
        spec = JobSpec.model_validate(run_request.model_dump(include=set(JobSpec.model_fields)))
        record = runs.start_run(ports, tenant, spec, documents, source=run_request.source)
        record["tenant"] = tenant
        return runs.show_run(ports, record)

    return await run_in_threadpool(start)


@router.get("", summary="List runs")
def list_runs(
    services: ServicesDep, ports: PortsDep, tenant: TenantDep, offset: Offset = 0, limit: Limit = 20
) -> RunList:
    """Return the tenant's runs, newest first."""
    ids, next_offset = page(services.registry.ids(tenant, "runs"), offset, limit)
    items = [runs.show_run(ports, runs.load_run(ports, tenant, run_id)) for run_id in ids]
    return RunList(items=items, next_offset=next_offset)


@router.get("/{run_id}", summary="Show a run", responses=NOT_FOUND)
def get_run(run_id: str, ports: PortsDep, tenant: TenantDep) -> Run:
    """Return the run's jobs by document and their aggregate progress."""
    return runs.show_run(ports, runs.load_run(ports, tenant, run_id))
