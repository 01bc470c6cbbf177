"""Which workers are alive, and which queues they consume: heartbeats in Redis.

Every worker writes its heartbeat every :data:`HEARTBEAT_INTERVAL` seconds
while its consumer runs (:mod:`worker.presence`); the API reads them before it
accepts a job, so that a job no running worker can serve is refused at once
instead of waiting in a queue nobody reads (``ttsbatch dev --engine together``
has no espeak worker).

Keys, under a namespace (``ttsbatch`` unless told), one sorted set per queue::

    <ns>:queue-workers:<queue>   member: worker name, score: when its heartbeat expires

Expiry times are on Redis's clock (``TIME``), never a worker's, so skewed
clocks cannot make a dead worker look alive; a worker that dies without a word
drops out :data:`HEARTBEAT_TTL` seconds after its last beat. A worker that
stops cleanly withdraws at once. Reading costs one ``ZCOUNT`` per queue: no
``celery inspect`` round trip through the broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import redis

from ttsbatch import redisclient
from ttsbatch.keys import NAMESPACE, RedisKeys
from ttsbatch.messages import FINALIZE_QUEUE, queue_for

#: Seconds between two heartbeats of a worker.
HEARTBEAT_INTERVAL: Final = 10.0
#: Seconds a heartbeat counts: three missed beats and a little slack.
HEARTBEAT_TTL: Final = 3 * HEARTBEAT_INTERVAL + 5.0


class Roster:
    """Worker heartbeats per queue in Redis.

    Args:
        client: a Redis client (``decode_responses`` either way).
        namespace: key prefix, as :class:`ttsbatch.state.JobState`'s.
    """

    def __init__(self, client: redis.Redis, *, namespace: str = NAMESPACE) -> None:
        self.client = client
        self.namespace = namespace

    @classmethod
    def from_url(cls, url: str, *, namespace: str = NAMESPACE) -> Roster:
        """Return a roster on the Redis at ``url`` (connects on first use)."""
        return cls(redisclient.connect(url, decode_responses=True), namespace=namespace)

    def key(self, queue: str) -> str:
        """Return the key of ``queue``'s sorted set of workers."""
        return RedisKeys(self.namespace).queue_workers(queue)

    def _now(self) -> float:
        seconds, micros = self.client.time()
        return float(seconds) + float(micros) / 1e6

    def announce(self, worker: str, queues: Iterable[str], ttl: float = HEARTBEAT_TTL) -> None:
        """Record that ``worker`` consumes ``queues`` for the next ``ttl`` seconds."""
        now = self._now()
        with self.client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zadd(self.key(queue), {worker: now + ttl})
                # Drop the long dead, and the set itself once nobody beats for a while.
                pipe.zremrangebyscore(self.key(queue), "-inf", now)
                pipe.expire(self.key(queue), int(ttl * 10) + 1)
            pipe.execute()

    def withdraw(self, worker: str, queues: Iterable[str]) -> None:
        """Forget ``worker`` at once (it is stopping)."""
        with self.client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zrem(self.key(queue), worker)
            pipe.execute()

    def workers(self, queue: str) -> list[str]:
        """Return the names of the workers whose heartbeat on ``queue`` has not expired."""
        found = self.client.zrangebyscore(self.key(queue), self._now(), "+inf")
        return sorted(w.decode() if isinstance(w, bytes) else str(w) for w in found)

    def live_queues(self, queues: Iterable[str]) -> set[str]:
        """Return which of ``queues`` at least one live worker consumes."""
        queues = list(queues)
        now = self._now()
        with self.client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zcount(self.key(queue), now, "+inf")
            counts = pipe.execute()
        return {queue for queue, count in zip(queues, counts, strict=True) if int(count) > 0}

    def waiting_reason(self, engine: str) -> str | None:
        """Say why a job of ``engine`` would wait now (nobody consumes its queues); else None."""
        needed = [queue_for(engine), FINALIZE_QUEUE]
        live = self.live_queues(needed)
        missing = [queue for queue in needed if queue not in live]
        if not missing:
            return None
        return (
            f"no running worker serves engine {engine} now (nobody consumes queue"
            f" {' or '.join(missing)}): the job waits until one starts"
        )
