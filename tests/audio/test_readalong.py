"""The read-along book's pure parts: clips, clock values, spans in kept XHTML, the archive.

Unit tests over data (no synthesis): the end to end runs, with epubcheck,
are in ``tests/ttsbatch/test_readalong_synth.py``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from lxml import etree

from ttsbatch.audio.readalong import Audio, Front, build_book
from ttsbatch.audio.readalong.anchors import parse_xhtml, wrap
from ttsbatch.audio.readalong.kept import _free_prefix
from ttsbatch.audio.readalong.parts import write_archive, xhtml_bytes
from ttsbatch.audio.readalong.timing import Clip, Spoken, clock, contiguous
from ttsbatch.models import BreakKind, ChunkSpan, Span, TimedChunk, TimedWord


def test_a_clip_runs_to_the_next_ones_start_and_the_last_ends_with_its_words() -> None:
    clips = [
        Clip(0, 5, 0, 900_000),
        Clip(6, 9, 1_150_000, 1_800_000),
        Clip(10, 12, 2_000_000, 2_400_000),
    ]
    assert [(c.begin, c.end) for c in contiguous(clips)] == [
        (0, 1_150_000),
        (1_150_000, 2_000_000),
        (2_000_000, 2_400_000),
    ]


def test_a_clip_that_would_run_backwards_or_be_empty_is_dropped() -> None:
    clips = [Clip(0, 5, 1_000_000, 1_200_000), Clip(6, 9, 1_000_000, 1_300_000)]
    assert [(c.begin, c.end) for c in contiguous(clips)] == [(1_000_000, 1_300_000)]


def test_clock_values_are_smil_full_clock_values_to_the_microsecond() -> None:
    assert clock(0) == "0:00:00.000000"
    assert clock(3_723_000_001) == "1:02:03.000001"
    assert clock(36 * 3_600_000_000 + 59_999_999) == "36:00:59.999999"


def _chunk(text: str, start: int, end: int, sentences: list[tuple[int, int]]) -> ChunkSpan:
    return ChunkSpan(
        index=0,
        char_start=start,
        char_end=end,
        break_after=BreakKind.END,
        sentences=tuple(Span(char_start=a, char_end=b) for a, b in sentences),
    )


def test_sentences_take_their_words_times_and_a_chunk_without_words_is_one_unit() -> None:
    text = "One two. Three."
    chunk = _chunk(text, 0, len(text), [(0, 8), (9, 15)])
    timed = TimedChunk(index=0, start=0.5, end=2.0, char_start=0, char_end=len(text))
    words = [
        TimedWord(text="One", start=0.5, end=0.7, char_start=0, char_end=3),
        TimedWord(text="two.", start=0.75, end=1.0, char_start=4, char_end=8),
        TimedWord(text="Three.", start=1.3, end=1.9, char_start=9, char_end=15),
    ]
    spoken = Spoken("sentence")
    spoken.add(chunk, timed, words)
    assert spoken.units == [(0, 8), (9, 15)]
    assert spoken.clip(0, 8) == Clip(0, 8, 500_000, 1_000_000)
    assert spoken.clip(9, 15) == Clip(9, 15, 1_300_000, 1_900_000)
    silent = Spoken("sentence")
    silent.add(chunk, timed, [])
    assert silent.units == [(0, len(text))]
    assert silent.clip(0, len(text)) == Clip(0, len(text), 500_000, 2_000_000)


XHTML = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>T</title></head><body>'
    b"<p>He said <i>no</i> twice.\n  Then left.</p></body></html>"
)


def _text(tree: etree._ElementTree) -> str:
    return "".join(str(part) for part in tree.getroot().itertext())


def test_a_sentence_across_an_inline_element_is_one_span_around_it() -> None:
    tree = parse_xhtml(XHTML)
    before = _text(tree)
    nodes = list(tree.getroot().iter())
    paragraph, italic = nodes[4], nodes[5]
    assert paragraph.text == "He said " and italic.text == "no"
    number = {node: n for n, node in enumerate(nodes)}
    # The document's text "He said no twice. Then left." (whitespace collapsed).
    segments = [
        (0, 8, number[paragraph], 0, 0),
        (8, 10, number[italic], 0, 0),
        (10, 18, number[italic], 1, 0),
        (18, 19, number[italic], 1, 7),  # the run of whitespace, at its first character
        (19, 29, number[italic], 1, 10),
    ]
    made = wrap(tree, segments, [("s1", 0, 17), ("s2", 19, 29)])
    assert made == [("s1", 0, 17), ("s2", 19, 29)]
    assert _text(tree) == before  # nothing a reader sees has changed
    spans = {span.get("id"): span for span in tree.getroot().iter("{*}span")}
    assert set(spans) == {"s1", "s2"}
    assert _text(etree.ElementTree(spans["s1"])) == "He said no twice."
    assert italic.getparent() is spans["s1"]  # the element moved inside, as it was
    assert spans["s2"].text == "Then left."


def test_a_sentence_with_a_word_it_does_not_speak_is_one_span_per_text_node() -> None:
    tree = parse_xhtml(
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>He said<sup>1</sup> no.</p>'
        b"</body></html>"
    )
    before = _text(tree)
    paragraph, mark = list(tree.getroot().iter())[2:4]
    number = {node: n for n, node in enumerate(tree.getroot().iter())}
    # "He said no." : the footnote mark is not spoken.
    segments = [(0, 7, number[paragraph], 0, 0), (7, 11, number[mark], 1, 0)]
    made = wrap(tree, segments, [("s1", 0, 11)])
    assert made == [("s1-1", 0, 7), ("s1-2", 7, 11)]
    assert _text(tree) == before
    assert mark.getparent() is paragraph  # nothing moved
    spans = [span.text for span in tree.getroot().iter("{*}span")]
    assert spans == ["He said", " no."]


def test_the_archive_opens_with_its_mimetype_stored_uncompressed(tmp_path: Path) -> None:
    audio = tmp_path / "a.mp3"
    audio.write_bytes(b"\xff\xfb" * 1000)
    book = tmp_path / "book.epub"
    write_archive(
        book, [("EPUB/a.opf", b"<package/>"), ("EPUB/a.mp3", audio)], opf_path="EPUB/a.opf"
    )
    with zipfile.ZipFile(book) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype") == b"application/epub+zip"
        assert archive.getinfo("EPUB/a.mp3").compress_type == zipfile.ZIP_STORED
        assert archive.read("EPUB/a.mp3") == audio.read_bytes()
    assert book.read_bytes()[30:38] == b"mimetype"  # the name right after the first local header


def test_an_epub2_becomes_epub3_keeping_its_creators_name_and_role_and_one_date(
    tmp_path: Path,
) -> None:
    from scheduler.ingest import ingest_bytes  # noqa: PLC0415 - planning's side, for its map
    from scheduler.ingest.anchoring import source_map  # noqa: PLC0415
    from tests.scheduler.test_ingest_epub import (  # noqa: PLC0415
        XHTML_TYPE,
        epub,
        nav_point,
        ncx,
        opf,
        xhtml,
    )

    metadata = (
        '<dc:title>The Book</dc:title><dc:creator opf:role="aut" opf:file-as="Writer, A.">'
        "A. Writer</dc:creator><dc:date opf:event='publication'>1999</dc:date>"
        "<dc:date opf:event='conversion'>2020-01-01</dc:date><dc:language>en</dc:language>"
    )
    items = [
        ("ch1", "ch1.xhtml", XHTML_TYPE, ""),
        ("ncx", "toc.ncx", "application/x-dtbncx+xml", ""),
    ]
    data = epub(
        {
            "OEBPS/content.opf": opf(
                items, [("ch1", True)], toc="ncx", version="2.0", metadata=metadata
            ),
            "OEBPS/toc.ncx": ncx(nav_point("One", "ch1.xhtml")),
            "OEBPS/ch1.xhtml": xhtml("<h1>One</h1><p>It began here. It ended there.</p>"),
        }
    )
    document = ingest_bytes(data, "book.epub")
    spoken = Spoken("sentence")
    for index, (start, end) in enumerate([(0, 3), (5, 19), (20, 35)]):
        chunk = _chunk(document.text, start, end, [(start, end)])
        timed = TimedChunk(
            index=index, start=index, end=index + 0.8, char_start=start, char_end=end
        )
        spoken.add(chunk, timed, [])
    audio = tmp_path / "a.mp3"
    audio.write_bytes(b"\xff\xfb" * 100)
    out = tmp_path / "book.epub"
    build_book(
        out,
        text=document.text,
        chapters=document.chapters,
        spoken=spoken,
        front=Front(
            title="The Book", language="en", identifier="x", modified="2026-01-01T00:00:00Z"
        ),
        audio=Audio(audio, "audio/mpeg", "mp3"),
        cover=None,
        source=(data, source_map(data, document.text, "book.epub")),
    )
    with zipfile.ZipFile(out) as book:
        package = etree.fromstring(book.read("OEBPS/content.opf"))
        chapter = book.read("OEBPS/ch1.xhtml").decode()
        assert "OEBPS/readalong/nav.xhtml" in book.namelist()
    assert package.get("version") == "3.0"
    assert "opf:" not in etree.tostring(package).decode().split("<manifest")[0].replace(
        "xmlns:opf", ""
    )
    metas = {(m.get("property"), m.get("refines"), m.text) for m in package.iter("{*}meta")}
    assert ("file-as", "#readalong-creator-2", "Writer, A.") in metas
    assert ("role", "#readalong-creator-2", "aut") in metas
    assert [d.text for d in package.iter("{http://purl.org/dc/elements/1.1/}date")] == ["1999"]
    assert ("media:duration", None, "0:00:02.800000") in metas
    assert chapter.startswith("<?xml version='1.0' encoding='utf-8'?>\n<!DOCTYPE html>")
    assert '<span id="ra-s2">It began here.</span>' in chapter


def test_named_entities_of_an_epub2_document_become_characters_under_the_html5_doctype() -> None:
    """Nothing declares ``&nbsp;`` under ``<!DOCTYPE html>``: epubcheck's RSC-016, a fatal."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    source = (
        b'<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN"'
        b' "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd"><html xmlns="http://www.w3.org/1999/xhtml">'
        b"<body><p>a&nbsp;b <i>c</i>&mdash;d</p></body></html>"
    )
    written = xhtml_bytes(etree.ElementTree(etree.fromstring(source, parser))).decode()
    assert "<!DOCTYPE html>" in written and "&nbsp;" not in written
    assert "<p>a\u00a0b <i>c</i>\u2014d</p>" in written


def test_a_unit_over_two_paragraphs_is_one_span_in_each_never_a_span_around_them() -> None:
    """A chunk without word times is one unit; a <span> may not hold a <p> (RSC-005)."""
    tree = parse_xhtml(
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><div><p>One.</p><p>Two.</p></div>'
        b"</body></html>"
    )
    before = _text(tree)
    first, second = list(tree.getroot().iter("{*}p"))
    number = {node: n for n, node in enumerate(tree.getroot().iter())}
    segments = [(0, 4, number[first], 0, 0), (5, 9, number[second], 0, 0)]
    made = wrap(tree, segments, [("s1", 0, 9)])
    assert made == [("s1-1", 0, 4), ("s1-2", 5, 9)]
    assert _text(tree) == before
    assert [span.getparent() for span in tree.getroot().iter("{*}span")] == [first, second]


def test_the_ids_added_to_a_kept_document_never_repeat_one_it_has() -> None:
    tree = parse_xhtml(
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p id="ra-s1">One.</p>'
        b'<p id="ra-sx">Two.</p></body></html>'
    )
    assert _free_prefix(tree, "ra-s") == "ra-sxx"
    assert _free_prefix(tree, "ra-w") == "ra-w"
