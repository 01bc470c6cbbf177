"""EPUB 2 and 3: reading order, chapters from the TOC, and hostile archives refused."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Mapping

import pytest

from scheduler.ingest import archive, ingest_bytes
from tests.scheduler.test_ingest_properties import assert_contract
from ttsbatch.errors import InputError, UnsafeInputError
from ttsbatch.models import Document

CONTAINER = (
    '<?xml version="1.0"?>\n'
    '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
    '<rootfiles><rootfile full-path="{opf}" media-type="application/oebps-package+xml"/>'
    "</rootfiles></container>"
)
XHTML_TYPE = "application/xhtml+xml"


def xhtml(body: str, title: str = "The Book") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<head><title>{title}</title></head><body>{body}</body></html>"
    )


def opf(
    items: list[tuple[str, str, str, str]],
    spine: list[tuple[str, bool]],
    *,
    toc: str | None = None,
    version: str = "3.0",
    metadata: str = "<dc:title>The Book</dc:title>",
) -> str:
    manifest = "".join(
        f'<item id="{ident}" href="{href}" media-type="{kind}"'
        + (f' properties="{props}"' if props else "")
        + "/>"
        for ident, href, kind, props in items
    )
    refs = "".join(
        f'<itemref idref="{idref}"' + ("" if linear else ' linear="no"') + "/>"
        for idref, linear in spine
    )
    toc_attribute = f' toc="{toc}"' if toc else ""
    return (
        f'<?xml version="1.0"?>\n<package xmlns="http://www.idpf.org/2007/opf" version="{version}"'
        ' xmlns:opf="http://www.idpf.org/2007/opf">'
        f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">{metadata}</metadata>'
        f"<manifest>{manifest}</manifest><spine{toc_attribute}>{refs}</spine></package>"
    )


def ncx(points: str) -> str:
    return (
        '<?xml version="1.0"?>\n<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
        f"<head/><docTitle><text>The Book</text></docTitle><navMap>{points}</navMap></ncx>"
    )


def nav_point(label: str, src: str, children: str = "") -> str:
    return f'<navPoint><navLabel><text>{label}</text></navLabel><content src="{src}"/>{children}</navPoint>'


def zip_bytes(
    members: Mapping[str, str | bytes], *, compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as book:
        book.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        for name, content in members.items():
            book.writestr(name, content)
    return buffer.getvalue()


def epub(members: Mapping[str, str | bytes], opf_path: str = "OEBPS/content.opf") -> bytes:
    return zip_bytes({"META-INF/container.xml": CONTAINER.format(opf=opf_path), **members})


def _read(data: bytes, name: str = "book.epub") -> Document:
    document = ingest_bytes(data, name)
    assert_contract(document, titles_from_text=False)
    return document


def _chapters(document: Document) -> list[tuple[str, str]]:
    return [(c.title, document.text[c.char_start : c.char_end]) for c in document.chapters]


# --- EPUB 2 -------------------------------------------------------------------------


def epub2_with_page_numbers_in_its_ncx() -> bytes:
    points = (
        nav_point("Chapter One", "ch1.xhtml#c1")
        + nav_point("12", "ch1.xhtml#page12")
        + nav_point(
            "Two",
            "ch2.xhtml",
            nav_point("13", "ch2.xhtml#page13") + nav_point("Page 14", "ch2.xhtml#p14"),
        )
        + nav_point("Elsewhere", "http://example.com/x.html")
    )
    items = [
        ("cover", "cover.xhtml", XHTML_TYPE, ""),
        ("ch1", "ch1.xhtml", XHTML_TYPE, ""),
        ("ch2", "ch2.xhtml", XHTML_TYPE, ""),
        ("ch3", "ch3.xhtml", XHTML_TYPE, ""),
        ("ncx", "toc.ncx", "application/x-dtbncx+xml", ""),
    ]
    spine = [("cover", False), ("ch1", True), ("ch2", True), ("ch3", True)]
    return epub(
        {
            "OEBPS/content.opf": opf(items, spine, toc="ncx", version="2.0"),
            "OEBPS/toc.ncx": ncx(points),
            "OEBPS/cover.xhtml": xhtml("<p>Cover page.</p>"),
            "OEBPS/ch1.xhtml": xhtml(
                '<h1 id="c1">CHAPTER ONE</h1><p>It began<a id="page12"/> here.</p><p>More&#160;text.</p>'
            ),
            "OEBPS/ch2.xhtml": xhtml(
                '<h2>II</h2><p>Second <span epub:type="pagebreak" id="page13" title="13">13</span>part.</p>'
                '<p id="p14">Page fourteen.</p>'
            ),
            "OEBPS/ch3.xhtml": xhtml("<p>An untitled afterword that goes on for a while.</p>"),
        }
    )


def test_an_epub2_is_read_in_spine_order_with_chapters_from_its_ncx() -> None:
    document = _read(epub2_with_page_numbers_in_its_ncx())
    assert document.name == "book"
    assert document.text == (
        "CHAPTER ONE\n\nIt began here.\n\nMore text.\n\nII\n\nSecond part.\n\nPage fourteen.\n\n"
        "An untitled afterword that goes on for a while."
    )
    # ch3.xhtml is not in the NCX and opens without a heading: it goes on with
    # the chapter before, as a long chapter split into files does.
    assert _chapters(document) == [
        ("Chapter One", "CHAPTER ONE\n\nIt began here.\n\nMore text."),
        (
            "Two",
            "II\n\nSecond part.\n\nPage fourteen.\n\nAn untitled afterword that goes on for a while.",
        ),
    ]


def test_non_linear_documents_are_read_when_nothing_else_has_text() -> None:
    items = [("a", "a.xhtml", XHTML_TYPE, ""), ("b", "b.xhtml", XHTML_TYPE, "")]
    data = epub(
        {
            "OEBPS/content.opf": opf(items, [("a", True), ("b", False)]),
            "OEBPS/a.xhtml": xhtml("<img src='cover.png' alt='Cover'/>"),
            "OEBPS/b.xhtml": xhtml("<h1>Notes</h1><p>Only here.</p>"),
        }
    )
    assert _chapters(_read(data)) == [("Notes", "Notes\n\nOnly here.")]


def test_image_and_svg_pages_in_the_spine_are_skipped() -> None:
    items = [
        ("cover", "cover.svg", "image/svg+xml", ""),
        ("plate", "plate.png", "image/png", ""),
        ("a", "a.xhtml", XHTML_TYPE, ""),
    ]
    data = epub(
        {
            "OEBPS/content.opf": opf(items, [("cover", True), ("plate", True), ("a", True)]),
            "OEBPS/cover.svg": '<svg xmlns="http://www.w3.org/2000/svg"><text>Cover</text></svg>',
            "OEBPS/plate.png": b"\x89PNG\r\n\x1a\n\x00\x00binary",
            "OEBPS/a.xhtml": xhtml("<h1>One</h1><p>Text.</p>"),
        }
    )
    assert _chapters(_read(data)) == [("One", "One\n\nText.")]


def test_a_spine_without_any_html_document_is_named() -> None:
    items = [("plate", "plate.png", "image/png", "")]
    data = epub({"OEBPS/content.opf": opf(items, [("plate", True)]), "OEBPS/plate.png": b"png"})
    with pytest.raises(InputError, match=r"lists no \(X\)HTML document in its spine"):
        ingest_bytes(data, "book.epub")


# --- EPUB 3 -------------------------------------------------------------------------

NAV = """<nav epub:type="toc" id="toc"><h2>Contents</h2><ol>
<li><a href="text/part%201.xhtml">Part One</a><ol>
  <li><a href="text/part%201.xhtml#ch2">The Second Chapter</a></li>
  <li><a href="text/part%201.xhtml#fn1">A footnote link</a></li>
