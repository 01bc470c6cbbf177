"""What a book says about itself: an EPUB's title, authors, language, year and cover; a page's head.

Generated EPUBs cover each way a package names its cover and its creators;
the real Gutenberg books in ``../shared/corpus/`` are read too when the folder
is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from scheduler.ingest import ingest_bytes, ingest_file, metadata
from tests.images import png
from tests.scheduler.test_ingest_epub import XHTML_TYPE, epub, opf, xhtml
from ttsbatch.errors import UnsafeInputError
from ttsbatch.models import BookInfo, Document

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
CHAPTER = xhtml("<h1>One</h1><p>The lamp was lit at dusk, and it burned all night.</p>")


def package(
    metadata_xml: str,
    items: Sequence[tuple[str, str, str, str]] = (),
    version: str = "3.0",
) -> str:
    """An OPF with the given ``<metadata>`` content and one chapter besides ``items``."""
    chapter = ("ch1", "ch1.xhtml", XHTML_TYPE, "")
    return opf([chapter, *items], [("ch1", True)], version=version, metadata=metadata_xml)


def book(
    metadata_xml: str = "<dc:title>The Book</dc:title>",
    items: Sequence[tuple[str, str, str, str]] = (),
    files: dict[str, bytes] | None = None,
    version: str = "3.0",
) -> Document:
    members: dict[str, str | bytes] = {
        "OEBPS/content.opf": package(metadata_xml, items, version),
        "OEBPS/ch1.xhtml": CHAPTER,
        **(files or {}),
    }
    return ingest_bytes(epub(members), "book.epub")


# --- metadata -----------------------------------------------------------------------


def test_an_epub_gives_its_title_author_language_year_description_and_publisher() -> None:
    document = book(
        "<dc:title>  The\n  Lighthouse </dc:title>"
        "<dc:creator>Ann Keeper</dc:creator>"
        "<dc:language>en-GB</dc:language><dc:language>fr</dc:language>"
        "<dc:date>c. 1901-05-02</dc:date>"
        "<dc:publisher>Harbour Press</dc:publisher>"
        "<dc:description>A tale of the sea.</dc:description>"
    )
    assert document.info == BookInfo(
        title="The Lighthouse",
        author="Ann Keeper",
        language="en-GB",
        year="1901",
        description="A tale of the sea.",
        publisher="Harbour Press",
    )


def test_the_main_title_is_the_one_refined_as_main() -> None:
    document = book(
        '<dc:title id="t1">A Collection</dc:title><dc:title id="t2">The Lighthouse</dc:title>'
        '<meta refines="#t1" property="title-type">collection</meta>'
        '<meta refines="#t2" property="title-type">main</meta>'
    )
    assert document.info.title == "The Lighthouse"


def test_without_a_main_title_the_first_is_the_title() -> None:
    document = book("<dc:title></dc:title><dc:title>First</dc:title><dc:title>Second</dc:title>")
    assert document.info.title == "First"


def test_only_authors_are_the_author_whatever_says_their_role() -> None:
    document = book(
        "<dc:title>T</dc:title>"
        '<dc:creator opf:role="aut">Ann Keeper</dc:creator>'
        '<dc:creator opf:role="ill">Ill Ustrator</dc:creator>'
        '<dc:creator id="c3">Bob Keeper</dc:creator>'
        '<meta refines="#c3" property="role" scheme="marc:relators">aut</meta>'
        '<dc:creator id="c4">Ed Itor</dc:creator>'
        '<meta refines="#c4" property="role" scheme="marc:relators">edt</meta>'
        "<dc:creator>Cy Unstated</dc:creator>"
        '<dc:creator opf:role="aut">Ann Keeper</dc:creator>',
        version="2.0",
    )
    assert document.info.author == "Ann Keeper & Bob Keeper & Cy Unstated"


def test_a_description_loses_its_html_whether_escaped_or_not() -> None:
    escaped = book(
        "<dc:title>T</dc:title><dc:description>&lt;p&gt;A tale of &lt;i&gt;the&lt;/i&gt; sea."
        "&lt;/p&gt;&lt;p&gt;Second&amp;amp;last.&lt;/p&gt;</dc:description>"
    )
    assert escaped.info.description == "A tale of the sea. Second&last."
    raw = book(
        "<dc:title>T</dc:title><dc:description><p xmlns='http://www.w3.org/1999/xhtml'>A"
        " <b>bold</b>\n\n   tale.</p></dc:description>"
    )
    assert raw.info.description == "A bold tale."


def test_dates_of_the_file_are_not_the_year_of_the_book() -> None:
    epub2 = book(
        '<dc:title>T</dc:title><dc:date opf:event="conversion">2026-02-01</dc:date>'
        '<dc:date opf:event="publication">1818-01-01</dc:date>',
        version="2.0",
    )
    assert epub2.info.year == "1818"
    modified = book(
        '<dc:title>T</dc:title><meta property="dcterms:modified">2024-01-01T00:00:00Z</meta>'
    )
    assert modified.info.year is None


def test_an_epub_that_says_nothing_has_no_info() -> None:
    assert book("<dc:title>  </dc:title><dc:creator/>").info == BookInfo()


def test_a_title_too_long_for_a_tag_is_cut() -> None:
    title = book(f"<dc:title>{'word ' * 400}</dc:title>").info.title
    assert title is not None and len(title) <= 1000 and title.endswith("…")


# --- cover --------------------------------------------------------------------------


def test_an_epub3_cover_image_is_the_cover() -> None:
    document = book(
        items=[
            ("decoy", "images/cover-back.jpg", "image/jpeg", ""),
            ("img", "images/front.jpg", "image/jpeg", "cover-image"),
        ],
        files={"OEBPS/images/front.jpg": JPEG, "OEBPS/images/cover-back.jpg": b"\xff\xd8\xffX"},
    )
    assert document.cover is not None
    assert document.cover.media_type == "image/jpeg" and document.cover.data == JPEG
    assert document.cover.suffix == "jpg"


def test_an_epub2_meta_cover_names_the_cover() -> None:
    image = png()
    document = book(
        '<dc:title>T</dc:title><meta name="cover" content="pic"/>',
        items=[("pic", "../Images/p%2001.png", "image/png", "")],
        files={"Images/p 01.png": image},
        version="2.0",
    )
    assert document.cover is not None
    assert document.cover.media_type == "image/png" and document.cover.data == image
    assert document.cover.suffix == "png"


def test_an_image_called_cover_is_the_cover_when_nothing_names_one() -> None:
    document = book(
        items=[
            ("figure", "fig.jpg", "image/jpeg", ""),
            ("coverpage", "cover.xhtml", XHTML_TYPE, ""),
            ("i1", "art/Cover.jpeg", "image/jpeg", ""),
        ],
        files={"OEBPS/fig.jpg": JPEG[:-2] + b"!\xff\xd9", "OEBPS/art/Cover.jpeg": JPEG},
    )
    assert document.cover is not None and document.cover.data == JPEG


def test_a_book_without_a_cover_has_none() -> None:
    document = book(items=[("fig", "fig.jpg", "image/jpeg", "")], files={"OEBPS/fig.jpg": JPEG})
    assert document.cover is None


def test_a_gif_cover_is_no_cover_and_no_error() -> None:
    document = book(
        items=[("img", "cover.gif", "image/gif", "cover-image")], files={"OEBPS/cover.gif": GIF}
    )
    assert document.cover is None
    assert document.text.startswith("One")


def test_a_cover_whose_bytes_are_not_jpeg_or_png_is_no_cover() -> None:
    document = book(
        items=[("img", "cover.jpg", "image/jpeg", "cover-image")], files={"OEBPS/cover.jpg": GIF}
    )
    assert document.cover is None


def test_a_cover_named_but_missing_from_the_archive_is_no_cover() -> None:
    document = book(items=[("img", "cover.jpg", "image/jpeg", "cover-image")])
    assert document.cover is None


def test_a_cover_larger_than_the_cap_is_no_cover(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "MAX_COVER_BYTES", len(JPEG) - 1)
    document = book(
        items=[("img", "cover.jpg", "image/jpeg", "cover-image")], files={"OEBPS/cover.jpg": JPEG}
    )
    assert document.cover is None


def test_a_cover_path_leaving_the_book_is_refused() -> None:
    with pytest.raises(UnsafeInputError, match="points outside the book"):
        book(items=[("img", "../../cover.jpg", "image/jpeg", "cover-image")])


# --- HTML ---------------------------------------------------------------------------


def test_a_html_page_gives_its_title_and_author() -> None:
    page = (
        "<!DOCTYPE html><html><head><title> The  Lighthouse </title>"
        '<meta name="Author" content="Ann Keeper"></head>'
        "<body><svg><title>not this</title></svg><p>The lamp was lit.</p></body></html>"
    )
    document = ingest_bytes(page.encode(), "page.html")
    assert document.info == BookInfo(title="The Lighthouse", author="Ann Keeper")
    assert document.cover is None


def test_a_html_page_without_a_head_has_no_info() -> None:
    assert ingest_bytes(b"<p>The lamp was lit.</p>", "page.html").info == BookInfo()


# --- the shared Gutenberg books -----------------------------------------------------

SHARED = {
    "frankenstein.epub": ("Frankenstein; Or, The Modern Prometheus", "Mary Wollstonecraft Shelley"),
    "moby-dick.epub": ("Moby Dick; Or, The Whale", "Herman Melville"),
    "sherlock-holmes.epub": ("The Adventures of Sherlock Holmes", "Arthur Conan Doyle"),
}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_a_shared_gutenberg_epub_gives_its_title_author_language_and_cover(name: str) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared corpus sits beside CI's clone only)")
    document = ingest_file(path)
    title, author = SHARED[name]
    assert (document.info.title, document.info.author) == (title, author)
    assert document.info.language == "en"
    assert document.cover is not None
    magic = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
    assert document.cover.data.startswith(magic[document.cover.media_type])
    assert len(document.cover.data) > 10_000
