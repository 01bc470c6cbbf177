"""The global timeline of a document: chunk records placed on the final audio.

Builds the public timestamps file (``ttsbatch.timestamps/1``). Inside, every
position is a sample index; seconds are computed once, here, for the output.
Words are produced chunk by chunk and the file is written as a stream, so
memory does not grow with the book.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from ttsbatch.audio.stitching import Placement, total_samples
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


def seconds(samples: int, sample_rate: int) -> float:
    """Return a sample offset in seconds, rounded to the microsecond."""
    return round(samples / sample_rate, 6)


def document_timing(kinds: Iterable[TimingSource]) -> TimingSource:
    """Return the weakest timing source among the chunks (none < estimated < provider)."""
    present = set(kinds)
    for weakest in (TimingSource.NONE, TimingSource.ESTIMATED):
        if weakest in present:
            return weakest
    return TimingSource.PROVIDER


def timed_chunk(chunk: ChunkSpan, place: Placement, sample_rate: int) -> TimedChunk:
    """Return a chunk's own audio (without its pause) on the final timeline."""
    return TimedChunk(
        index=chunk.index,
        start=seconds(place.start, sample_rate),
        end=seconds(place.end, sample_rate),
        char_start=chunk.char_start,
        char_end=chunk.char_end,
    )


def timed_words(
    chunk: ChunkSpan, record: ChunkRecord, place: Placement, sample_rate: int
) -> list[TimedWord]:
    """Move a chunk's words to document character offsets and final-audio times."""
    # model_construct: the values are computed here from validated records;
    # validating 100 000 words again is a measurable share of a book's stitch.
    return [
        TimedWord.model_construct(
            text=word.text,
            start=seconds(place.start + min(word.start, place.samples), sample_rate),
            end=seconds(place.start + min(word.end, place.samples), sample_rate),
            char_start=chunk.char_start + word.char_start,
            char_end=chunk.char_start + word.char_end,
        )
        for word in record.words
    ]


def chapter_spans(
    chapters: Sequence[Chapter], chunks: Sequence[ChunkSpan], placements: Sequence[Placement]
) -> list[tuple[int, int]]:
    """Each chapter's first and after-last sample: from its first chunk to the next chapter."""
    total = total_samples(placements)
    starts = [
        placements[i].start if i < len(placements) else total
        for i in first_chunks(chapters, chunks)
    ]
    return list(zip(starts, [*starts[1:], total], strict=False))


def first_chunks(chapters: Sequence[Chapter], chunks: Sequence[ChunkSpan]) -> list[int]:
    """Each chapter's first chunk, as a position in ``chunks`` (``len(chunks)`` if none).

    The first chunk that ends after the chapter's start holds its heading; a
    chapter runs from there to the next chapter's first chunk.
    """
    chunk_ends = [chunk.char_end for chunk in chunks]
    return [bisect.bisect_right(chunk_ends, chapter.char_start) for chapter in chapters]


def timed_chapters(
    chapters: Sequence[Chapter],
    chunks: Sequence[ChunkSpan],
    placements: Sequence[Placement],
    sample_rate: int,
) -> tuple[TimedChapter, ...]:
    """A chapter runs from its first chunk's start to the next chapter's start."""
    return tuple(
        TimedChapter(
            index=chapter.index,
            title=chapter.title,
            start=seconds(start, sample_rate),
            end=seconds(end, sample_rate),
            char_start=chapter.char_start,
            char_end=chapter.char_end,
        )
        for chapter, (start, end) in zip(
            chapters, chapter_spans(chapters, chunks, placements), strict=True
        )
    )


def timeline_head(
    *,
    chunks: Sequence[ChunkSpan],
    placements: Sequence[Placement],
    chapters: Sequence[Chapter],
    sample_rate: int,
    source: SourceInfo,
    timing: TimingSource,
) -> Timestamps:
    """Return the timestamps file without its words (they are streamed after)."""
    return Timestamps(
        sample_rate=sample_rate,
        duration=seconds(total_samples(placements), sample_rate),
        source=source,
        timing=timing,
        chapters=timed_chapters(chapters, chunks, placements, sample_rate),
        chunks=tuple(
            timed_chunk(c, p, sample_rate) for c, p in zip(chunks, placements, strict=True)
        ),
    )


#: The end of a timestamps file, after its last word.
JSON_END = b"\n]}\n"


def json_start(head: Timestamps) -> bytes:
    """Return the timestamps file up to its first word: ``head`` with ``"words":[`` open."""
    text = head.model_dump_json(by_alias=True)
    empty = '"words":[]}'
    if not text.endswith(empty):  # the splice relies on `words` being the last field
        raise AssertionError("Timestamps.words must be the model's last field")
    return text[: -len(empty)].encode() + b'"words":['


def word_line(word: TimedWord, *, first: bool) -> bytes:
    """Return one word of the ``words`` array, with the separator before it."""
    return (b"\n" if first else b",\n") + word.model_dump_json().encode()


def build_timestamps(
    *,
    chunks: Sequence[ChunkSpan],
    records: Sequence[ChunkRecord],
    placements: Sequence[Placement],
    chapters: Sequence[Chapter],
    sample_rate: int,
    source: SourceInfo,
) -> Timestamps:
    """Return the whole timestamps file in memory (for small documents and tests)."""
    head = timeline_head(
        chunks=chunks,
        placements=placements,
        chapters=chapters,
        sample_rate=sample_rate,
        source=source,
        timing=document_timing(r.timing for r in records),
    )
    words = [
        word
        for chunk, record, place in zip(chunks, records, placements, strict=True)
        for word in timed_words(chunk, record, place, sample_rate)
    ]
    return head.model_copy(update={"words": tuple(words)})
