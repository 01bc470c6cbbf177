"""HTML and XHTML: the visible text, paragraphs from blocks, h1–h3 as chapters."""

from __future__ import annotations

import pytest

from scheduler.ingest import ingest_bytes
from tests.scheduler.test_ingest_properties import assert_contract
from ttsbatch.errors import InputError, UnsafeInputError
from ttsbatch.models import Document


def _html(body: str, head: str = "<title>Page</title>") -> Document:
    document = ingest_bytes(
        f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>".encode(), "page.html"
    )
    assert_contract(document)
    return document


def test_page_chrome_and_hidden_elements_are_not_spoken() -> None:
    body = """
    <header><nav><a href="/">Home</a></nav><p>Site name</p></header>
    <script>var x = "script";</script><style>p { color: red }</style>
    <noscript>Enable JS</noscript><template><p>Template</p></template>
    <svg><text>Vector</text></svg>
    <main><p>Visible <span aria-hidden="true">decoration</span>text.</p>
    <p hidden>Hidden paragraph.</p><p style="display: none">Styled away.</p>
    <img src="x.png" alt="An image">
    </main>
    <footer role="contentinfo"><p>Copyright</p></footer>
    """
    assert _html(body).text == "Visible text."


def test_a_header_holding_the_article_title_is_kept() -> None:
    body = "<article><header><h1>Title</h1></header><p>Text.</p><footer>Posted today.</footer></article>"
    assert _html(body).text == "Title\n\nText.\n\nPosted today."


def test_blocks_become_paragraphs_and_inline_text_joins() -> None:
    body = """<div>Loose text<p>A <b>bold</b><i>ly</i> joined
    sentence.<br>Line two.</p>tail text</div>
    <ul><li>One</li><li>Two</li></ul><blockquote>Quoted.</blockquote>
    <table><tr><th>Name</th><td>Ann</td></tr></table><pre>  pre
    text </pre><ruby>漢<rt>kan</rt></ruby>"""
    assert _html(body).text.split("\n\n") == [
        "Loose text",
        "A boldly joined sentence. Line two.",
        "tail text",
        "One",
        "Two",
        "Quoted.",
        "Name",
        "Ann",
        "pre text",
        "漢",
    ]


def test_h1_to_h3_start_chapters_and_h4_does_not() -> None:
    body = (
        "<p>Front.</p><h1>Part</h1><p>Intro.</p><h2>Chapter 1</h2><p>One.</p>"
        "<h4>Aside heading</h4><p>Still one.</p><h3>Section</h3><p>Three.</p>"
    )
    document = _html(body)
    assert [c.title for c in document.chapters] == ["Part", "Chapter 1", "Section"]
    chapter = document.chapters[1]
    assert document.text[chapter.char_start : chapter.char_end] == (
        "Chapter 1\n\nOne.\n\nAside heading\n\nStill one."
    )


def test_footnote_marks_and_bodies_are_not_spoken() -> None:
    body = """
    <p>Claim<sup><a href="#n1">1</a></sup>, another<sup>2</sup>, a third<a href="#n3" class="fn">[3]</a>,
    noteref<a epub:type="noteref" href="#n4">4</a>, role<a role="doc-noteref" href="#n5">5</a>,
    and M<sup>r</sup> Darcy.</p>
    <aside id="n1"><p>Footnote one.</p></aside>
    <div epub:type="footnote"><p>Footnote body.</p></div>
    <section role="doc-endnotes"><ol><li>Endnote.</li></ol></section>
    <p role="doc-footnote">Role footnote.</p>
    <span epub:type="pagebreak" title="12">12</span>
    """
    assert _html(body).text == "Claim, another, a third, noteref, role, and Mr Darcy."


def test_entities_are_decoded_but_an_entity_declaration_is_refused() -> None:
    assert (
        _html("<p>Fish &amp; chips&nbsp;&mdash; &#8220;ok&#8221;</p>").text == "Fish & chips — “ok”"
    )
    data = (
        b'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<html><body><p>&e;</p></body></html>"
    )
    with pytest.raises(UnsafeInputError, match=r"^evil\.xhtml: refused: it declares XML entities"):
        ingest_bytes(data, "evil.xhtml")


def test_an_unknown_entity_reference_is_left_as_text_never_resolved() -> None:
    data = b'<!DOCTYPE html SYSTEM "http://127.0.0.1:9/never.dtd"><html><body><p>Tom &e; Jerry</p></body></html>'
    assert ingest_bytes(data, "page.html").text == "Tom &e; Jerry"


def test_xhtml_with_an_encoding_declaration_and_self_closing_tags_is_read() -> None:
    data = (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>T</title></head>'
        '<body><h1 id="c1">Chapter One</h1><p>Café<a id="p2"/> au lait.</p><div/><p>Next.</p></body></html>'
    ).encode()
    document = ingest_bytes(data, "chapter.xhtml")
    assert document.text == "Chapter One\n\nCafé au lait.\n\nNext."
    assert [c.title for c in document.chapters] == ["Chapter One"]


@pytest.mark.parametrize(
    ("head", "encoding"),
    [
        ('<meta charset="windows-1252">', "cp1252"),
        ('<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">', "cp1252"),
        ("", "cp1252"),
        ('<meta charset="utf-8">', "utf-8"),
    ],
)
def test_the_declared_or_detected_charset_decodes_html(head: str, encoding: str) -> None:
    data = f"<html><head>{head}</head><body><p>“Quoted” café — done</p></body></html>".encode(
        encoding
    )
    assert ingest_bytes(data, "page.htm").text == "“Quoted” café — done"


def test_a_page_with_no_visible_text_has_nothing_to_speak() -> None:
    with pytest.raises(InputError, match=r"^page\.html: no readable text found"):
        _html("<script>only()</script><img src='x.png' alt='pic'>")


def test_a_paragraph_longer_than_libxml2s_text_limit_is_kept_whole() -> None:
    words = "word " * 2_500_000  # 12.5 MB in one text node
    document = ingest_bytes(
        f"<html><body><p>{words}</p><p>End.</p></body></html>".encode(), "big.html"
    )
    assert document.text == words.strip() + "\n\nEnd."


def test_control_characters_in_html_are_dropped_not_spoken() -> None:
    data = b"<html><head><meta charset='utf-8'></head><body><p>a\x00b\x01c</p></body></html>"
    assert ingest_bytes(data, "page.html").text == "abc"


def test_html_nested_deeper_than_the_parser_allows_is_an_error_not_lost_text() -> None:
    data = (
        b"<html><body><p>x</p>" + b"<div>" * 3000 + b"deep" + b"</div>" * 3000 + b"</body></html>"
    )
    with pytest.raises(InputError, match=r"^deep\.html: cannot be read: its elements nest deeper"):
        ingest_bytes(data, "deep.html")
