"""Job state in Redis, shared by the scheduler side and the workers.

Redis is a progress index, never the truth: the store is (architecture.md).
:meth:`JobState.rebuild_from_store` recreates a job's state from the stored
manifest and chunk records alone, e.g. after ``FLUSHALL``. The keys are listed
in :mod:`ttsbatch.state.names`.

Every decision that two workers could race on runs as one Lua script
(:mod:`ttsbatch.state.scripts`): adding a chunk to the done set and deciding who
is last (so ``finalize`` is enqueued exactly once), failing a job, cancelling
it, claiming a stalled job's rescue. Chunk leases live in
:mod:`ttsbatch.state.leases` (``JobState.leases``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, cast

import redis
from redis.typing import EncodableT, FieldT

from ttsbatch import keys, redisclient
from ttsbatch.errors import StorageError
from ttsbatch.keys import NAMESPACE
from ttsbatch.messages import chunk_id
from ttsbatch.models import ChunkRecord, JobStatus, Manifest
from ttsbatch.state.leases import ChunkLeases
from ttsbatch.state.names import JobKeys
from ttsbatch.state.scripts import Clock, now_arg, register
from ttsbatch.state.snapshots import DoneEvent, DoneResult, JobSnapshot, Rescue
from ttsbatch.storage import Store

#: How long a finished job's state stays in Redis (the store keeps it forever).
FINISHED_TTL_SECONDS: Final = 7 * 24 * 3600
#: The parts of a job the leases scripts keep consistent with the done set.
_LEASE_PARTS = ("leases", "owners", "queued", "senders")

#: Why a job the user cancelled ended (its status error, in Redis and in the manifest).
CANCELLED_BY_USER = "cancelled by the user"


def _float(value: str | None) -> float | None:
    return float(value) if value else None


class JobState:
    """Job state of every job, in one Redis database.

    Args:
        client: a Redis client created with ``decode_responses=True``.
        namespace: key prefix; tests use a fresh one each.
        clock: the time instead of Redis's (tests move it forward instead of
            sleeping); None in production.
    """

    def __init__(
        self, client: redis.Redis, *, namespace: str = NAMESPACE, clock: Clock | None = None
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.clock = clock
        self.names = JobKeys(namespace)
        self.leases = ChunkLeases(client, self.names, clock=clock)
        self._done = register(client, "done", "clock", "statuses")
        self._set_status = register(client, "set_status", "clock", "statuses")
        self._fail_chunk = register(client, "fail_chunk", "clock", "statuses")
        self._claim_rescue = register(client, "claim_rescue", "clock")
        self._forget_ended = register(client, "forget_ended", "statuses")
        self._renew = register(client, "renew_lock")
        self._release = register(client, "release_lock")

    @classmethod
    def from_url(
        cls, url: str, *, namespace: str = NAMESPACE, clock: Clock | None = None
    ) -> JobState:
        """Return the state of the Redis server at ``url``."""
        client = redisclient.connect(url, decode_responses=True)
        return cls(client, namespace=namespace, clock=clock)

    def _key(self, job_id: str, part: str = "") -> str:
        return self.names.job(job_id, part)

    def _now(self) -> str:
        return now_arg(self.clock)

    def now(self) -> float:
        """The scripts' time: the clock's if given, else Redis's."""
        if self.clock is not None:
            return self.clock()
        seconds, micros = self.client.time()
        return int(seconds) + int(micros) / 1e6

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

        Earlier state of the job (counts, errors, leases, the finalize claim) is
        dropped. The chunks not done take the job's queue order in plan order,
        the order the dispatcher sends them in (:mod:`ttsbatch.state.leases`).
        """
        done = done or {}
        spans = {
            chunk_id(plan.doc, chunk.index): chunk.char_end - chunk.char_start
            for plan in manifest.documents
            for chunk in plan.chunks
        }
        now = self.now()
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
            "progress_at": f"{now:.6f}",  # the scripts' clock
            "seq": len(spans),
        }
        order = {chunk: seq for seq, chunk in enumerate(spans) if chunk not in done}
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(*self.names.all(job_id := manifest.job_id), self._key(job_id, "lock"))
        pipe.hset(self._key(job_id), mapping=fields)
        if done:
            pipe.sadd(self._key(job_id, "done"), *done)
        if order:
            pipe.zadd(self._key(job_id, "queued"), cast("Mapping[str, EncodableT]", order))
        pipe.sadd(self.names.active, job_id)
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
        """Count ``chunk`` as stored (its lease ends); decide atomically whether the caller is last.

        ``claimant`` identifies the caller's message (its task id): the one that
        completes the set claims finalize, and only it (or the same message
        redelivered) is told ``last``.
        """
        return self._decide(job_id, [chunk, chars, repr(audio_seconds), int(synthesized), claimant])

    def claim_finalize(self, job_id: str, claimant: str) -> DoneResult:
        """Decide, as :meth:`mark_done` does, whether ``claimant`` enqueues finalize now."""
        return self._decide(job_id, ["", 0, "0", 0, claimant])

    def _decide(self, job_id: str, args: list[str | int]) -> DoneResult:
        keys_ = self.names.parts(job_id, "", "done", "events", "errors", *_LEASE_PARTS)
        answer = self._done(keys=keys_, args=[self._now(), *args])
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

        The chunk loses its lease and place in the queue: nobody sends it again.

        Returns:
            Whether this call failed the job.
        """
        keys_ = self.names.parts(job_id, "", "failed", *_LEASE_PARTS)
        return bool(self._fail_chunk(keys=keys_, args=[self._now(), chunk, reason, budget]))

    def set_status(
        self, job_id: str, status: JobStatus, *, error: str = "", only_if_active: bool = True
    ) -> bool:
        """Move a job to ``status`` (by default only from queued/running/stitching)."""
        args = [self._now(), status.value, error, int(only_if_active)]
        return bool(self._set_status(keys=[self._key(job_id)], args=args))

    def fail(self, job_id: str, reason: str) -> bool:
        """Fail an active job at once (a fatal provider error); return whether it changed."""
        return self.set_status(job_id, JobStatus.FAILED, error=reason)

    def cancel(self, job_id: str) -> bool:
        """Cancel an active job, or mark an unknown one cancelled so workers drop it."""
        return self.set_status(job_id, JobStatus.CANCELLED, error=CANCELLED_BY_USER)

    def status(self, job_id: str) -> JobStatus | None:
        """Return a job's status, or None if Redis holds no state for it."""
        value = cast("str | None", self.client.hget(self._key(job_id), "status"))
        return JobStatus(value) if value else None

    def finish(self, job_id: str, status: JobStatus, *, error: str = "") -> None:
        """Record a terminal status and let the job's state expire in a while."""
        self.set_status(job_id, status, error=error, only_if_active=False)
        pipe = self.client.pipeline(transaction=False)
        for key in self.names.all(job_id):
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
            resent=int(fields.get("resent", 0)),
            stalls=int(fields.get("stalls", 0)),
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

    def stored(self, job_id: str, chunks: Sequence[str]) -> list[bool]:
        """Return whether each of ``chunks`` is counted as stored (one ``SMISMEMBER``)."""
        if not chunks:
            return []
        found = self.client.smismember(self._key(job_id, "done"), list(chunks))
        return [bool(flag) for flag in cast("list[int]", found)]

    # -- stalled jobs --------------------------------------------------------

    def active_jobs(self) -> list[str]:
        """Return the ids of jobs set up and not yet seen ended by :meth:`forget_if_ended`."""
        return sorted(cast("Iterable[str]", self.client.smembers(self.names.active)))

    def forget_if_ended(self, job_id: str) -> bool:
        """Drop a job from :meth:`active_jobs` if it ended or vanished; return whether it did."""
        keys_ = [self._key(job_id), self.names.active]
        return bool(self._forget_ended(keys=keys_, args=[job_id]))

    def claim_rescue(self, job_id: str, stall_after: float) -> Rescue | None:
        """Claim re-sending what a stalled job waits for; None if it is not stalled.

        The fallback for what chunk leases do not cover (:mod:`ttsbatch.state.leases`):
        a running job that stored no chunk and held no live lease for
        ``stall_after`` seconds waits for chunk messages; a stitching job whose
        finalize never started, for its finalize message. The wait doubles
        after each rescue. Of several followers (CLI, API replicas) asking at
        once, one wins.
        """
        keys_ = [self._key(job_id), self._key(job_id, "lock"), self._key(job_id, "leases")]
        answer = self._claim_rescue(keys=keys_, args=[self._now(), stall_after])
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
