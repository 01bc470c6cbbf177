"""Stitching: where each chunk's audio lands on a document's timeline.

Pure functions over sample counts. A document's audio is each chunk's PCM in
order, each followed by a pause chosen by what follows the chunk (sentence,
paragraph, chapter). Every offset is an integer number of samples, so a
20-hour book does not drift.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ttsbatch.errors import JobError
from ttsbatch.models import ChunkSpan, Pauses

SAMPLE_WIDTH = 2  # bytes per s16le sample


@dataclass(frozen=True, slots=True)
class Placement:
    """One chunk on the document's timeline, in samples."""

    index: int
    start: int
    samples: int
    gap: int

    @property
    def end(self) -> int:
        """First sample after the chunk's own audio (before its pause)."""
        return self.start + self.samples


def pause_samples(ms: int, sample_rate: int) -> int:
    """Return the number of samples in ``ms`` milliseconds, rounded to the nearest."""
    return (ms * sample_rate + 500) // 1000


def layout(
    chunks: Sequence[ChunkSpan],
    samples: Sequence[int],
    *,
    sample_rate: int,
    pauses: Pauses,
) -> tuple[Placement, ...]:
    """Place every chunk on the timeline.

    Args:
        chunks: The document's chunk plan, in order.
        samples: The number of samples of each chunk's audio, same order.
        sample_rate: The common sample rate of every chunk.
        pauses: Silence after a chunk, by its ``break_after``.

    Returns:
        One placement per chunk; the stitched length is ``total_samples(...)``.
    """
    if len(chunks) != len(samples):
        raise ValueError(f"{len(chunks)} chunks but {len(samples)} sample counts")
    placements: list[Placement] = []
    cursor = 0
    for chunk, count in zip(chunks, samples, strict=True):
        placements.append(place(chunk, count, start=cursor, sample_rate=sample_rate, pauses=pauses))
        cursor = placements[-1].end + placements[-1].gap
    return tuple(placements)


def place(
    chunk: ChunkSpan, samples: int, *, start: int, sample_rate: int, pauses: Pauses
) -> Placement:
    """Place one chunk of ``samples`` samples at ``start``, followed by its pause."""
    gap = pause_samples(pauses.after(chunk.break_after), sample_rate)
    return Placement(chunk.index, start, samples, gap)


def total_samples(placements: Sequence[Placement]) -> int:
    """Return the stitched length in samples: every chunk plus every pause."""
    return sum(p.samples + p.gap for p in placements)


def common_sample_rate(rates: Iterable[int], *, job_id: str | None = None) -> int:
    """Return the one sample rate shared by all chunks of a document.

    Raises:
        JobError: if chunks disagree (ttsbatch never resamples silently).
    """
    distinct = sorted(set(rates))
    if len(distinct) != 1:
        raise JobError(
            f"chunks have different sample rates {distinct}; cannot stitch", job_id=job_id
        )
    return distinct[0]


@functools.lru_cache(maxsize=16)
def silence(samples: int) -> bytes:
    """Return ``samples`` samples of digital silence (pauses take a handful of lengths)."""
    return bytes(samples * SAMPLE_WIDTH)
