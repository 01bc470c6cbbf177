"""What each API tenant spent this month, and what each job sent: the caps' tallies.

A tenant is an account (a hash of its key: no key is written anywhere). Each
request a worker sends to a priced provider is added to its account's month
before it is sent (:meth:`Billing.take`: retries count, cached chunks cost
nothing), together with the job's own tally of characters; the request is not
sent if either would pass its cap (the job's ``max_cost``/``max_billed_chars``,
``TTSBATCH_API_MONTHLY_COST_CAP``), and the job stops there. The beat reads the
month when it plans a job and refuses one that would take it past the cap.
The tallies are in Redis (``<ns>:billing:<account>:<YYYY-MM>``, a hash, and
``<ns>:spend:<job id>``, kept 40 days); a Redis that lost its data starts them
again.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Final

import redis
from redis.commands.core import Script

from ttsbatch.errors import BudgetError
from ttsbatch.keys import RedisKeys
from ttsbatch.models import SpendLimit
from ttsbatch.usage import stopped_at_cap

if TYPE_CHECKING:
    from ttsbatch.state import JobState

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

    @classmethod
    def of(cls, state: JobState) -> Billing:
        """The tallies beside ``state``'s jobs (its Redis, its namespace)."""
        return cls(state.client, RedisKeys(state.namespace))

    def spent(self, account: str, *, now: float | None = None) -> float:
        """What ``account`` spent this month (USD)."""
        value = self.client.hget(self.names.billing(account, month_of(now)), "cost")
        return float(value) if value else 0.0

    def take(self, job_id: str, limit: SpendLimit, chars: int, *, now: float | None = None) -> None:
        """Take a request of ``chars`` characters from job ``job_id``'s caps, or refuse it.

        Raises:
            BudgetError: it would pass the job's cap or its account's month;
                nothing was taken (the request must not be sent).
        """
        price = limit.price_per_million or 0.0
        cost = chars * price / 1e6 if limit.account else 0.0
        month = self.names.billing(limit.account or "-", month_of(now))
        code, value = self._take(
            keys=[self.names.spend(job_id), month],
            args=[
                chars,
                -1 if limit.max_chars is None else limit.max_chars,
                cost,
                -1 if limit.monthly_cost_cap is None or not cost else limit.monthly_cost_cap,
                KEEP_SECONDS,
            ],
        )
        if code == 0:
            raise stopped_at_cap(chars, int(value), limit.max_chars or 0)
        if code == -1:
            raise BudgetError(
                f"stopped at its tenant's monthly cap: ${float(value):.4f} of"
                f" ${limit.monthly_cost_cap:.4f} is spent this month and the next chunk costs"
                f" ${cost:.4f}; nothing was half paid and what it made is kept: retry it once"
                " the cap is raised or next month"
            )

    def give_back(
        self, job_id: str, limit: SpendLimit, chars: int, *, now: float | None = None
    ) -> None:
        """Return what :meth:`take` took for a request that was never sent."""
        cost = chars * (limit.price_per_million or 0.0) / 1e6 if limit.account else 0.0
        with self.client.pipeline() as pipe:
            pipe.decrby(self.names.spend(job_id), chars)
            if cost:
                pipe.hincrbyfloat(
                    self.names.billing(limit.account or "-", month_of(now)), "cost", -cost
                )
            pipe.execute()

    def sent(self, job_id: str) -> int:
        """Characters job ``job_id`` sent so far, retries counted (its caps' tally)."""
        return int(self.client.get(self.names.spend(job_id)) or 0)

    def forget(self, job_id: str) -> None:
        """Drop a job's tally (a job planned afresh, or purged, starts from nothing)."""
        self.client.delete(self.names.spend(job_id))

    @property
    def _take(self) -> Script:
        """The script that takes a request from both tallies at once (``billing_take.lua``)."""
        return _script(self.client)


@functools.lru_cache(maxsize=16)
def _script(client: redis.Redis) -> Script:
    """``billing_take.lua`` registered on ``client`` (once per client)."""
    return client.register_script(
        resources.files(__package__).joinpath("billing_take.lua").read_text()
    )


@dataclass(frozen=True)
class JobSpend:
    """A worker's allowance for one job (:class:`~ttsbatch.usage.Spend`): its caps in Redis."""

    billing: Billing
    job_id: str
    limit: SpendLimit

    def take(self, chars: int) -> None:
        """Take a request's characters, or raise :class:`BudgetError` past a cap."""
        self.billing.take(self.job_id, self.limit, chars)

    def give_back(self, chars: int) -> None:
        """Return the characters of a request that was never sent."""
        self.billing.give_back(self.job_id, self.limit, chars)
