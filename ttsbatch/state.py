"""Job state in Redis, shared by the scheduler side and the workers.

Redis is a progress index, never the truth: the store is (architecture.md).
:meth:`JobState.rebuild_from_store` recreates a job's state from the stored
manifest and chunk records alone, e.g. after ``FLUSHALL``.

Keys, under a namespace (``ttsbatch`` unless told)::

    <ns>:job:<id>            hash   status, total, counts, timings, error, finalize_by
    <ns>:job:<id>:done       set    ids of stored chunks (``doc/000042``): a
                                    redelivered chunk is not counted twice
    <ns>:job:<id>:events     list   one entry per newly stored chunk, for followers
    <ns>:job:<id>:errors     hash   chunk id -> its last error (cleared when stored)
    <ns>:job:<id>:failed     hash   chunk id -> why it failed for good
    <ns>:job:<id>:lock       string the finalize lock (``SET NX`` with expiry)

Every decision that two workers could race on runs as one Lua script: adding a
chunk to the done set and deciding who is last (so ``finalize`` is enqueued
exactly once), failing a job, cancelling it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, cast

import redis
from redis.typing import EncodableT, FieldT

from ttsbatch import keys, redisclient
from ttsbatch.errors import StorageError
from ttsbatch.messages import chunk_id
from ttsbatch.models import ChunkRecord, JobStatus, Manifest
from ttsbatch.storage import Store

TERMINAL: Final = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
#: How long a finished job's state stays in Redis (the store keeps it forever).
FINISHED_TTL_SECONDS: Final = 7 * 24 * 3600

_ACTIVE_LUA = "local active = {queued=true, running=true, stitching=true}\n"
_REDIS_NOW = """
local now = redis.call('TIME')
local seconds = tonumber(now[1]) + tonumber(now[2]) / 1e6
local stamp = now[1] .. '.' .. string.format('%06d', now[2])
"""

# KEYS: job, done, events, errors. ARGV: chunk id ('' to only check), chars,
# audio seconds, synthesized (0/1), claimant, now.
# Returns {added, done, total, last}; {-1, 0, 0, 0} if the job is unknown.
_DONE = (
    _ACTIVE_LUA
    + _REDIS_NOW
    + """
local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
if not total then return {-1, 0, 0, 0} end
local added = 0
if ARGV[1] ~= '' then
  added = redis.call('SADD', KEYS[2], ARGV[1])
  if added == 1 then
    redis.call('HINCRBY', KEYS[1], 'chars_done', ARGV[2])
    redis.call('HINCRBYFLOAT', KEYS[1], 'audio_seconds', ARGV[3])
    redis.call('RPUSH', KEYS[3], ARGV[1] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
    redis.call('HDEL', KEYS[4], ARGV[1])
    redis.call('HSET', KEYS[1], 'progress_at', stamp, 'rescues', 0)
  end
end
local done = redis.call('SCARD', KEYS[2])
local last = 0
if done >= total and active[redis.call('HGET', KEYS[1], 'status')] then
  local by = redis.call('HGET', KEYS[1], 'finalize_by')
  if not by then
    redis.call('HSET', KEYS[1], 'finalize_by', ARGV[5], 'status', 'stitching', 'stitching_at', ARGV[6])
    last = 1
  elseif by == ARGV[5] then
    last = 1  -- the same message redelivered after its worker died: enqueue again
  end
end
return {added, done, total, last}
"""
)

# KEYS: job. ARGV: new status, now, error ('' for none), only_if_active (0/1).
# Returns 1 if the status changed.
_SET_STATUS = (
    _ACTIVE_LUA
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if ARGV[4] == '1' and status and not active[status] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[3]) end
if ARGV[1] == 'succeeded' or ARGV[1] == 'failed' or ARGV[1] == 'cancelled' then
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[2])
end
return 1
"""
)

