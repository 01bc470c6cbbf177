"""Stitching places chunks on a sample-exact timeline with pauses between them."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttsbatch.audio import stitching
from ttsbatch.errors import JobError
from ttsbatch.models import BreakKind, ChunkSpan, Pauses

BREAKS = [BreakKind.SENTENCE, BreakKind.PARAGRAPH, BreakKind.CHAPTER, BreakKind.NONE]


def _chunks(breaks: list[BreakKind]) -> list[ChunkSpan]:
    kinds = [*breaks[:-1], BreakKind.END] if breaks else []
    return [
        ChunkSpan(index=i, char_start=i * 10, char_end=i * 10 + 5, break_after=kind)
        for i, kind in enumerate(kinds)
    ]


def test_pauses_follow_what_comes_after_each_chunk() -> None:
    chunks = _chunks([BreakKind.SENTENCE, BreakKind.PARAGRAPH, BreakKind.CHAPTER, BreakKind.END])
    pauses = Pauses(sentence_ms=100, paragraph_ms=200, chapter_ms=300)
    placed = stitching.layout(chunks, [10, 20, 30, 40], sample_rate=1000, pauses=pauses)
    assert [(p.start, p.samples, p.gap) for p in placed] == [
        (0, 10, 100),
        (110, 20, 200),
        (330, 30, 300),
        (660, 40, 0),
    ]
    assert stitching.total_samples(placed) == 700


def test_pause_lengths_round_to_the_nearest_sample() -> None:
    assert stitching.pause_samples(250, 22050) == 5513  # 5512.5 rounds up
    assert stitching.pause_samples(1, 24000) == 24


@given(
    st.lists(st.tuples(st.integers(0, 5000), st.sampled_from(BREAKS)), min_size=1, max_size=50),
    st.sampled_from([8000, 22050, 24000, 44100]),
)
def test_stitched_length_is_the_sum_of_parts_plus_gaps(
    parts: list[tuple[int, BreakKind]], rate: int
) -> None:
    chunks = _chunks([kind for _, kind in parts])
    samples = [count for count, _ in parts]
    placed = stitching.layout(chunks, samples, sample_rate=rate, pauses=Pauses())
    gaps = sum(stitching.pause_samples(Pauses().after(c.break_after), rate) for c in chunks)
    assert stitching.total_samples(placed) == sum(samples) + gaps
    for before, after in itertools.pairwise(placed):
        assert after.start == before.end + before.gap  # monotonic, no overlap


def test_silence_is_zero_samples_of_the_sample_width() -> None:
    assert stitching.silence(3) == b"\x00" * 6
    assert stitching.silence(0) == b""


def test_chunks_with_different_sample_rates_are_refused() -> None:
    with pytest.raises(JobError, match="different sample rates"):
        stitching.common_sample_rate([22050, 24000])
    assert stitching.common_sample_rate([24000, 24000]) == 24000
