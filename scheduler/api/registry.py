"""The API's index in Redis: who owns which job, run and schedule; tags; idempotency.

The store is the truth (:mod:`scheduler.records`: every job's ``api.json``,
every run's and schedule's record with its tenant); this is the tenants'
view of it, derived data that :meth:`Registry.ensure_index` rebuilds from
the store when Redis lost it. Keys, under ``<ns>:api``::

    job:<id>                  hash   tenant, name, tags, webhook_url, run_id, created_at,
                                     options and document ids (JSON)
    runs:<id>                 hash   tenant, record (JSON)
    schedules:<id>            hash   tenant, record (JSON)
    tenant:<t>:<kind>         zset   ids by creation time (kind: jobs, runs, schedules)
    tenant:<t>:active         set    the tenant's jobs not yet ended (the concurrency cap)
    tenant:<t>:idem:<key>     string job id and request hash of an Idempotency-Key
    webhooks                  set    jobs whose webhook is still to be called
    indexed                   string present once the index holds every record of the store
    rebuilding                string the lock of whoever rebuilds the index
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, cast

import redis

from scheduler.records import (
    ItemKind,
    JobRecord,
    delete_item,
    job_ids_with_records,
    read_items,
    read_job_record,
    write_item,
)
from ttsbatch.errors import StorageError
from ttsbatch.keys import NAMESPACE, RedisKeys
from ttsbatch.manifests import find_manifest
from ttsbatch.models import JobOptions, JobStatus
from ttsbatch.storage import Store

log = logging.getLogger(__name__)

Kind = Literal["jobs", "runs", "schedules"]
IDEMPOTENCY_TTL: Final = 24 * 3600
#: Seconds a rebuild of the index may take before another process may start one.
REBUILD_LOCK_TTL: Final = 300
#: Seconds a reader waits for another process's rebuild before answering from what is there.
REBUILD_WAIT: Final = 30.0
#: Records written to Redis per round trip while rebuilding.
_BATCH: Final = 500

# KEYS: active set. ARGV: job id, cap. Returns 1 if the job holds a slot now.
_RESERVE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class JobEntry:
    """A job's API-side record."""

    job_id: str
    tenant: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    webhook_url: str | None = None
    run_id: str | None = None
    created_at: float = 0.0
    #: The job's options and document ids (None and empty only for old records).
    options: JobOptions | None = None
    documents: tuple[str, ...] = ()

    @classmethod
    def of(cls, record: JobRecord) -> JobEntry:
        """Return the index entry of a job's stored record."""
        return cls(
            job_id=record.job_id,
            tenant=record.tenant,
            name=record.name,
            tags=dict(record.tags),
            webhook_url=record.webhook_url,
            run_id=record.run_id,
            created_at=record.created_at,
            options=record.options,
            documents=record.documents,
        )


