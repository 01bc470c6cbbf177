"""A finished timeline as the player reads it: parsed into arrays, its duration from its head."""

from __future__ import annotations

from scheduler.api.timelines import HEAD_BYTES, FinishedTimeline, head_duration
from ttsbatch.audio import stitching
from ttsbatch.audio.timeline import build_timestamps, json_start
from ttsbatch.models import (
    BreakKind,
    Chapter,
    ChunkRecord,
    ChunkSpan,
    Pauses,
    SourceInfo,
    Timestamps,
    TimingSource,
    WordTiming,
)

RATE = 22050


def timestamps() -> bytes:
    chunks = [
        ChunkSpan(index=0, char_start=0, char_end=9, break_after=BreakKind.SENTENCE),
        ChunkSpan(index=1, char_start=10, char_end=19, break_after=BreakKind.END),
    ]
    records = [
        ChunkRecord(
            index=c.index,
            sample_rate=RATE,
            samples=5000 + c.index,
            pcm_sha256="0" * 64,
            timing=TimingSource.PROVIDER,
            words=(
                WordTiming(text="one", char_start=0, char_end=3, start=0, end=1000),
                WordTiming(text="two", char_start=4, char_end=9, start=1500, end=4000),
            ),
            engine="espeak",
        )
        for c in chunks
    ]
    placements = stitching.layout(
        chunks, [r.samples for r in records], sample_rate=RATE, pauses=Pauses()
    )
    built = build_timestamps(
        chunks=chunks,
        records=records,
        placements=placements,
        chapters=[Chapter(index=0, title="One", char_start=0, char_end=19)],
        sample_rate=RATE,
        source=SourceInfo(name="a.txt", sha256="0" * 64, text_file="a.source.txt"),
    )
    return built.model_dump_json(by_alias=True).encode()


def test_the_duration_is_read_from_the_head_the_stitch_writes() -> None:
    data = timestamps()
    parsed = FinishedTimeline.parse(data, name="a")
    assert head_duration(data[:HEAD_BYTES]) == parsed.duration > 0
    head = json_start(Timestamps.model_validate_json(data).model_copy(update={"words": ()}))
    assert head_duration(head[:HEAD_BYTES]) == parsed.duration


def test_a_parsed_timeline_gives_a_stretchs_words_relative_to_it() -> None:
    parsed = FinishedTimeline.parse(timestamps(), name="a")
    assert parsed.sample_rate == RATE and len(parsed.chunk_starts) == 2
    second = parsed.words.between(10, 19)
    assert [w[2:] for w in second] == [(0, 3), (4, 9)]
    start, end = parsed.span(1, 2)
    assert end == parsed.duration and second[0][0] == start