# KEYS: job, failed. ARGV: chunk id, reason, budget, now.
# Returns 1 if this failure exhausted the budget and failed the job.
_FAIL_CHUNK = (
    _ACTIVE_LUA
    + """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
if redis.call('HLEN', KEYS[2]) > tonumber(ARGV[3]) and status and active[status] then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[4],
             'error', ARGV[1] .. ': ' .. ARGV[2])
  return 1
end
return 0
"""
)

# KEYS: job, its finalize lock. ARGV: seconds without progress. Claims the rescue
# of a job that has stored no chunk (running) or not started stitching (stitching,
# and no finalize holds the lock) for that long, doubled after each rescue so a job
# waiting behind a long queue is not re-sent again and again. Redis's clock, so
# followers on other machines agree. Returns 1 (re-send chunks) or 2 (re-send
# finalize) to the one caller that claims it, else 0.
_CLAIM_RESCUE = (
    _REDIS_NOW
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'stitching' then return 0 end
if status == 'stitching' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], 'progress_at'))
local rescues = tonumber(redis.call('HGET', KEYS[1], 'rescues') or '0')
if last and seconds - last < tonumber(ARGV[1]) * 2 ^ rescues then return 0 end
redis.call('HSET', KEYS[1], 'progress_at', stamp, 'rescues', rescues + 1)
if status == 'running' then return 1 end
return 2
"""
)

# KEYS: job, the active set. ARGV: job id. Drops an ended or vanished job.
_FORGET_ENDED = (
    _ACTIVE_LUA
    + """
if active[redis.call('HGET', KEYS[1], 'status')] then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""
)

# KEYS: lock. ARGV: owner, ttl ms. Renew only a lock we still own.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class DoneResult:
    """What :meth:`JobState.mark_done` decided."""

    known: bool  # False: no state for this job in Redis (wiped?)
    added: bool  # False: the chunk was counted before (a redelivery)
    done: int
    total: int
    last: bool  # True: this caller must enqueue finalize


@dataclass(frozen=True, slots=True)
class DoneEvent:
    """One chunk newly stored, as a follower of the job sees it."""

    chunk: str
    audio_seconds: float
    synthesized: bool

    @property
    def doc(self) -> str:
        """The chunk's document id."""
        return self.chunk.rsplit("/", 1)[0]

    @property
    def index(self) -> int:
        """The chunk's index in its document."""
        return int(self.chunk.rsplit("/", 1)[1])


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """A job's state at one moment."""

    job_id: str
    status: JobStatus
    total: int
    done: int
    chars_total: int = 0
    chars_done: int = 0
    audio_seconds: float = 0.0
    retries: int = 0
    keep_chunks: bool = False
    error: str | None = None
    failed: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    created_at: float | None = None
    started_at: float | None = None
    stitching_at: float | None = None
    finished_at: float | None = None

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until every chunk is stored, at the rate so far (None if unknown)."""
        if self.started_at is None or self.done == 0 or self.done >= self.total:
            return None
        elapsed = (self.finished_at or time.time()) - self.started_at
        return elapsed / self.done * (self.total - self.done)

    def reasons(self) -> str:
        """The job's error and the last error of each failed chunk, one per line."""
        lines = [self.error] if self.error else []
        lines += [f"{chunk}: {why}" for chunk, why in sorted(self.failed.items())]
        return "\n".join(dict.fromkeys(lines))


class Rescue(enum.Enum):
    """What a stalled job gets sent again."""

    CHUNKS = "chunks"
    FINALIZE = "finalize"


def _stamp(time_: tuple[int, int]) -> str:
    """Redis's ``TIME`` (seconds, microseconds) as the scripts write it."""
    return f"{time_[0]}.{time_[1]:06d}"


def _float(value: str | None) -> float | None:
    return float(value) if value else None


