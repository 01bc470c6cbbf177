"""A chapter's WAV made of stored chunks equals the stitched document's bytes for that chapter,
byte for byte, over any range; sections split a document as its chapter marks do."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttsbatch.audio import stitching
from ttsbatch.audio.excerpts import ChunkBytes, Excerpt, Piece, Silence
from ttsbatch.audio.sections import Section, sections
from ttsbatch.audio.timeline import chapter_spans
from ttsbatch.audio.wav import HEADER_SIZE, wav_header
from ttsbatch.errors import JobError
from ttsbatch.models import BreakKind, Chapter, ChunkSpan, Pauses

BREAKS = [BreakKind.SENTENCE, BreakKind.PARAGRAPH, BreakKind.CHAPTER, BreakKind.NONE]
PAUSES = Pauses(sentence_ms=3, paragraph_ms=7, chapter_ms=11)
RATE = 1000


def _chunks(breaks: list[BreakKind]) -> list[ChunkSpan]:
    kinds = [*breaks[:-1], BreakKind.END]
    return [
        ChunkSpan(index=i, char_start=i * 10, char_end=i * 10 + 8, break_after=kind)
        for i, kind in enumerate(kinds)
    ]


def _read(pieces: list[Piece], pcm: dict[int, bytes]) -> bytes:
    out = bytearray()
    for piece in pieces:
        if isinstance(piece, ChunkBytes):
            out += pcm[piece.index][piece.start : piece.end]
        elif isinstance(piece, Silence):
            out += bytes(piece.size)
        else:
            out += piece
    return bytes(out)


@st.composite
def documents(draw: st.DrawFn) -> tuple[list[ChunkSpan], list[int], list[Chapter]]:
    parts = draw(
        st.lists(st.tuples(st.integers(0, 300), st.sampled_from(BREAKS)), min_size=1, max_size=30)
    )
    chunks = _chunks([kind for _, kind in parts])
    starts = draw(st.lists(st.integers(0, len(chunks) - 1), max_size=6, unique=True))
    chapters = [
        Chapter(index=n, title=f"Chapter {n}", char_start=chunks[i].char_start, char_end=0)
        for n, i in enumerate(sorted(starts))
    ]
    return chunks, [count for count, _ in parts], chapters


@given(documents(), st.data())
def test_every_byte_of_a_sections_wav_is_the_stitched_documents(
    document: tuple[list[ChunkSpan], list[int], list[Chapter]], data: st.DataObject
) -> None:
    chunks, samples, chapters = document
    rng = random.Random(len(chunks))
    pcm = {c.index: rng.randbytes(n * 2) for c, n in zip(chunks, samples, strict=True)}
    placed = stitching.layout(chunks, samples, sample_rate=RATE, pauses=PAUSES)
    stitched = b"".join(pcm[p.index] + stitching.silence(p.gap) for p in placed)
    spans = dict(
        zip((c.title for c in chapters), chapter_spans(chapters, chunks, placed), strict=True)
    )
    found = sections(chapters, chunks, title="Book")
    # The sections tile the chunk plan, in order.
    assert [s.first for s in found] == [0, *(s.stop for s in found[:-1])]
    assert found[-1].stop == len(chunks)
    for section in found:
        own = stitching.layout(
            chunks[section.first : section.stop],
            samples[section.first : section.stop],
            sample_rate=RATE,
            pauses=PAUSES,
        )
        start = placed[section.first].start
        total = stitching.total_samples(placed)
        end = placed[section.stop].start if section.stop < len(placed) else total
        if section.title in spans:  # a chapter: the stitch's own span, from the same rule
            assert spans[section.title] == (start, end)
        # Times within the section are the document's minus the section's start.
        assert [p.start for p in own] == [
            p.start - start for p in placed[section.first : section.stop]
        ]
        expected = wav_header(end - start, RATE) + stitched[start * 2 : end * 2]
        excerpt = Excerpt.of(own, RATE)
        assert excerpt.size == len(expected)
        assert _read(list(excerpt.pieces(0, excerpt.size)), pcm) == expected
        a = data.draw(st.integers(0, excerpt.size + 5))
        b = data.draw(st.integers(a, excerpt.size + 5))
        got = list(excerpt.pieces(a, b))
        assert all((p.size if not isinstance(p, bytes) else len(p)) > 0 for p in got), (
            "no empty pieces"
        )
        assert _read(got, pcm) == expected[a:b]


def test_a_range_inside_the_header_reads_only_the_header() -> None:
    chunks = _chunks([BreakKind.SENTENCE, BreakKind.END])
    excerpt = Excerpt.of(stitching.layout(chunks, [5, 5], sample_rate=RATE, pauses=PAUSES), RATE)
    assert list(excerpt.pieces(4, 8)) == [excerpt.header[4:8]]
    assert list(excerpt.pieces(HEADER_SIZE, HEADER_SIZE + 12)) == [
        ChunkBytes(0, 0, 10),
        Silence(2),
    ]


def test_a_document_without_chapters_is_one_section_titled_by_it() -> None:
    chunks = _chunks([BreakKind.SENTENCE, BreakKind.END])
    assert sections((), chunks, title="Notes") == [Section(0, "Notes", 0, 2, 0, 18)]


def test_what_precedes_the_first_chapter_is_a_section_and_empty_chapters_are_left_out() -> None:
    chunks = _chunks([BreakKind.PARAGRAPH, BreakKind.CHAPTER, BreakKind.CHAPTER, BreakKind.END])
    chapters = [
        Chapter(index=0, title="One", char_start=10, char_end=20),
        Chapter(index=1, title="Heading", char_start=20, char_end=21),
        Chapter(index=2, title="Two", char_start=21, char_end=40),
    ]
    # "Heading" and "Two" start in the same chunk: "Heading" holds none.
    assert sections(chapters, chunks, title="Book") == [
        Section(0, "Book", 0, 1, 0, 8),
        Section(1, "One", 1, 2, 10, 18),
        Section(2, "Two", 2, 4, 20, 38),
    ]


def test_a_chapter_past_4_gib_streams_with_the_largest_sizes_a_wav_can_say() -> None:
    """A 24-hour PCM book without chapters is one chapter: the player still gets a WAV."""
    header = wav_header(3 * 2**30, 24000, streamed=True)
    assert struct.unpack("<I", header[4:8]) == (0xFFFFFFFF,)
    with pytest.raises(JobError):
        wav_header(3 * 2**30, 24000)  # a file must not lie about its size