</ol></li>
<li><span>Unlinked heading</span><ol><li><a href="text/end.xhtml#top">The End</a></li></ol></li>
</ol></nav>
<nav epub:type="page-list"><ol><li><a href="text/part%201.xhtml#p5">5</a></li></ol></nav>"""

PART_ONE = """<section epub:type="chapter"><h1>Part One</h1>
<p>Text<a epub:type="noteref" href="#fn1">1</a> with notes<sup>2</sup>, a role ref<a role="doc-noteref"
href="#fn3">3</a> and a page<span id="p5" epub:type="pagebreak">5</span> mark.</p>
<aside epub:type="footnote" id="fn1"><p>The footnote.</p></aside></section>
<section id="ch2"><h2>Chapter 2</h2><p>Second chapter text.</p></section>
<section role="doc-endnotes"><ol><li id="fn3">An endnote.</li></ol></section>"""


def epub3_with_nav_and_footnotes() -> bytes:
    items = [
        ("nav", "nav.xhtml", XHTML_TYPE, "nav"),
        ("p1", "text/part%201.xhtml", XHTML_TYPE, ""),
        ("end", "text/end.xhtml", XHTML_TYPE, ""),
        ("css", "style.css", "text/css", ""),
    ]
    return epub(
        {
            "OEBPS/content.opf": opf(items, [("p1", True), ("end", True)]),
            "OEBPS/nav.xhtml": xhtml(NAV),
            "OEBPS/text/part 1.xhtml": xhtml(PART_ONE),
            "OEBPS/text/end.xhtml": xhtml('<div id="top"><p>Fin.</p></div>'),
            "OEBPS/style.css": "p { margin: 0 }",
        }
    )


def test_an_epub3_takes_chapters_from_its_nav_and_splits_a_file_at_a_linked_heading() -> None:
    document = _read(epub3_with_nav_and_footnotes())
    assert document.text == (
        "Part One\n\nText with notes, a role ref and a page mark.\n\nChapter 2\n\nSecond chapter text.\n\nFin."
    )
    assert _chapters(document) == [
        ("Part One", "Part One\n\nText with notes, a role ref and a page mark."),
        ("The Second Chapter", "Chapter 2\n\nSecond chapter text."),
        ("The End", "Fin."),
    ]


def test_without_a_toc_each_spine_document_is_a_chapter_titled_by_its_first_heading() -> None:
    items = [("a", "a.xhtml", XHTML_TYPE, ""), ("b", "b.xhtml", XHTML_TYPE, "")]
    data = epub(
        {
            "OEBPS/content.opf": opf(items, [("a", True), ("b", True)]),
            "OEBPS/a.xhtml": xhtml("<p>Epigraph.</p><h2>Chapter 1</h2><p>One.</p>"),
            "OEBPS/b.xhtml": xhtml("<h3>Chapter 2</h3><p>Two.</p>"),
        }
    )
    assert _chapters(_read(data)) == [
        ("Chapter 1", "Epigraph.\n\nChapter 1\n\nOne."),
        ("Chapter 2", "Chapter 2\n\nTwo."),
    ]


def test_a_package_file_at_the_archive_root_and_a_cp1252_document_are_read() -> None:
    items = [("a", "a.html", "text/html", "")]
    body = "<html><head><meta charset='windows-1252'></head><body><p>\x93Hi\x94 \x97 caf\xe9</p></body></html>"
    data = epub(
        {"book.opf": opf(items, [("a", True)]), "a.html": body.encode("latin-1")},
        opf_path="book.opf",
    )
    assert _read(data).text == "“Hi” — café"


# --- malformed EPUBs ---------------------------------------------------------------


def test_a_file_that_is_not_a_zip_is_not_a_valid_epub() -> None:
    with pytest.raises(InputError, match=r"^book\.epub: not a valid EPUB \(not a zip archive\)$"):
        ingest_bytes(b"just some text", "book.epub")


def test_a_zip_without_container_xml_is_not_a_valid_epub() -> None:
    with pytest.raises(
        InputError, match=r"^book\.epub: not a valid EPUB \(no META-INF/container\.xml\)$"
    ):
        ingest_bytes(zip_bytes({"OEBPS/a.xhtml": xhtml("<p>x</p>")}), "book.epub")


def test_a_missing_package_file_is_named() -> None:
    with pytest.raises(
        InputError, match=r"not a valid EPUB \(the package file OEBPS/content\.opf is missing"
    ):
        ingest_bytes(epub({}), "book.epub")


def test_a_spine_document_missing_from_the_archive_is_named() -> None:
    items = [("a", "a.xhtml", XHTML_TYPE, "")]
    with pytest.raises(
        InputError, match=r"spine document OEBPS/a\.xhtml is missing from the archive"
    ):
        ingest_bytes(epub({"OEBPS/content.opf": opf(items, [("a", True)])}), "book.epub")


def test_a_spine_entry_the_manifest_does_not_list_is_named() -> None:
    data = epub({"OEBPS/content.opf": opf([], [("ghost", True)])})
    with pytest.raises(InputError, match=r"refers to 'ghost', which the manifest does not list"):
        ingest_bytes(data, "book.epub")


def test_malformed_package_xml_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"OEBPS/content\.opf is not well-formed XML"):
        ingest_bytes(epub({"OEBPS/content.opf": "<package><manifest>"}), "book.epub")


def test_an_epub_with_no_text_has_nothing_to_speak() -> None:
    items = [("a", "a.xhtml", XHTML_TYPE, "")]
    data = epub(
        {
            "OEBPS/content.opf": opf(items, [("a", True)]),
            "OEBPS/a.xhtml": xhtml("<img src='x.png'/>"),
        }
    )
    with pytest.raises(InputError, match="nothing to speak"):
        ingest_bytes(data, "book.epub")


# --- hostile EPUBs -----------------------------------------------------------------


def _valid_members() -> dict[str, str | bytes]:
    items = [("a", "a.xhtml", XHTML_TYPE, "")]
    return {"OEBPS/content.opf": opf(items, [("a", True)]), "OEBPS/a.xhtml": xhtml("<p>Hello.</p>")}


@pytest.mark.parametrize(
    "name", ["../evil.sh", "OEBPS/../../evil", "/etc/cron.d/evil", "C:/evil.txt", "a\\..\\..\\evil"]
)
def test_entries_outside_the_archive_are_refused(name: str) -> None:
    data = epub({**_valid_members(), name: "evil"})
    with pytest.raises(
        UnsafeInputError, match=r"^book\.epub: refused: it holds a file outside the book"
    ):
        ingest_bytes(data, "book.epub")


def test_a_zip_bomb_is_refused_by_its_compression_ratio() -> None:
    data = epub({**_valid_members(), "OEBPS/bomb.xhtml": b"\0" * (20 * 1024 * 1024)})
    with pytest.raises(
        UnsafeInputError, match=r"^book\.epub: refused: 'OEBPS/bomb\.xhtml' expands \d+ times"
    ):
        ingest_bytes(data, "book.epub")


def test_an_archive_declaring_too_many_bytes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 1000)
    data = epub({**_valid_members(), "OEBPS/big.txt": bytes(range(256)) * 8})
    with pytest.raises(
        UnsafeInputError, match=r"^book\.epub: refused: it unpacks to \d+ bytes, more than 1000"
    ):
        ingest_bytes(data, "book.epub")


def _understate_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite the uncompressed size a zip declares for ``member``, in both headers."""
    patched = bytearray(data)
    encoded = member.encode()
    local = patched.find(b"PK\x03\x04")
    while local >= 0:
        name_length = struct.unpack_from("<H", patched, local + 26)[0]
        if patched[local + 30 : local + 30 + name_length] == encoded:
            struct.pack_into("<I", patched, local + 22, size)
        local = patched.find(b"PK\x03\x04", local + 4)
    central = patched.find(b"PK\x01\x02")
    while central >= 0:
        name_length = struct.unpack_from("<H", patched, central + 28)[0]
        if patched[central + 46 : central + 46 + name_length] == encoded:
            struct.pack_into("<I", patched, central + 24, size)
        central = patched.find(b"PK\x01\x02", central + 4)
    return bytes(patched)


