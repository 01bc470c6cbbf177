"""Chunk leases: which chunks of a running job are being worked on, and which to send again.

A worker killed mid-chunk used to cost the job two minutes (the job-wide stall
wait) or a broker visibility timeout (six minutes by default). Now every chunk
a worker works on holds a *lease* in Redis that the worker renews while it is
alive (:class:`worker.tasks.leases.LeaseKeeper`, a thread in each worker
process, every third of the lease's lifetime); a rescuer
(:func:`ttsbatch.executors.distributed.rescue_stalled`, a follower's poll) claims every
chunk whose lease ran out without the chunk being stored and sends it again.
So a dead worker's chunks return about one lease lifetime
(``TTSBATCH_WORKER_LEASE_TTL``, 15 s) after it died.

The states of a chunk of a running job (each move is one Lua script)::

    queued ──take──▶ leased (renewed by its worker) ──stored──▶ done
      ▲  │             │  retry: a lease of countdown + ttl, not renewed
      │  │ passed      │  requeue (SIGTERM): queued, at the back
      │  ▼             ▼
      └── expired lease: claimed by one rescuer, sent again, queued at the back

*Queued* chunks hold no timed lease: a chunk waiting behind a long backlog,
this job's or others', may wait for hours, and re-sending it would only lengthen
the queue. But a message can be lost without any worker holding it: kombu's
Redis transport pops a message before it records it as unacknowledged
(celery/kombu#305, #1836), so a worker killed in between loses it. The broker's
queues are FIFO, so such a loss shows: each queued chunk has its place in the
job's *queue order* (the plan order at dispatch, the back of the order when a
chunk is sent again or requeued), and when a chunk's message starts, every
message of the job sent before it has been popped. The chunks still queued
ahead of it are *passed*: they get a lease of one lifetime that nobody renews;
the ones merely a moment late start and take it over, a lost one's runs out
and the chunk is sent again, like a dead worker's. Only a message that holds
its chunk's place may pass others: the first dispatch's (any message of the
chunk) or the one recorded as its sender, never a redelivered one (a broker
restore puts a message at the *front* of the queue).

A retried chunk's message is published with a countdown and held, unacknowledged,
by whichever worker takes it until its time comes; the chunk keeps a lease of
the countdown plus one lifetime, renewed by nobody. If the worker holding the
retry dies, the chunk returns when that lease runs out. Behind a backlog longer
than that, the chunk is sent once more (then queued): one spare message, which
finds the chunk stored, or being synthesised (a live lease of another owner),
and is dropped.

What no lease covers — a lost message with no message of its job sent after it
(the job's last chunks), a re-send lost before it was sent — the job-wide stall
wait still catches (:meth:`~ttsbatch.state.JobState.claim_rescue`): a running job
that stored nothing and held no live lease for two minutes gets every missing
chunk without a live lease sent again, the wait doubling after each time.

A re-sent chunk may meet its first message (a broker redelivery after the
visibility timeout, a retry behind a backlog): a message that finds a live
lease held by another worker is dropped, and a worker whose lease was claimed
by a rescuer learns it at its next renewal and stops, so one chunk is
synthesised once; both write the same keys, and the record decides (a stored
record is never synthesised again).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection, Mapping
from typing import Final, cast

import redis

from ttsbatch.state.names import JobKeys
from ttsbatch.state.scripts import Clock, now_arg, register

#: Chunks one rescue claims at most per job (the rest at the next look).
CLAIM_LIMIT: Final = 1000
_SCRIPT_PARTS = ("", "leases", "owners", "queued", "senders")


class Take(enum.Enum):
    """What :meth:`ChunkLeases.take` decided."""

    TAKEN = 1  # the caller holds the lease: synthesise, renew, give it back
    BUSY = 0  # another live worker holds it: leave the chunk to that one
    UNTRACKED = -1  # Redis holds no state for the job (wiped): work without a lease


class ChunkLeases:
    """The chunk leases of every job, in one Redis database.

    Args:
        client: a Redis client created with ``decode_responses=True``.
        names: the key names (namespace) of the job state.
        clock: the time instead of Redis's (tests); None in production.
    """

    def __init__(self, client: redis.Redis, names: JobKeys, *, clock: Clock | None = None) -> None:
        self.client = client
        self.names = names
        self.clock = clock
        self._take = register(client, "lease_take", "clock")
        self._renew = register(client, "lease_renew", "clock")
        self._give_back = register(client, "lease_give_back", "clock")
        self._claim = register(client, "lease_claim", "clock")

    def _now(self) -> str:
        return now_arg(self.clock)

    # -- workers -----------------------------------------------------------

    def take(
        self,
        job_id: str,
        chunk: str,
        *,
        owner: str,
        task_id: str,
        ttl: float,
        redelivered: bool = False,
    ) -> Take:
        """Take ``chunk``'s lease for ``ttl`` seconds as ``owner`` (one per attempt).

        Chunks waiting ahead of it in the job's queue order are passed: each
        gets a lease of ``ttl`` seconds that nobody renews (see the module doc).

        Args:
            task_id: the message's task id; it passes others only if it holds
                the chunk's place in the queue order.
            redelivered: the broker restored the message (then it passes none).
        """
        keys_ = self.names.parts(job_id, *_SCRIPT_PARTS)
        args: list[str | float] = [self._now(), chunk, owner, task_id, ttl, ttl, int(redelivered)]
        return Take(int(cast("int", self._take(keys=keys_, args=args))))

    def renew(self, job_id: str, held: Mapping[str, str], ttl: float) -> set[str]:
        """Renew the leases ``held`` (chunk id -> owner) for ``ttl`` seconds.

        A chunk the job's state was set up again with meanwhile (a resume)
        stays with its worker.

        Returns:
            The chunks whose lease is no longer the owner's (sent again to
            another worker, stored, or failed): their worker should stop.
        """
        if not held:
            return set()
        keys_ = self.names.parts(job_id, *_SCRIPT_PARTS, "done")
        pairs = [item for chunk, owner in held.items() for item in (chunk, owner)]
        lost = self._renew(keys=keys_, args=[self._now(), ttl, *pairs])
        return set(cast("list[str]", lost))

    def hold_for_retry(self, job_id: str, chunk: str, *, owner: str, seconds: float) -> bool:
        """Let go of a chunk whose retry is sent with a countdown: it stays leased ``seconds``.

        Returns:
            False if the lease was no longer the owner's (the chunk was sent
            again or stored meanwhile): no retry is needed.
        """
        return self._give(job_id, chunk, owner, "", f"{seconds:.6f}")

    def requeue(self, job_id: str, chunk: str, *, owner: str, task_id: str) -> bool:
        """Let go of a chunk whose message goes back to the end of the queue.

        Returns:
            False if the lease was no longer the owner's.
        """
        return self._give(job_id, chunk, owner, task_id, "")

    def _give(self, job_id: str, chunk: str, owner: str, task_id: str, seconds: str) -> bool:
        keys_ = self.names.parts(job_id, *_SCRIPT_PARTS)
        answer = self._give_back(keys=keys_, args=[self._now(), chunk, owner, task_id, seconds])
        return int(cast("int", answer)) != 0  # -1: the job's state is gone; nothing to keep

    # -- rescuers ----------------------------------------------------------

    def claim_expired(self, job_id: str, *, limit: int = CLAIM_LIMIT) -> dict[str, str]:
        """Claim the chunks of a running job whose lease ran out, to send them again.

        Returns:
            The claimed chunks, each with the task id its new message must carry.
        """
        return self._claim_chunks(job_id, "expired", [limit])

    def claim_missing(self, job_id: str, chunks: Collection[str]) -> dict[str, str]:
        """Claim those of ``chunks`` (of a running job) with no live lease (a stalled job).

        Returns:
            The claimed chunks, each with the task id its new message must carry.
        """
        if not chunks:
            return {}
        return self._claim_chunks(job_id, "missing", sorted(chunks))

    def _claim_chunks(self, job_id: str, mode: str, rest: list[str] | list[int]) -> dict[str, str]:
        prefix = f"rescue-{uuid.uuid4().hex}:"
        keys_ = self.names.parts(job_id, *_SCRIPT_PARTS, "done", "failed")
        claimed = self._claim(keys=keys_, args=[self._now(), mode, prefix, *rest])
        return {chunk: prefix + chunk for chunk in cast("list[str]", claimed)}

    # -- inspection ----------------------------------------------------------

    def expiries(self, job_id: str) -> dict[str, float]:
        """Return when each leased chunk's lease runs out (s, the scripts' clock)."""
        pairs = self.client.zrange(self.names.job(job_id, "leases"), 0, -1, withscores=True)
        return {str(chunk): float(score) for chunk, score in cast("list[tuple[str, float]]", pairs)}

    def queued(self, job_id: str) -> list[str]:
        """Return the queued chunks in the job's queue order."""
        return cast("list[str]", self.client.zrange(self.names.job(job_id, "queued"), 0, -1))
