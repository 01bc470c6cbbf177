"""Schedules: cron-timed incremental runs over an ``s3://`` prefix, kept in celery-redbeat.

A schedule's record lives in the tenant index (tenant, cron, source, job
options); its timing is a redbeat entry in Redis that sends
:data:`SCHEDULED_RUN` with the schedule id. ``ttsbatch beat`` runs one beat
(redbeat's lock keeps it to one) with an embedded worker for that task
(:mod:`scheduler.beat`), which calls :func:`run_schedule`: only documents new
or changed since the last run (per :class:`~scheduler.ledger.Ledger`) become jobs.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Final

from celery import Celery
from celery.schedules import crontab
from redbeat import RedBeatSchedulerEntry  # type: ignore[import-untyped] # redbeat ships no types

from scheduler.ledger import Ledger, content_hash
from scheduler.models import JobSpec, Schedule, iso
from scheduler.ports import Ports
from scheduler.runs import new_run_id, read_source, start_run
from ttsbatch.errors import InvalidFieldError, NotFoundError
from ttsbatch.manifests import find_manifest
from ttsbatch.models import JobStatus

SCHEDULED_RUN: Final = "ttsbatch.scheduled_run"
SCHEDULE_QUEUE: Final = "ttsbatch.schedules"
_ENTRY_PREFIX: Final = "ttsbatch-schedule:"


def parse_cron(expression: str) -> crontab:
    """Return the crontab of ``minute hour day-of-month month day-of-week``.

    Raises:
        InvalidFieldError: not five fields, or a field out of range.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidFieldError(
            f"cron {expression!r}: give five fields, minute hour day-of-month month"
            " day-of-week (e.g. '0 2 * * *' for 02:00 UTC daily)"
        )
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        schedule = crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
        )
        schedule.remaining_estimate(schedule.now())
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise InvalidFieldError(f"cron {expression!r}: {exc}") from None
    return schedule


def _entry_name(schedule_id: str) -> str:
    return _ENTRY_PREFIX + schedule_id


def schedule_entry(beat: Celery, schedule_id: str, cron: str) -> RedBeatSchedulerEntry:
    """Return the redbeat entry that runs a schedule at its cron times (not saved yet).

    Raises:
        InvalidFieldError: a bad cron expression.
    """
    return RedBeatSchedulerEntry(
        _entry_name(schedule_id),
        SCHEDULED_RUN,
        parse_cron(cron),
        args=[schedule_id],
        options={"queue": SCHEDULE_QUEUE},
        app=beat,
    )


def create_schedule(
    ports: Ports, beat: Celery, tenant: str, *, cron: str, source: str, spec: JobSpec
) -> dict[str, object]:
    """Record a schedule and its redbeat entry (``beat``: the beat's app); return its record.

    Raises:
        InvalidFieldError: a bad cron expression.
        InputError: the source cannot be listed now (from ``ports.list_source``).
    """
    parse_cron(cron)
    ports.list_source(source)  # the bucket must be readable now, not at 2 am
    schedule_id = f"s-{uuid.uuid4().hex[:16]}"
    record: dict[str, object] = {
        "id": schedule_id,
        "cron": cron,
        "source": source,
        "spec": spec.model_dump(mode="json", exclude_defaults=True),
        "created_at_ts": time.time(),
    }
    ports.index.put("schedules", schedule_id, tenant, record)
    schedule_entry(beat, schedule_id, cron).save()
    return record


def load_schedule(ports: Ports, tenant: str | None, schedule_id: str) -> dict[str, object]:
    """Return a schedule's record (of ``tenant``, if given).

    Raises:
        NotFoundError: unknown, or another tenant's.
    """
    record = ports.index.get("schedules", schedule_id, tenant)
    if record is None:
        raise NotFoundError(f"no schedule {schedule_id}: GET /v1/schedules lists yours")
    return record


def delete_schedule(ports: Ports, beat: Celery, tenant: str, schedule_id: str) -> None:
    """Stop a schedule: its redbeat entry and its record go; its runs and jobs stay."""
    load_schedule(ports, tenant, schedule_id)
    prefix = beat.conf.redbeat_key_prefix
    with contextlib.suppress(KeyError):  # the entry is gone already
        RedBeatSchedulerEntry.from_key(f"{prefix}{_entry_name(schedule_id)}", app=beat).delete()
    ports.index.delete("schedules", schedule_id, tenant)


def show_schedule(ports: Ports, record: dict[str, object]) -> Schedule:
    """Return the schedule resource with its runs, newest first."""
    ledger = Ledger.load(ports.store, str(record["id"]))
    return Schedule(
        id=str(record["id"]),
        cron=str(record["cron"]),
        source=str(record["source"]),
        spec=dict(record.get("spec") or {}),  # type: ignore[call-overload]
        created_at=iso(float(record.get("created_at_ts") or 0)),  # type: ignore[arg-type]
        runs=[str(run["run_id"]) for run in reversed(ledger.runs)],
    )


def _job_status(ports: Ports, job_id: str) -> JobStatus | None:
    status = ports.state.status(job_id)
    if status is not None or not job_id:
        return status
    manifest = find_manifest(ports.store, job_id)
    return None if manifest is None else manifest.status


def run_schedule(ports: Ports, schedule_id: str) -> dict[str, object] | None:
    """Run a schedule once: submit jobs for new and changed documents only; record the run.

    Returns:
        The run's record, or None if the schedule was deleted.
    """
    try:
        record = load_schedule(ports, None, schedule_id)
    except NotFoundError:
        return None
    tenant = str(record["tenant"])
    source = str(record["source"])
    spec = JobSpec.model_validate(record.get("spec") or {})
    documents = {document.filename: document for document in read_source(ports, source)}
    hashes = {name: content_hash(document.data) for name, document in documents.items()}
    ledger = Ledger.load(ports.store, schedule_id)
    todo = ledger.pending(hashes, lambda job_id: _job_status(ports, job_id))
    skipped = sorted(set(documents) - set(todo))
    run_id = new_run_id()
    run = start_run(
        ports,
        tenant,
        spec,
        [documents[name] for name in todo],
        source=source,
        schedule_id=schedule_id,
        skipped=skipped,
        run_id=run_id,
    )
    jobs = dict(run["documents"])  # type: ignore[call-overload]
    ledger.record(run_id, {name: (hashes[name], jobs[name]) for name in todo}, skipped)
    ledger.save(ports.store, schedule_id)
    return run
