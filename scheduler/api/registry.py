"""The API's index in Redis: who owns which job, run and schedule; tags; idempotency.

The store stays the truth of a job's content (its manifest); this is the
tenant's view of it. Keys, under ``<ns>:api``::

    job:<id>                  hash   tenant, name, tags, webhook_url, run_id, created_at
    run:<id>                  hash   tenant, record (JSON)
    schedule:<id>             hash   tenant, record (JSON)
    tenant:<t>:<kind>         zset   ids by creation time (kind: jobs, runs, schedules)
    tenant:<t>:active         set    the tenant's jobs not yet ended (the concurrency cap)
    tenant:<t>:idem:<key>     string job id and request hash of an Idempotency-Key
    webhooks                  set    jobs whose webhook is still to be called
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal, cast

import redis

Kind = Literal["jobs", "runs", "schedules"]
IDEMPOTENCY_TTL: Final = 24 * 3600

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


class Registry:
    """Tenant ownership and indexes; the client must decode responses."""

    def __init__(self, client: redis.Redis, *, namespace: str = "ttsbatch") -> None:
        self.client = client
        self.ns = f"{namespace}:api"
        self._reserve = client.register_script(_RESERVE)

    def _tenant(self, tenant: str, part: str) -> str:
        return f"{self.ns}:tenant:{tenant}:{part}"

    # -- jobs ------------------------------------------------------------------

    def add_job(self, entry: JobEntry) -> None:
        """Record a job as the tenant's (again, if it exists: tags and webhook are updated)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(
            f"{self.ns}:job:{entry.job_id}",
            mapping={
                "tenant": entry.tenant,
                "name": entry.name,
                "tags": json.dumps(entry.tags, sort_keys=True),
                "webhook_url": entry.webhook_url or "",
                "run_id": entry.run_id or "",
                "created_at": entry.created_at,
            },
        )
        pipe.zadd(self._tenant(entry.tenant, "jobs"), {entry.job_id: entry.created_at}, nx=True)
        if entry.webhook_url:
            pipe.sadd(f"{self.ns}:webhooks", entry.job_id)
        pipe.execute()

    def job(self, job_id: str, tenant: str | None = None) -> JobEntry | None:
        """Return a job's record; None if unknown or (with ``tenant``) another tenant's."""
        fields = cast("dict[str, str]", self.client.hgetall(f"{self.ns}:job:{job_id}"))
        if not fields or (tenant is not None and fields.get("tenant") != tenant):
            return None
        return JobEntry(
            job_id=job_id,
            tenant=fields["tenant"],
            name=fields.get("name", ""),
            tags=json.loads(fields.get("tags") or "{}"),
            webhook_url=fields.get("webhook_url") or None,
            run_id=fields.get("run_id") or None,
            created_at=float(fields.get("created_at") or 0),
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
        return cast("list[str]", self.client.zrevrange(self._tenant(tenant, kind), 0, -1))

    # -- the concurrency cap ---------------------------------------------------

    def reserve(self, tenant: str, job_id: str, cap: int, ended: Callable[[str], bool]) -> bool:
        """Take one of the tenant's ``cap`` job slots for ``job_id``; False if none is free.

        Slots of jobs that ``ended`` says are over are given back first.
        """
        key = self._tenant(tenant, "active")
        members = cast("set[str]", self.client.smembers(key))
        finished = [job for job in members if job != job_id and ended(job)]
        if finished:
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

    def put(self, kind: Kind, item_id: str, tenant: str, record: dict[str, object]) -> None:
        """Store a run or schedule record (JSON) as the tenant's."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(
            f"{self.ns}:{kind}:{item_id}",
            mapping={"tenant": tenant, "record": json.dumps(record, sort_keys=True)},
        )
        created = float(cast("float", record.get("created_at_ts", time.time())))
        pipe.zadd(self._tenant(tenant, kind), {item_id: created}, nx=True)
        pipe.execute()

    def get(self, kind: Kind, item_id: str, tenant: str | None = None) -> dict[str, object] | None:
        """Return a run or schedule record; None if unknown or another tenant's."""
        fields = cast("dict[str, str]", self.client.hgetall(f"{self.ns}:{kind}:{item_id}"))
        if not fields or (tenant is not None and fields.get("tenant") != tenant):
            return None
        record = cast("dict[str, object]", json.loads(fields["record"]))
        record["tenant"] = fields["tenant"]
        return record

    def delete(self, kind: Kind, item_id: str, tenant: str) -> None:
        """Forget a run or schedule."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(f"{self.ns}:{kind}:{item_id}")
        pipe.zrem(self._tenant(tenant, kind), item_id)
        pipe.execute()


def page(ids: Iterable[str], offset: int, limit: int) -> tuple[list[str], int | None]:
    """Cut one page out of ``ids``; return it and the next offset (None at the end)."""
    items = list(ids)
    chunk = items[offset : offset + limit]
    return chunk, (offset + limit if offset + limit < len(items) else None)
