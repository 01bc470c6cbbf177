"""What a job's chunks cost, counted from their records: sent to the engine, retried, cached.

Both executors count the same way, from the chunk records they stitch (a
record says whether its chunk came from the cache and how many retries it
took), so a resumed job counts the chunks of its earlier runs too.
"""

from __future__ import annotations

from dataclasses import dataclass

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