class JobState:
    """Job state of every job, in one Redis database.

    Args:
        client: a Redis client created with ``decode_responses=True``.
        namespace: key prefix; tests use a fresh one each.
    """

    def __init__(self, client: redis.Redis, *, namespace: str = "ttsbatch") -> None:
        self.client = client
        self.namespace = namespace
        self._done = client.register_script(_DONE)
        self._set_status = client.register_script(_SET_STATUS)
        self._fail_chunk = client.register_script(_FAIL_CHUNK)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._claim_rescue = client.register_script(_CLAIM_RESCUE)
        self._forget_ended = client.register_script(_FORGET_ENDED)

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "ttsbatch") -> JobState:
        """Return the state of the Redis server at ``url``."""
        return cls(redisclient.connect(url, decode_responses=True), namespace=namespace)

    def _key(self, job_id: str, part: str = "") -> str:
        return f"{self.namespace}:job:{job_id}{':' + part if part else ''}"

    @property
    def _active(self) -> str:
        return f"{self.namespace}:active"

    def _all_keys(self, job_id: str) -> list[str]:
        return [self._key(job_id, part) for part in ("", "done", "events", "errors", "failed")]

    # -- setting up --------------------------------------------------------

    def init(
        self,
        manifest: Manifest,
        done: Mapping[str, float] | None = None,
        *,
        status: JobStatus = JobStatus.RUNNING,
        keep_chunks: bool = False,
    ) -> JobSnapshot:
        """(Re)create a job's state: ``done`` maps stored chunk ids to their audio seconds.

        Earlier state of the job (counts, errors, the finalize claim) is dropped.
        """
        done = done or {}
        spans = {
            chunk_id(plan.doc, chunk.index): chunk.char_end - chunk.char_start
            for plan in manifest.documents
            for chunk in plan.chunks
        }
        now = time.time()
        fields: dict[FieldT, EncodableT] = {
            "status": status.value,
            "total": len(spans),
            "chars_total": sum(spans.values()),
            "chars_done": sum(spans.get(chunk, 0) for chunk in done),
            "audio_seconds": sum(done.values()),
            "retries": 0,
            "keep_chunks": int(keep_chunks),
            "created_at": now,
            "started_at": now,
            "progress_at": _stamp(self.client.time()),  # Redis's clock, as the scripts use
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(*self._all_keys(job_id := manifest.job_id), self._key(job_id, "lock"))
        pipe.hset(self._key(job_id), mapping=fields)
        if done:
            pipe.sadd(self._key(job_id, "done"), *done)
        pipe.sadd(self._active, job_id)
        pipe.execute()
        snapshot = self.snapshot(job_id)
        assert snapshot is not None  # noqa: S101 - written just above, in one transaction
        return snapshot

    def rebuild_from_store(
        self,
        store: Store,
        manifest: Manifest,
        *,
        status: JobStatus = JobStatus.RUNNING,
        keep_chunks: bool = False,
    ) -> JobSnapshot:
        """Recreate a job's state from what the store holds: its stored chunk records.

        A chunk counts as done when its JSON record exists (it is written after
        the PCM, so it marks a complete chunk).
        """
        done: dict[str, float] = {}
        planned = {(plan.doc, chunk.index) for plan in manifest.documents for chunk in plan.chunks}
        for plan in manifest.documents:
            prefix = keys.chunk_prefix(manifest.job_id, plan.doc)
            for key in store.list(prefix):
                name = key[len(prefix) :]
                if not name.endswith(".json") or not name[:-5].isdigit():
                    continue
                index = int(name[:-5])
                if (plan.doc, index) not in planned:
                    continue
                try:
                    record = ChunkRecord.model_validate_json(store.read(key))
                except (StorageError, ValueError):
                    continue  # unreadable: synthesise it again
                done[chunk_id(plan.doc, index)] = record.samples / record.sample_rate
        return self.init(manifest, done, status=status, keep_chunks=keep_chunks)

    # -- workers -----------------------------------------------------------

    def mark_done(
        self,
        job_id: str,
        chunk: str,
        *,
        chars: int,
        audio_seconds: float,
        synthesized: bool,
        claimant: str,
    ) -> DoneResult:
        """Count ``chunk`` as stored; decide atomically whether the caller is last.

        ``claimant`` identifies the caller's message (its task id): the one that
        completes the set claims finalize, and only it (or the same message
        redelivered) is told ``last``.
        """
        return self._decide(job_id, [chunk, chars, repr(audio_seconds), int(synthesized), claimant])

    def claim_finalize(self, job_id: str, claimant: str) -> DoneResult:
        """Decide, as :meth:`mark_done` does, whether ``claimant`` enqueues finalize now."""
        return self._decide(job_id, ["", 0, "0", 0, claimant])

    def _decide(self, job_id: str, args: list[str | int]) -> DoneResult:
        keys_ = [self._key(job_id, part) for part in ("", "done", "events", "errors")]
        answer = self._done(keys=keys_, args=[*args, time.time()])
        added, done, total, last = cast("list[int]", answer)
        return DoneResult(added >= 0, added == 1, done, total, last == 1)

    def record_error(self, job_id: str, chunk: str, reason: str) -> tuple[int, int]:
        """Remember ``chunk``'s last error; return the job's retries so far and its total."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self._key(job_id, "errors"), chunk, reason)
        pipe.hincrby(self._key(job_id), "retries", 1)
        pipe.hget(self._key(job_id), "total")
        _, retries, total = pipe.execute()
        return int(retries), int(total or 0)

    def fail_chunk(self, job_id: str, chunk: str, reason: str, *, budget: int = 0) -> bool:
        """Record that ``chunk`` failed for good; fail the job past ``budget`` such chunks.

        Returns:
            Whether this call failed the job.
        """
        keys_ = [self._key(job_id), self._key(job_id, "failed")]
        return bool(self._fail_chunk(keys=keys_, args=[chunk, reason, budget, time.time()]))

    def set_status(
        self, job_id: str, status: JobStatus, *, error: str = "", only_if_active: bool = True
    ) -> bool:
        """Move a job to ``status`` (by default only from queued/running/stitching)."""
        args = [status.value, time.time(), error, int(only_if_active)]
        return bool(self._set_status(keys=[self._key(job_id)], args=args))

    def fail(self, job_id: str, reason: str) -> bool:
        """Fail an active job at once (a fatal provider error); return whether it changed."""
        return self.set_status(job_id, JobStatus.FAILED, error=reason)

    def cancel(self, job_id: str) -> bool:
        """Cancel an active job, or mark an unknown one cancelled so workers drop it."""
        return self.set_status(job_id, JobStatus.CANCELLED, error="cancelled by the user")

    def status(self, job_id: str) -> JobStatus | None:
        """Return a job's status, or None if Redis holds no state for it."""
        value = cast("str | None", self.client.hget(self._key(job_id), "status"))
        return JobStatus(value) if value else None

    def finish(self, job_id: str, status: JobStatus, *, error: str = "") -> None:
        """Record a terminal status and let the job's state expire in a while."""
        self.set_status(job_id, status, error=error, only_if_active=False)
        pipe = self.client.pipeline(transaction=False)
        for key in self._all_keys(job_id):
            pipe.expire(key, FINISHED_TTL_SECONDS)
        pipe.execute()

    # -- followers ---------------------------------------------------------

    def snapshot(self, job_id: str) -> JobSnapshot | None:
        """Return the job's state, or None if Redis holds none."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(self._key(job_id))
        pipe.scard(self._key(job_id, "done"))
        pipe.hgetall(self._key(job_id, "failed"))
        pipe.hgetall(self._key(job_id, "errors"))
        raw, done, failed, errors = pipe.execute()
        fields = cast("dict[str, str]", raw)
        if "total" not in fields:
            return None
        return JobSnapshot(
            job_id=job_id,
            status=JobStatus(fields["status"]),
            total=int(fields["total"]),
            done=int(done),
            chars_total=int(fields.get("chars_total", 0)),
            chars_done=int(fields.get("chars_done", 0)),
            audio_seconds=float(fields.get("audio_seconds", 0)),
            retries=int(fields.get("retries", 0)),
            keep_chunks=fields.get("keep_chunks") == "1",
            error=fields.get("error") or None,
            failed=dict(failed),
            errors=dict(errors),
            created_at=_float(fields.get("created_at")),
            started_at=_float(fields.get("started_at")),
            stitching_at=_float(fields.get("stitching_at")),
            finished_at=_float(fields.get("finished_at")),
        )

    def events(self, job_id: str, start: int) -> list[DoneEvent]:
        """Return the chunks stored since event number ``start`` (0 for all)."""
        raw = cast("list[str]", self.client.lrange(self._key(job_id, "events"), start, -1))
        events = []
        for line in raw:
            chunk, seconds, synthesized = line.split(" ")
            events.append(DoneEvent(chunk, float(seconds), synthesized == "1"))
        return events

    def done_chunks(self, job_id: str) -> set[str]:
        """Return the ids of the chunks counted as stored."""
        return set(cast("Iterable[str]", self.client.smembers(self._key(job_id, "done"))))

    # -- stalled jobs --------------------------------------------------------

    def active_jobs(self) -> list[str]:
        """Return the ids of jobs set up and not yet seen ended by :meth:`forget_active`."""
        return sorted(cast("Iterable[str]", self.client.smembers(self._active)))

    def forget_if_ended(self, job_id: str) -> bool:
        """Drop a job from :meth:`active_jobs` if it ended or vanished; return whether it did."""
        return bool(self._forget_ended(keys=[self._key(job_id), self._active], args=[job_id]))

    def claim_rescue(self, job_id: str, stall_after: float) -> Rescue | None:
        """Claim re-sending what a stalled job waits for; None if it is not stalled.

        A running job that stored no chunk for ``stall_after`` seconds waits for
        chunk messages; a stitching job whose finalize never started, for its
        finalize message. The wait doubles after each rescue. Of several
        followers (CLI, API replicas) asking at once, one wins.
        """
        answer = self._claim_rescue(
            keys=[self._key(job_id), self._key(job_id, "lock")], args=[stall_after]
        )
        return {1: Rescue.CHUNKS, 2: Rescue.FINALIZE}.get(int(cast("int", answer)))

    # -- the finalize lock -------------------------------------------------

    def lock(self, job_id: str, owner: str, ttl: float) -> bool:
        """Take the job's finalize lock for ``ttl`` seconds; False if another holds it."""
        key = self._key(job_id, "lock")
        return bool(self.client.set(key, owner, nx=True, px=max(1, int(ttl * 1000))))

    def renew_lock(self, job_id: str, owner: str, ttl: float) -> bool:
        """Extend a lock ``owner`` still holds; False if it was lost."""
        key = self._key(job_id, "lock")
        return bool(self._renew(keys=[key], args=[owner, max(1, int(ttl * 1000))]))

    def unlock(self, job_id: str, owner: str) -> None:
        """Release the lock if ``owner`` still holds it."""
        self._release(keys=[self._key(job_id, "lock")], args=[owner])


def mark_manifest(store: Store, job_id: str, status: JobStatus, error: str | None = None) -> None:
    """Record a failed or cancelled job in its stored manifest (the authoritative record).

    A manifest that already says ``succeeded`` is left alone.
    """
    key = keys.manifest_key(job_id)
    manifest = Manifest.model_validate_json(store.read(key))
    if manifest.status is JobStatus.SUCCEEDED or (manifest.status, manifest.error) == (
        status,
        error,
    ):
        return
    changed = manifest.model_copy(update={"status": status, "error": error})
    store.write(key, changed.model_dump_json(by_alias=True, indent=1).encode())
