"""What each API tenant spent this month, for the deployment's monthly cap.

A tenant is an account (a hash of its key: no key is written anywhere). A
job's cost is added to its account's month when the job is stitched
(``worker.finalize``); the beat reads it when it plans a job and refuses one
that would take the month past ``TTSBATCH_API_MONTHLY_COST_CAP``. The tally is
in Redis, one hash per account and month (``<ns>:billing:<account>:<YYYY-MM>``,
kept 40 days); a Redis that lost its data starts the month's tally again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Final

import redis

from ttsbatch.keys import RedisKeys

#: Seconds a month's tally is kept after its last change.
KEEP_SECONDS: Final = 40 * 86400


def account_of(tenant: str) -> str:
    """The account of an API tenant (a hash: keys never hold a tenant's key)."""
    return "a-" + hashlib.sha256(f"ttsbatch-account\0{tenant}".encode()).hexdigest()[:24]


def month_of(now: float | None = None) -> str:
    """The month (UTC) ``now`` falls in, ``YYYY-MM``."""
    return time.strftime("%Y-%m", time.gmtime(now))


@dataclass(frozen=True, slots=True)
class Billing:
    """The monthly tallies in Redis."""

    client: redis.Redis
    names: RedisKeys = field(default_factory=RedisKeys)

    def add(self, account: str, cost: float, *, now: float | None = None) -> None:
        """Add ``cost`` (USD) to ``account``'s month."""
        key = self.names.billing(account, month_of(now))
        with self.client.pipeline() as pipe:
            pipe.hincrbyfloat(key, "cost", cost)
            pipe.expire(key, KEEP_SECONDS)
            pipe.execute()

    def spent(self, account: str, *, now: float | None = None) -> float:
        """What ``account`` spent this month (USD)."""
        value = self.client.hget(self.names.billing(account, month_of(now)), "cost")
        return float(value) if value else 0.0