def test_a_member_whose_header_understates_its_size_is_not_trusted() -> None:
    items = [("a", "a.xhtml", XHTML_TYPE, "")]
    big = xhtml("<p>" + "Hello. " * 400_000 + "</p>")
    data = epub({"OEBPS/content.opf": opf(items, [("a", True)]), "OEBPS/a.xhtml": big})
    with pytest.raises(InputError, match=r"OEBPS/a\.xhtml cannot be unpacked"):
        ingest_bytes(_understate_size(data, "OEBPS/a.xhtml", 1000), "book.epub")


def test_reading_stops_at_the_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    data = epub(_valid_members())
    budget = len(CONTAINER.format(opf="OEBPS/content.opf")) + 10
    original = archive.Archive.__init__

    def with_small_budget(self: archive.Archive, data: bytes, source_name: str) -> None:
        original(self, data, source_name)
        self._budget = budget

    monkeypatch.setattr(archive.Archive, "__init__", with_small_budget)
    with pytest.raises(UnsafeInputError, match=r"^book\.epub: refused: it unpacks to more than"):
        ingest_bytes(data, "book.epub")


EXTERNAL = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">'
        for n in range(1, 10)
    )
    + "]>"
)


@pytest.mark.parametrize("prolog", [EXTERNAL, LAUGHS], ids=["external-entity", "billion-laughs"])
@pytest.mark.parametrize("target", ["container", "opf", "ncx"])
def test_xml_entity_tricks_in_the_package_are_refused(prolog: str, target: str) -> None:
    reference = "&lol9;" if prolog is LAUGHS else "&e;"
    items = [("a", "a.xhtml", XHTML_TYPE, ""), ("ncx", "toc.ncx", "application/x-dtbncx+xml", "")]
    package = opf(items, [("a", True)], toc="ncx")
    table = ncx(nav_point(f"Chapter {reference}", "a.xhtml"))
    container = CONTAINER.format(opf="OEBPS/content.opf")
    if target == "container":
        container = prolog + container.split("?>", 1)[1].replace(
            "version=", f'x="{reference}" version='
        )
    elif target == "opf":
        package = prolog + package.split("?>", 1)[1].replace("The Book", reference)
    else:
        table = prolog + table.split("?>", 1)[1]
    data = zip_bytes(
        {
            "META-INF/container.xml": container,
            "OEBPS/content.opf": package,
            "OEBPS/toc.ncx": table,
            "OEBPS/a.xhtml": xhtml("<p>Hello.</p>"),
        }
    )
    with pytest.raises(UnsafeInputError, match=r"^book\.epub: refused: .* declares XML entities"):
        ingest_bytes(data, "book.epub")


@pytest.mark.parametrize("prolog", [EXTERNAL, LAUGHS], ids=["external-entity", "billion-laughs"])
def test_xml_entity_tricks_in_a_content_document_are_refused(prolog: str) -> None:
    members = _valid_members()
    members["OEBPS/a.xhtml"] = (
        prolog + '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&e;&lol9;</p></body></html>'
    )
    with pytest.raises(
        UnsafeInputError, match=r"^book\.epub: OEBPS/a\.xhtml: refused: it declares XML entities"
    ):
        ingest_bytes(epub(members), "book.epub")


def test_a_manifest_href_climbing_out_of_the_book_is_refused() -> None:
    items = [("a", "../../etc/passwd", XHTML_TYPE, "")]
    with pytest.raises(UnsafeInputError, match=r"points outside the book"):
        ingest_bytes(epub({"OEBPS/content.opf": opf(items, [("a", True)])}), "book.epub")
