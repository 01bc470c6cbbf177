"""The global timeline of a document: chunk records placed on the final audio.

Builds the public timestamps file (``ttsbatch.timestamps/1``). Inside, every
position is a sample index; seconds are computed once, here, for the output.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from ttsbatch.models import (
    Chapter,
    ChunkRecord,
    ChunkSpan,
    SourceInfo,
    TimedChapter,
    TimedChunk,
    TimedWord,
    Timestamps,
    TimingSource,
)
from worker.stitching import Placement, total_samples


def seconds(samples: int, sample_rate: int) -> float:
    """Return a sample offset in seconds, rounded to the microsecond."""
    return round(samples / sample_rate, 6)


def document_timing(records: Sequence[ChunkRecord]) -> TimingSource:
    """Return the weakest timing source among the chunks (none < estimated < provider)."""
    kinds = {record.timing for record in records}
    for weakest in (TimingSource.NONE, TimingSource.ESTIMATED):
        if weakest in kinds:
            return weakest
    return TimingSource.PROVIDER


def build_timestamps(
    *,
    chunks: Sequence[ChunkSpan],
    records: Sequence[ChunkRecord],
    placements: Sequence[Placement],
    chapters: Sequence[Chapter],
    sample_rate: int,
    source: SourceInfo,
) -> Timestamps:
    """Place chunks, words and chapters on the final audio's timeline.

    Word character offsets move from chunk-relative to document offsets; word
    sample offsets move from chunk-relative to the stitched audio.
    """
    total = total_samples(placements)
    timed_chunks: list[TimedChunk] = []
    words: list[TimedWord] = []
    for chunk, record, place in zip(chunks, records, placements, strict=True):
        timed_chunks.append(
            TimedChunk(
                index=chunk.index,
                start=seconds(place.start, sample_rate),
                end=seconds(place.end, sample_rate),
                char_start=chunk.char_start,
                char_end=chunk.char_end,
            )
        )
        for word in record.words:
            words.append(
                TimedWord(
                    text=word.text,
                    start=seconds(place.start + min(word.start, place.samples), sample_rate),
                    end=seconds(place.start + min(word.end, place.samples), sample_rate),
                    char_start=chunk.char_start + word.char_start,
                    char_end=chunk.char_start + word.char_end,
                )
            )
    return Timestamps(
        sample_rate=sample_rate,
        duration=seconds(total, sample_rate),
        source=source,
        timing=document_timing(records),
        chapters=_timed_chapters(chapters, chunks, placements, sample_rate, total),
        chunks=tuple(timed_chunks),
        words=tuple(words),
    )


def _timed_chapters(
    chapters: Sequence[Chapter],
    chunks: Sequence[ChunkSpan],
    placements: Sequence[Placement],
    sample_rate: int,
    total: int,
) -> tuple[TimedChapter, ...]:
    """A chapter runs from its first chunk's start to the next chapter's start."""
    chunk_ends = [chunk.char_end for chunk in chunks]
    starts: list[int] = []
    for chapter in chapters:
        # The first chunk that ends after the chapter's start holds its heading.
        i = bisect.bisect_right(chunk_ends, chapter.char_start)
        starts.append(placements[i].start if i < len(placements) else total)
    ends = [*starts[1:], total] if starts else []
    return tuple(
        TimedChapter(
            index=chapter.index,
            title=chapter.title,
            start=seconds(start, sample_rate),
            end=seconds(end, sample_rate),
            char_start=chapter.char_start,
            char_end=chapter.char_end,
        )
        for chapter, start, end in zip(chapters, starts, ends, strict=True)
    )
