"""Where an EPUB's spoken text lies in its XHTML (the read-along book's map), checked against the XHTML.

Every segment of the map must hold, in the text node it names, exactly the
document's characters it claims; every paragraph must be found. The shared
Gutenberg EPUBs (``../shared/corpus/``) are mapped too when the folder is there.
"""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from scheduler.ingest import ingest_bytes
from scheduler.ingest.anchoring import source_map
from scheduler.ingest.normalise import clean, clean_with_positions
from tests.scheduler.test_ingest_epub import epub3_with_nav_and_footnotes
from ttsbatch.audio.readalong.anchors import SourceMap, nodes, parse_xhtml
from ttsbatch.errors import InputError

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def assert_faithful(data: bytes, mapped: SourceMap, text: str) -> None:
    """Each segment's raw characters are the document's; every paragraph is covered."""
    assert mapped.unmatched == 0
    covered = 0
    with zipfile.ZipFile(BytesIO(data)) as archive:
        for document in mapped.documents:
            numbered = nodes(parse_xhtml(archive.read(document.path)))
            for start, end, node, tail, raw in document.segments:
                slot = (numbered[node].tail if tail else numbered[node].text) or ""
                piece = slot[raw : raw + end - start]
                assert " ".join(piece.split()) == text[start:end].strip() or piece.isspace()
                covered += end - start
    spoken = len(text) - 2 * text.count("\n\n")
    assert covered >= 0.99 * spoken


def test_an_epub3_with_notes_and_a_nav_maps_every_paragraph_to_its_text_nodes() -> None:
    data = epub3_with_nav_and_footnotes()
    document = ingest_bytes(data, "book.epub")
    assert document.epub == data
    mapped = source_map(data, document.text, "book.epub")
    assert [d.path for d in mapped.documents] == ["OEBPS/text/part 1.xhtml", "OEBPS/text/end.xhtml"]
    assert_faithful(data, mapped, document.text)


@pytest.mark.parametrize(
    "raw", ["  Soft\u00adhyphen  and\n\tspaces ", "Cafe\u0301 ok", "\ufeffA\u200bB  c"]
)
def test_clean_with_positions_is_clean_and_points_back_into_the_raw_text(raw: str) -> None:
    cleaned, positions = clean_with_positions(raw)
    assert cleaned == clean(raw)
    assert len(positions) == len(cleaned)
    assert positions == sorted(positions)
    for char, position in zip(cleaned, positions, strict=True):
        assert (char == " " and raw[position].isspace()) or raw[position] == char or char == "é"


# Moby-Dick maps too (18 929 segments, no paragraph unmatched) but takes seconds more.
@pytest.mark.parametrize("name", ["frankenstein.epub", "sherlock-holmes.epub"])
def test_every_paragraph_of_a_shared_gutenberg_epub_is_found_in_its_xhtml(name: str) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared corpus sits beside CI's clone only)")
    data = path.read_bytes()
    document = ingest_bytes(data, name)
    assert_faithful(data, source_map(data, document.text, name), document.text)


def test_an_epub_with_media_overlays_of_its_own_is_refused_before_anything_is_spoken() -> None:
    data = epub3_with_nav_and_footnotes()
    document = ingest_bytes(data, "book.epub")
    with zipfile.ZipFile(BytesIO(data)) as original:
        members = {info.filename: original.read(info) for info in original.infolist()}
    members["OEBPS/text/part 1.smil"] = b"<smil/>"
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as changed:
        for name, content in members.items():
            changed.writestr(name, content)
    with pytest.raises(InputError, match=r"book\.epub: it has Media Overlays of its own already"):
        source_map(buffer.getvalue(), document.text, "book.epub")
