"""Records of jobs, runs and schedules in the store: who owns them, what was asked.

The store is the truth; the tenant index in Redis is derived from these
records and rebuilt from them when Redis lost it (``FLUSHALL``, a new
server). Keys, relative to the store's prefix::

    jobs/<job_id>/api.json          a job's record (:class:`JobRecord`): tenant, name,
                                    tags, webhook, options, and the input until planned
    jobs/<job_id>/input/<n>         the bytes of input ``n`` too large to keep in the record
    runs/<run_id>.json              a run's record (its jobs by document), with its tenant
    schedules/<schedule_id>.json    a schedule's record (cron, source, spec), with its tenant

A job's record says ``queued``, ``failed`` or ``cancelled`` only for the time
before its manifest exists (accepted, not yet planned); from then on the
manifest (``jobs/<id>/manifest.json``) is the job's authoritative record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from ttsbatch import keys
from ttsbatch.errors import ObjectNotFoundError
from ttsbatch.models import JobOptions, JobStatus
from ttsbatch.storage import Store

JOB_RECORD_SCHEMA: Final = "ttsbatch.job-record/1"
RECORD_NAME: Final = "api.json"
#: Runs and schedules, each a folder of ``<id>.json`` records.
ItemKind = Literal["runs", "schedules"]


class JobInput(BaseModel):
    """One document of an accepted job as it was sent: inline text, or a file's bytes.

    ``text`` keeps a small input in the record itself (one write to accept a
    job); a larger one is stored at ``key``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["text", "file"]
    name: str = Field(description="text: the document's name; file: its file name as sent.")
    sha256: str = Field(description="SHA-256 of the input's bytes (text: UTF-8).")
    text: str | None = None
    key: str | None = None


class JobRecord(BaseModel):
    """``jobs/<id>/api.json``: a job as its tenant submitted it."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    schema_: Literal["ttsbatch.job-record/1"] = Field(default=JOB_RECORD_SCHEMA, alias="schema")
    job_id: str
    tenant: str
    name: str
    tags: dict[str, str] = Field(default_factory=dict)
    webhook_url: str | None = None
    run_id: str | None = None
    created_at: float = 0.0
    options: JobOptions | None = Field(
        default=None, description="None only in records written before options were kept."
    )
    documents: tuple[str, ...] = Field(default=(), description="Document ids, in order.")
    cache_scope: str | None = Field(
        default=None, description="The job's chunk cache (ttsbatch.cache); None: none."
    )
    cover: str | None = Field(
        default=None, description="Key of the cover uploaded with the job, over each document's."
    )
    preview_seconds: float | None = None
    account: str | None = Field(default=None, description="The tenant's billing account.")
    max_cost: float | None = None
    max_billed_chars: int | None = None
    inputs: tuple[JobInput, ...] = Field(
        default=(), description="What to plan; empty for a job planned when it was accepted."
    )
    status: JobStatus = Field(
        default=JobStatus.QUEUED,
        description="Before the job is planned: queued, failed (its input cannot be read)"
        " or cancelled. A planned job's status is its manifest's.",
    )
    error: str | None = None


def job_record_key(job_id: str) -> str:
    """Return the key of a job's record."""
    return keys.job_prefix(job_id) + RECORD_NAME


def input_key(job_id: str, index: int) -> str:
    """Return the key of the bytes of a job's input ``index``."""
    return f"{keys.job_prefix(job_id)}input/{index:03d}"


def write_job_record(store: Store, record: JobRecord) -> None:
    """Store a job's record (replacing an earlier one)."""
    store.write(
        job_record_key(record.job_id),
        record.model_dump_json(by_alias=True, exclude_none=True).encode(),
    )


def read_job_record(store: Store, job_id: str) -> JobRecord | None:
    """Return a job's record; None if the store holds none (never accepted, or purged).

    A record written before records kept options (``{"tenant", "name", "tags"}``)
    is read with ``options`` None.

    Raises:
        StorageError: the store failed to read it.
        ValueError: it is not a job record.
    """
    try:
        data = json.loads(store.read(job_record_key(job_id)))
    except ObjectNotFoundError:
        return None
    return JobRecord.model_validate({**data, "job_id": job_id})


def job_ids_with_records(store: Store) -> Iterator[tuple[str, bool]]:
    """Yield (job id, whether its manifest is stored) of every job that has a record.

    One listing of ``jobs/`` (every object of every job): meant for rebuilding
    an index, not for a request.
    """
    current: str | None = None
    recorded = planned = False
    for key in store.list("jobs/"):
        job_id, _, rest = key[len("jobs/") :].partition("/")
        if job_id != current:
            if current is not None and recorded:
                yield current, planned
            current, recorded, planned = job_id, False, False
        recorded = recorded or rest == RECORD_NAME
        planned = planned or rest == "manifest.json"
    if current is not None and recorded:
        yield current, planned


# -- runs and schedules ------------------------------------------------------------


def item_key(kind: ItemKind, item_id: str) -> str:
    """Return the key of a run's or schedule's record."""
    return f"{kind}/{item_id}.json"


def write_item(
    store: Store, kind: ItemKind, item_id: str, tenant: str, record: dict[str, object]
) -> None:
    """Store a run's or schedule's record with its tenant."""
    body = {**record, "tenant": tenant}
    store.write(item_key(kind, item_id), json.dumps(body, sort_keys=True, indent=1).encode())


def delete_item(store: Store, kind: ItemKind, item_id: str) -> None:
    """Delete a run's or schedule's record (missing is fine)."""
    store.delete([item_key(kind, item_id)])


def read_items(store: Store, kind: ItemKind) -> Iterator[tuple[str, dict[str, object]]]:
    """Yield (id, record) of every run or schedule stored; records may lack ``tenant``.

    Only ``<kind>/<id>.json`` are records (a schedule's ledger sits in its own folder).
    """
    prefix = f"{kind}/"
    for key in store.list(prefix):
        name = key[len(prefix) :]
        if "/" in name or not name.endswith(".json"):
            continue
        try:
            record = json.loads(store.read(key))
        except (ObjectNotFoundError, ValueError):
            continue  # deleted meanwhile, or not a record
        if isinstance(record, dict):
            yield name.removesuffix(".json"), record