class Registry:
    """Tenant ownership and indexes; the client must decode responses.

    Args:
        client: Redis, with ``decode_responses=True``.
        store: where the records are kept and the index is rebuilt from
            (None: an index of Redis alone, never rebuilt).
        replan: called, after a rebuild, with each job the store holds as
            accepted but not planned (its planning message was lost with Redis).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        store: Store | None = None,
        namespace: str = NAMESPACE,
        replan: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.ns = RedisKeys(namespace).api
        self.replan = replan
        self._reserve = client.register_script(_RESERVE)

    def _tenant(self, tenant: str, part: str) -> str:
        return f"{self.ns}:tenant:{tenant}:{part}"

    # -- jobs ------------------------------------------------------------------

    def add_job(self, entry: JobEntry) -> None:
        """Record a job as the tenant's (again, if it exists: tags and webhook are updated)."""
        pipe = self.client.pipeline(transaction=True)
        self._add_job(pipe, entry)
        pipe.execute()

    def _add_job(self, pipe: redis.client.Pipeline, entry: JobEntry) -> None:
        fields: dict[str, str | float] = {
            "tenant": entry.tenant,
            "name": entry.name,
            "tags": json.dumps(entry.tags, sort_keys=True),
            "webhook_url": entry.webhook_url or "",
            "run_id": entry.run_id or "",
            "created_at": entry.created_at,
            "documents": json.dumps(entry.documents),
        }
        if entry.options is not None:
            fields["options"] = entry.options.model_dump_json()
        pipe.hset(f"{self.ns}:job:{entry.job_id}", mapping=fields)  # type: ignore[arg-type] # redis-py's mapping type is invariant
        pipe.zadd(self._tenant(entry.tenant, "jobs"), {entry.job_id: entry.created_at}, nx=True)
        if entry.webhook_url:
            pipe.sadd(f"{self.ns}:webhooks", entry.job_id)

    def job(self, job_id: str, tenant: str | None = None) -> JobEntry | None:
        """Return a job's record; None if unknown or (with ``tenant``) another tenant's."""
        key = f"{self.ns}:job:{job_id}"
        fields = cast("dict[str, str]", self.client.hgetall(key))
        if not fields and self.ensure_index():
            fields = cast("dict[str, str]", self.client.hgetall(key))
        if not fields or (tenant is not None and fields.get("tenant") != tenant):
            return None
        options = fields.get("options")
        return JobEntry(
            job_id=job_id,
            tenant=fields["tenant"],
            name=fields.get("name", ""),
            tags=json.loads(fields.get("tags") or "{}"),
            webhook_url=fields.get("webhook_url") or None,
            run_id=fields.get("run_id") or None,
            created_at=float(fields.get("created_at") or 0),
            options=JobOptions.model_validate_json(options) if options else None,
            documents=tuple(json.loads(fields.get("documents") or "[]")),
        )

    def forget_job(self, entry: JobEntry) -> None:
        """Remove a (purged) job from every index."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(f"{self.ns}:job:{entry.job_id}")
        pipe.zrem(self._tenant(entry.tenant, "jobs"), entry.job_id)
        pipe.srem(self._tenant(entry.tenant, "active"), entry.job_id)
        pipe.srem(f"{self.ns}:webhooks", entry.job_id)
        pipe.execute()

    def ids(self, tenant: str, kind: Kind) -> list[str]:
        """Return the tenant's ids of ``kind``, newest first."""
        self.ensure_index()
        return cast("list[str]", self.client.zrevrange(self._tenant(tenant, kind), 0, -1))

    # -- the concurrency cap ---------------------------------------------------

    def reserve(self, tenant: str, job_id: str, cap: int, ended: Callable[[str], bool]) -> bool:
        """Take one of the tenant's ``cap`` job slots for ``job_id``; False if none is free.

        When none is free, the slots of jobs that ``ended`` says are over are
        given back first (only then: a free slot costs one round trip).
        """
        key = self._tenant(tenant, "active")
        if self._reserve(keys=[key], args=[job_id, cap]):
            return True
        members = cast("set[str]", self.client.smembers(key))
        finished = [job for job in members if job != job_id and ended(job)]
        if not finished:
            return False
        self.client.srem(key, *finished)
        return bool(self._reserve(keys=[key], args=[job_id, cap]))

    def release(self, tenant: str, job_id: str) -> None:
        """Give back a job's slot."""
        self.client.srem(self._tenant(tenant, "active"), job_id)

    # -- idempotency -----------------------------------------------------------

    def idempotent(self, tenant: str, key: str) -> tuple[str, str] | None:
        """Return (job id, request hash) recorded for an Idempotency-Key, if any."""
        value = cast("str | None", self.client.get(self._tenant(tenant, f"idem:{key}")))
        if not value:
            return None
        job_id, _, digest = value.partition(" ")
        return job_id, digest

    def remember(self, tenant: str, key: str, job_id: str, digest: str) -> None:
        """Record the job an Idempotency-Key created, for a day."""
        self.client.set(
            self._tenant(tenant, f"idem:{key}"), f"{job_id} {digest}", ex=IDEMPOTENCY_TTL
        )

    # -- webhooks --------------------------------------------------------------

    def webhook_jobs(self) -> list[str]:
        """Return the jobs whose webhook is still to be called."""
        return sorted(cast("set[str]", self.client.smembers(f"{self.ns}:webhooks")))

    def claim_webhook(self, job_id: str) -> bool:
        """Take a job's webhook call; only one caller (of many API replicas) gets True."""
        return bool(self.client.srem(f"{self.ns}:webhooks", job_id))

    # -- runs and schedules ----------------------------------------------------

    def put(self, kind: ItemKind, item_id: str, tenant: str, record: dict[str, object]) -> None:
        """Store a run or schedule record as the tenant's: in the store, then in the index."""
        if self.store is not None:
            write_item(self.store, kind, item_id, tenant, record)
        pipe = self.client.pipeline(transaction=True)
        self._put(pipe, kind, item_id, tenant, record)
        pipe.execute()

    def _put(
        self,
        pipe: redis.client.Pipeline,
        kind: ItemKind,
        item_id: str,
        tenant: str,
        record: dict[str, object],
    ) -> None:
        body = {k: v for k, v in record.items() if k != "tenant"}
        pipe.hset(
            f"{self.ns}:{kind}:{item_id}",
            mapping={"tenant": tenant, "record": json.dumps(body, sort_keys=True)},
        )
        created = float(cast("float", record.get("created_at_ts", time.time())))
        pipe.zadd(self._tenant(tenant, kind), {item_id: created}, nx=True)

    def get(
        self, kind: ItemKind, item_id: str, tenant: str | None = None
    ) -> dict[str, object] | None:
        """Return a run or schedule record; None if unknown or another tenant's."""
        key = f"{self.ns}:{kind}:{item_id}"
        fields = cast("dict[str, str]", self.client.hgetall(key))
        if not fields and self.ensure_index():
            fields = cast("dict[str, str]", self.client.hgetall(key))
        if not fields or (tenant is not None and fields.get("tenant") != tenant):
            return None
        record = cast("dict[str, object]", json.loads(fields["record"]))
        record["tenant"] = fields["tenant"]
        return record

    def delete(self, kind: ItemKind, item_id: str, tenant: str) -> None:
        """Forget a run or schedule, in the index and in the store."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(f"{self.ns}:{kind}:{item_id}")
        pipe.zrem(self._tenant(tenant, kind), item_id)
        pipe.execute()
        if self.store is not None:
            delete_item(self.store, kind, item_id)

    # -- rebuilding from the store ---------------------------------------------

    def ensure_index(self) -> bool:
        """Rebuild the index from the store if Redis lost it; return whether it was just built.

        Costs one ``EXISTS`` when the index is whole. Listings call it; a
        lookup calls it only when it found nothing. One process rebuilds (a
        lock in Redis); the others wait for it, at most :data:`REBUILD_WAIT` seconds.
        """
        marker = f"{self.ns}:indexed"
        if self.store is None or self.client.exists(marker):
            return False
        lock, token = f"{self.ns}:rebuilding", uuid.uuid4().hex
        if not self.client.set(lock, token, nx=True, ex=REBUILD_LOCK_TTL):
            deadline = time.monotonic() + REBUILD_WAIT
            while not self.client.exists(marker) and time.monotonic() < deadline:
                time.sleep(0.05)
            return True
        try:
            unplanned = self.rebuild()
            self.client.set(marker, str(time.time()))
        finally:
            if self.client.get(lock) == token:
                self.client.delete(lock)
        for job_id in unplanned:
            if self.replan is not None:
                self.replan(job_id)
        return True

    def rebuild(self) -> list[str]:
        """Index every job, run and schedule the store records; return the unplanned jobs.

        Entries already in Redis are refreshed from the store, which is the truth.
        """
        if self.store is None:
            return []
        tenants: dict[str, str] = {}
        unplanned: list[str] = []
        jobs = runs = schedules = 0
        for entries in _batched(self._stored_jobs(unplanned)):
            pipe = self.client.pipeline(transaction=False)
            for entry in entries:
                self._add_job(pipe, entry)
                tenants[entry.job_id] = entry.tenant
                jobs += 1
            pipe.execute()
        owners: dict[str, str] = {}
        for kind in ("schedules", "runs"):
            pipe = self.client.pipeline(transaction=False)
            for item_id, record in read_items(self.store, kind):
                tenant = _owner(record, tenants, owners)
                if tenant is None:
                    log.warning("%s %s: its record names no tenant; not listed", kind, item_id)
                    continue
                owners[item_id] = tenant
                self._put(pipe, kind, item_id, tenant, record)
                runs, schedules = (runs + 1, schedules) if kind == "runs" else (runs, schedules + 1)
            pipe.execute()
        log.info(
            "index rebuilt from the store: %d jobs, %d runs, %d schedules", jobs, runs, schedules
        )
        return unplanned

    def _stored_jobs(self, unplanned: list[str]) -> Iterator[JobEntry]:
        assert self.store is not None  # noqa: S101 - rebuild checked it
        for job_id, planned in job_ids_with_records(self.store):
            try:
                record = read_job_record(self.store, job_id)
            except (StorageError, ValueError) as exc:
                log.warning("job %s: unreadable record, not listed (%s)", job_id, exc)
                continue
            if record is None:
                continue  # purged meanwhile
            if not planned and record.inputs and record.status is JobStatus.QUEUED:
                unplanned.append(job_id)
            if not record.created_at:  # an old record: its manifest says when
                record = record.model_copy(update={"created_at": self._planned_at(job_id)})
            yield JobEntry.of(record)

    def _planned_at(self, job_id: str) -> float:
        assert self.store is not None  # noqa: S101 - rebuild checked it
        try:
            manifest = find_manifest(self.store, job_id)
            if manifest is not None:
                return datetime.fromisoformat(manifest.created_at).timestamp()
        except (StorageError, ValueError):
            pass
        return 0.0


def _batched(entries: Iterable[JobEntry]) -> Iterator[list[JobEntry]]:
    batch: list[JobEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _owner(
    record: dict[str, object], tenants: dict[str, str], owners: dict[str, str]
) -> str | None:
    """The tenant of a run or schedule record; an old run's is its jobs' or its schedule's."""
    if isinstance(record.get("tenant"), str):
        return str(record["tenant"])
    documents = record.get("documents")
    for job_id in documents.values() if isinstance(documents, dict) else ():
        if job_id in tenants:
            return tenants[job_id]
    return owners.get(str(record.get("schedule_id")))


def page(ids: Iterable[str], offset: int, limit: int) -> tuple[list[str], int | None]:
    """Cut one page out of ``ids``; return it and the next offset (None at the end)."""
    items = list(ids)
    chunk = items[offset : offset + limit]
    return chunk, (offset + limit if offset + limit < len(items) else None)
