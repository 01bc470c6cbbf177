"""``/v1/schedules``: cron-timed incremental runs over an ``s3://`` prefix."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from scheduler import schedules
from scheduler.api.deps import ServicesDep, TenantDep
from scheduler.api.options import job_options
from scheduler.api.ports import PortsDep
from scheduler.api.registry import page
from scheduler.api.routes.common import ERRORS, NOT_FOUND, Limit, Offset
from scheduler.api.schemas import JobSpec, Run, Schedule, ScheduleList, ScheduleRequest
from scheduler.runs import show_run

router = APIRouter(prefix="/v1/schedules", tags=["schedules"], responses=ERRORS)


@router.post("", status_code=201, summary="Create a schedule")
def create_schedule(
    body: ScheduleRequest, request: Request, ports: PortsDep, tenant: TenantDep
) -> Schedule:
    """Run the options over `source` at every `cron` time; each run speaks only new or changed documents."""
    # Refuse now what every run would refuse: an unknown engine or voice, a missing model.
    job_options(body, ports.settings.defaults)
    spec = JobSpec.model_validate(body.model_dump(include=set(JobSpec.model_fields)))
    record = schedules.create_schedule(
        ports, request.app.state.beat, tenant, cron=body.cron, source=body.source, spec=spec
    )
    return schedules.show_schedule(ports, record)


@router.get("", summary="List schedules")
def list_schedules(
    services: ServicesDep, ports: PortsDep, tenant: TenantDep, offset: Offset = 0, limit: Limit = 20
) -> ScheduleList:
    """Return the tenant's schedules, newest first."""
    ids, next_offset = page(services.registry.ids(tenant, "schedules"), offset, limit)
    items = [
        schedules.show_schedule(ports, schedules.load_schedule(ports, tenant, sid)) for sid in ids
    ]
    return ScheduleList(items=items, next_offset=next_offset)


@router.get("/{schedule_id}", summary="Show a schedule", responses=NOT_FOUND)
def get_schedule(schedule_id: str, ports: PortsDep, tenant: TenantDep) -> Schedule:
    """Return the schedule and its runs, newest first."""
    return schedules.show_schedule(ports, schedules.load_schedule(ports, tenant, schedule_id))


@router.delete("/{schedule_id}", status_code=204, summary="Delete a schedule", responses=NOT_FOUND)
def delete_schedule(
    schedule_id: str, request: Request, ports: PortsDep, tenant: TenantDep
) -> Response:
    """Stop the schedule; its past runs and jobs stay."""
    schedules.delete_schedule(ports, request.app.state.beat, tenant, schedule_id)
    return Response(status_code=204)


@router.post(
    "/{schedule_id}/run",
    status_code=202,
    summary="Run a schedule now",
    responses={**NOT_FOUND, 202: {"model": Run, "description": "The run started."}},
)
def run_schedule_now(schedule_id: str, ports: PortsDep, tenant: TenantDep) -> Run:
    """Run the schedule at once (as its cron would): only new or changed documents."""
    schedules.load_schedule(ports, tenant, schedule_id)
    record = schedules.run_schedule(ports, schedule_id)
    if record is None:
        schedules.load_schedule(ports, tenant, schedule_id)  # deleted meanwhile: 404
    assert record is not None  # noqa: S101 - load_schedule raised otherwise
    record["tenant"] = tenant
    return show_run(ports, record)
