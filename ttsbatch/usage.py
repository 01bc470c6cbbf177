"""What a job's chunks cost, counted from their records: sent to the engine, retried, cached.

Both executors count the same way, from the chunk records they stitch (a
record says whether its chunk came from the cache and how many retries it
took), so a resumed job counts the chunks of its earlier runs too.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from typing import Protocol

from ttsbatch.errors import BudgetError
from ttsbatch.models import ChunkRecord, EngineSpec, Usage


@dataclass(slots=True)
class UsageCounter:
    """Characters and chunks of a job, added chunk by chunk."""

    chunks_sent: int = 0
    chunks_cached: int = 0
    chars_sent: int = 0
    chars_retried: int = 0
    chars_cached: int = 0

    def add(self, chars: int, record: ChunkRecord) -> None:
        """Count a chunk of ``chars`` characters, as its record says it was made."""
        if record.cached:
            self.chunks_cached += 1
            self.chars_cached += chars
        else:
            self.chunks_sent += 1
            self.chars_sent += chars
            self.chars_retried += chars * record.retries

    def merge(self, other: UsageCounter) -> None:
        """Add another document's counts to these."""
        self.chunks_sent += other.chunks_sent
        self.chunks_cached += other.chunks_cached
        self.chars_sent += other.chars_sent
        self.chars_retried += other.chars_retried
        self.chars_cached += other.chars_cached

    def usage(self, engine: EngineSpec, price_per_million: float | None) -> Usage:
        """Return the counts as a job's :class:`Usage`."""
        return Usage(
            engine=engine.engine.value,
            model=engine.model,
            chunks_sent=self.chunks_sent,
            chunks_cached=self.chunks_cached,
            chars_sent=self.chars_sent,
            chars_retried=self.chars_retried,
            chars_cached=self.chars_cached,
            price_per_million=price_per_million,
            cost=None
            if price_per_million is None
            else round((self.chars_sent + self.chars_retried) * price_per_million / 1e6, 6),
        )


class Spend(Protocol):
    """A job's allowance: a request's characters are taken before it is sent."""

    def take(self, chars: int) -> None:
        """Take ``chars``, or raise :class:`~ttsbatch.errors.BudgetError` past the cap."""
        ...

    def give_back(self, chars: int) -> None:
        """Return ``chars`` taken for a request that was never sent."""
        ...


def stopped_at_cap(chars: int, spent: int, limit: int) -> BudgetError:
    """The error of a job stopped at its cap, before a request of ``chars`` characters."""
    return BudgetError(
        f"stopped at its cap: {spent:,} of its {limit:,} characters are spent and the next"
        f" chunk has {chars:,}; nothing was half paid and what it made is kept: raise the"
        " cap (--max-cost / --max-billed-chars, or the job's max_cost) and run it again"
    )


class Allowance:
    """A local job's characters to send, shared by the threads or processes that send them.

    The count is a ``multiprocessing`` value, so espeak's pool processes (spawned,
    given it at start) and a provider's threads take from the same allowance.
    """

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._spent = multiprocessing.get_context("spawn").Value("q", 0)

    @property
    def spent(self) -> int:
        """Characters taken so far."""
        return int(self._spent.value)

    def take(self, chars: int) -> None:
        """Take ``chars``, or raise :class:`BudgetError` if they would pass the cap."""
        with self._spent.get_lock():
            spent = int(self._spent.value)
            if spent + chars > self.max_chars:
                raise stopped_at_cap(chars, spent, self.max_chars)
            self._spent.value = spent + chars

    def give_back(self, chars: int) -> None:
        """Return ``chars`` taken for a request that was never sent."""
        with self._spent.get_lock():
            self._spent.value = int(self._spent.value) - chars
