"""The timeline moves chunk-relative words onto the document and the final audio."""

from __future__ import annotations

from ttsbatch.audio import stitching
from ttsbatch.audio.subtitles import build_cues, to_srt, to_vtt
from ttsbatch.audio.timeline import JSON_END, build_timestamps, json_start, word_line
from ttsbatch.models import (
    BreakKind,
    Chapter,
    ChunkRecord,
    ChunkSpan,
    Pauses,
    SourceInfo,
    Span,
    Timestamps,
    TimingSource,
    WordTiming,
)

TEXT = "Chapter I.\n\nIt is a truth. Very true.\n\nChapter II.\n\nThe end."
#       0         10  12                  37  39           51  53


def _record(index: int, words: list[tuple[str, int, int]], text: str, samples: int) -> ChunkRecord:
    timed = []
    cursor = 0
    for word, start, end in words:
        at = text.index(word, cursor)
        cursor = at + len(word)
        timed.append(WordTiming(text=word, char_start=at, char_end=cursor, start=start, end=end))
    return ChunkRecord(
        index=index,
        sample_rate=1000,
        samples=samples,
        pcm_sha256="-",
        timing=TimingSource.PROVIDER,
        words=tuple(timed),
        engine="test",
    )


def _fixture() -> tuple[list[ChunkSpan], list[ChunkRecord], list[Chapter]]:
    spans = [
        (0, 10, BreakKind.PARAGRAPH),
        (12, 37, BreakKind.CHAPTER),
        (39, 50, BreakKind.PARAGRAPH),
    ]
    spans.append((52, 60, BreakKind.END))
    chunks = [
        ChunkSpan(
            index=i,
            char_start=a,
            char_end=b,
            break_after=k,
            sentences=(Span(char_start=a, char_end=b),),
        )
        for i, (a, b, k) in enumerate(spans)
    ]
    chunks[1] = chunks[1].model_copy(
        update={"sentences": (Span(char_start=12, char_end=26), Span(char_start=27, char_end=37))}
    )
    texts = [TEXT[c.char_start : c.char_end] for c in chunks]
    records = [
        _record(0, [("Chapter", 0, 300), ("I", 300, 400)], texts[0], 500),
        _record(
            1,
            [
                ("It", 0, 100),
                ("is", 100, 200),
                ("a", 200, 250),
                ("truth", 250, 600),
                ("Very", 700, 900),
                ("true", 900, 1200),
            ],
            texts[1],
            1300,
        ),
        _record(2, [("Chapter", 0, 300), ("II", 300, 450)], texts[2], 500),
        _record(3, [("The", 0, 100), ("end", 100, 400)], texts[3], 450),
    ]
    chapters = [
        Chapter(index=0, title="Chapter I.", char_start=0, char_end=37),
        Chapter(index=1, title="Chapter II.", char_start=39, char_end=60),
    ]
    return chunks, records, chapters


def _timestamps():  # type: ignore[no-untyped-def]
    chunks, records, chapters = _fixture()
    pauses = Pauses(sentence_ms=100, paragraph_ms=200, chapter_ms=1000)
    placed = stitching.layout(chunks, [r.samples for r in records], sample_rate=1000, pauses=pauses)
    source = SourceInfo(name="b.txt", sha256="x", text_file="b.source.txt")
    return build_timestamps(
        chunks=chunks,
        records=records,
        placements=placed,
        chapters=chapters,
        sample_rate=1000,
        source=source,
    )


def test_words_land_on_document_offsets_and_the_final_audio() -> None:
    stamps = _timestamps()
    assert stamps.duration == (500 + 200 + 1300 + 1000 + 500 + 200 + 450) / 1000
    for word in stamps.words:
        assert TEXT[word.char_start : word.char_end] == word.text
    truth = next(w for w in stamps.words if w.text == "truth")
    assert (truth.start, truth.end) == (0.95, 1.3)
    starts = [w.start for w in stamps.words]
    assert starts == sorted(starts)


def test_chapters_run_from_their_first_chunk_to_the_next_chapter() -> None:
    stamps = _timestamps()
    assert [(c.title, c.start, c.end) for c in stamps.chapters] == [
        ("Chapter I.", 0.0, 3.0),
        ("Chapter II.", 3.0, stamps.duration),
    ]


def test_timestamps_json_uses_the_public_schema_name() -> None:
    dumped = _timestamps().model_dump(by_alias=True)
    assert dumped["schema"] == "ttsbatch.timestamps/1"
    assert set(dumped["words"][0]) == {"text", "start", "end", "char_start", "char_end"}


def test_subtitles_give_one_cue_per_sentence_with_word_times() -> None:
    chunks, _, _ = _fixture()
    cues = build_cues(_timestamps(), chunks, TEXT)
    assert [c.text for c in cues] == [
        "Chapter I.",
        "It is a truth.",
        "Very true.",
        "Chapter II.",
        "The end.",
    ]
    assert (cues[2].start, cues[2].end) == (1.4, 1.9)
    srt = to_srt(cues)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:00,400\nChapter I.\n")
    assert to_vtt(cues).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:00.400\nChapter I.\n")


def test_a_document_without_chapters_has_an_empty_chapter_list() -> None:
    chunks, records, _ = _fixture()
    placed = stitching.layout(
        chunks, [r.samples for r in records], sample_rate=1000, pauses=Pauses()
    )
    source = SourceInfo(name="b.txt", sha256="x", text_file="b.source.txt")
    stamps = build_timestamps(
        chunks=chunks,
        records=records,
        placements=placed,
        chapters=[],
        sample_rate=1000,
        source=source,
    )
    assert stamps.chapters == ()


def test_the_streamed_json_parses_to_the_same_timeline() -> None:
    whole = _timestamps()
    head = whole.model_copy(update={"words": ()})
    words = [word_line(word, first=n == 0) for n, word in enumerate(whole.words)]
    streamed = json_start(head) + b"".join(words) + JSON_END
    assert Timestamps.model_validate_json(streamed) == whole
