"""Project Gutenberg EPUBs: the book's chapters, without its licence, notes or contents lists.

Generated fixtures copy the structure of Gutenberg's two generations of
EPUBs (today's ebookmaker 0.13 files with ``pg-header``/``pg-footer`` sections
and an EPUB 2 NCX; the older files with the licence in a ``<pre>`` and only
its markers to find it by) and of an EPUB 3 with a nested navigation document.
The real books in ``../shared/corpus/`` are read too when the folder is there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.ingest import ingest_bytes, ingest_file
from tests.scheduler.test_ingest_epub import XHTML_TYPE, epub, nav_point, ncx, opf, xhtml
from tests.scheduler.test_ingest_properties import assert_contract
from ttsbatch.models import Document

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
LICENCE = "Project Gutenberg"
STORY = "It was a dark and stormy night; the rain fell in torrents."

PG_HEADER = """<div class="pg-boilerplate pgheader section" id="pg-header">
<h2 id="pg-header-heading">The Project Gutenberg eBook of <span>The Tale</span></h2>
<div>This ebook is for the use of anyone anywhere in the United States and most other
parts of the world at no cost. <a href="https://www.gutenberg.org">www.gutenberg.org</a>.</div>
<div class="container" id="pg-machine-header"><p><strong>Title</strong>: The Tale</p>
<p><strong>Release date</strong>: May 1, 2000 [eBook #99999]</p></div>
<div id="pg-start-separator"><span>*** START OF THE PROJECT GUTENBERG EBOOK THE TALE ***</span></div>
</div>"""
PG_FOOTER = """<div class="pg-boilerplate pgheader section" id="pg-footer">
<div id="pg-end-separator"><span>*** END OF THE PROJECT GUTENBERG EBOOK THE TALE ***</span></div>
<h2 id="pg-footer-heading">THE FULL PROJECT GUTENBERG LICENSE</h2>
<p>To protect the Project Gutenberg mission of promoting the free distribution of
electronic works, by using or distributing this work you agree to comply.</p></div>"""


def _read(data: bytes, *, keep_boilerplate: bool = False) -> Document:
    document = ingest_bytes(data, "tale.epub", keep_boilerplate=keep_boilerplate)
    assert_contract(document, titles_from_text=False)
    return document


def _titles(document: Document) -> list[str]:
    return [chapter.title for chapter in document.chapters]


def _contents_table(targets: list[tuple[str, str]]) -> str:
    rows = "".join(
        f'<tr><td>{number}.</td><td><a href="{href}" class="pginternal">{title}</a></td></tr>'
        for number, (title, href) in enumerate(targets, 1)
    )
    return f'<h2 id="toc">Contents</h2><table class="autotable">{rows}</table>'


def new_gutenberg_epub() -> bytes:
    """Today's layout: licence sections, a title in two TOC entries, a contents table, nested parts."""
    stories = [
        ("A Scandal", "story-1.xhtml#s1"),
        ("The League", "story-2.xhtml#s2"),
        ("The Licence", "footer.xhtml"),
    ]
    points = (
        nav_point("The Tale;", "front.xhtml#t1")
        + nav_point("or, a Subtitle", "front.xhtml#t2")
        + nav_point("Contents", "front.xhtml#toc")
        + nav_point(
            "I. A SCANDAL",
            "story-1.xhtml#s1",
            nav_point("I.", "story-1.xhtml#p1") + nav_point("II.", "story-1.xhtml#p2"),
        )
        + nav_point("II. THE LEAGUE", "story-2.xhtml#s2")
        + nav_point("THE FULL PROJECT GUTENBERG LICENSE", "footer.xhtml#pg-footer-heading")
    )
    names = ["cover", "front", "story-1", "story-2", "footer"]
    items = [(name, f"{name}.xhtml", XHTML_TYPE, "") for name in names]
    items.append(("ncx", "toc.ncx", "application/x-dtbncx+xml", ""))
    front = (
        PG_HEADER
        + "<table><tr><td>THERE IS AN ILLUSTRATED EDITION OF THIS TITLE WHICH MAY VIEWED AT "
        '<a href="https://www.gutenberg.org/ebooks/1">EBOOK [#1]</a></td></tr></table>'
        + '<h1 id="t1">The Tale;</h1><h3 id="t2">or, a Subtitle</h3><h2>by A. Writer</h2>'
        + _contents_table(stories)
    )
    story_one = (
        '<div class="chapter"><h2 id="s1">I. A SCANDAL</h2>'
        f'<h3 id="p1">I.</h3><p>{STORY}</p><h3 id="p2">II.</h3><p>The second part.</p></div>'
    )
    return epub(
        {
            "OEBPS/content.opf": opf(items, [(name, True) for name in names], toc="ncx"),
            "OEBPS/toc.ncx": ncx(points),
            "OEBPS/cover.xhtml": xhtml('<div><img src="cover.jpg" alt=""/></div>'),
            "OEBPS/front.xhtml": xhtml(front),
            "OEBPS/story-1.xhtml": xhtml(story_one),
            "OEBPS/story-2.xhtml": xhtml('<h2 id="s2">II. THE LEAGUE</h2><p>Red hair.</p>'),
            "OEBPS/footer.xhtml": xhtml(PG_FOOTER),
        }
    )


def old_gutenberg_epub() -> bytes:
    """The older layout: the licence in a <pre> and paragraphs, found by its markers only."""
    header = (
        "<pre>The Project Gutenberg EBook of The Tale, by A. Writer\n\nThis eBook is for the use "
        "of anyone anywhere at no cost.\n\nTitle: The Tale\n\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK THE TALE ***\n</pre>"
    )
    contents = '<p class="toc"><b>CONTENTS</b></p>' + "".join(
        f'<p class="toc"><a href="{href}">{title}</a></p>'
        for title, href in [
            ("CHAPTER I.", "ch1.xhtml#c1"),
            ("CHAPTER II.", "ch2.xhtml#c2"),
            ("CHAPTER III.", "ch2.xhtml#c3"),
            ("List of Illustrations", "ch1.xhtml#ill"),
        ]
    )
    front = (
        f'{header}<h1 id="title">THE TALE</h1><h2>By A. Writer</h2><blockquote><div>{contents}</div></blockquote>'
        '<h4 id="notes">Transcriber’s Notes:</h4><p>Obvious typographical errors were corrected.</p>'
    )
    footer = (
        "<p>End of the Project Gutenberg EBook of The Tale, by A. Writer</p>"
        "<pre>*** END OF THIS PROJECT GUTENBERG EBOOK THE TALE ***\n\n"
        "Updated editions will replace the previous one.</pre>"
    )
    points = (
        nav_point("THE TALE", "front.xhtml#title")
        + nav_point("Transcriber’s Notes", "front.xhtml#notes")
        + nav_point("CHAPTER I.", "ch1.xhtml#c1")
        + nav_point("CHAPTER II.", "ch2.xhtml#c2")
        + nav_point("CHAPTER III.", "ch2.xhtml#c3")
    )
    names = ["front", "ch1", "ch2", "end"]
    items = [(name, f"{name}.xhtml", XHTML_TYPE, "") for name in names]
    items.append(("ncx", "toc.ncx", "application/x-dtbncx+xml", ""))
    return epub(
        {
            "OEBPS/content.opf": opf(
                items, [(name, True) for name in names], toc="ncx", version="2.0"
            ),
            "OEBPS/toc.ncx": ncx(points),
            "OEBPS/front.xhtml": xhtml(front),
            "OEBPS/ch1.xhtml": xhtml(f'<h2 id="c1">CHAPTER I.</h2><p>{STORY}</p>'),
            "OEBPS/ch2.xhtml": xhtml(
                '<h2 id="c2">CHAPTER II.</h2><p>Two.</p><h2 id="c3">CHAPTER III.</h2><p>Three.</p>'
                f"{footer}"
            ),
            "OEBPS/end.xhtml": xhtml("<p>The license goes on at length here.</p>"),
        }
    )


def nested_nav_epub() -> bytes:
    """An EPUB 3: nested nav, a contents page and a list of illustrations in the spine."""
    nav = """<nav epub:type="toc"><ol>
<li><a href="text/toc.xhtml">Contents</a></li>
<li><a href="text/one.xhtml">One</a><ol><li><a href="text/one.xhtml#a">Part A</a></li>
<li><a href="text/one.xhtml#b">Part B</a></li></ol></li>
<li><a href="text/two.xhtml">Two</a></li></ol></nav>"""
    toc_page = (
        '<section epub:type="toc"><h1>Table of Contents</h1><p><a href="one.xhtml">One</a></p></section>'
        '<section epub:type="loi"><h1>Illustrations</h1><p>Frontispiece, page 3</p></section>'
    )
    one = f'<h1>One</h1><h2 id="a">Part A</h2><p>{STORY}</p><h2 id="b">Part B</h2><p>B text.</p>'
    names = ["toc", "one", "two"]
    items = [(name, f"text/{name}.xhtml", XHTML_TYPE, "") for name in names]
    items.append(("nav", "nav.xhtml", XHTML_TYPE, "nav"))
    return epub(
        {
            "OEBPS/content.opf": opf(items, [(name, True) for name in names]),
            "OEBPS/nav.xhtml": xhtml(nav),
            "OEBPS/text/toc.xhtml": xhtml(toc_page),
            "OEBPS/text/one.xhtml": xhtml(one),
            "OEBPS/text/two.xhtml": xhtml("<h1>Two</h1><p>Second text.</p>"),
        }
    )


def test_a_new_gutenberg_epub_reads_only_the_book_with_its_top_level_chapters() -> None:
    document = _read(new_gutenberg_epub())
    assert _titles(document) == ["The Tale; or, a Subtitle", "I. A SCANDAL", "II. THE LEAGUE"]
    assert LICENCE not in document.text
    assert "ILLUSTRATED EDITION" not in document.text
    assert "Contents" not in document.text
    assert document.text.startswith("The Tale;\n\nor, a Subtitle\n\nby A. Writer\n\nI. A SCANDAL")
    first_story = document.chapters[1]
    assert document.text[first_story.char_start : first_story.char_end] == (
        f"I. A SCANDAL\n\nI.\n\n{STORY}\n\nII.\n\nThe second part."
    )


def test_keep_boilerplate_keeps_the_gutenberg_licence_of_an_epub() -> None:
    document = _read(new_gutenberg_epub(), keep_boilerplate=True)
    assert document.text.startswith("The Project Gutenberg eBook of The Tale")
    assert "THE FULL PROJECT GUTENBERG LICENSE" in document.text
    assert "Contents" not in document.text  # a contents list is never spoken


def test_an_old_gutenberg_epub_loses_its_licence_notes_and_contents_by_their_markers() -> None:
    document = _read(old_gutenberg_epub())
    assert _titles(document) == ["THE TALE", "CHAPTER I.", "CHAPTER II.", "CHAPTER III."]
    assert document.text == (
        f"THE TALE\n\nBy A. Writer\n\nCHAPTER I.\n\n{STORY}\n\n"
        "CHAPTER II.\n\nTwo.\n\nCHAPTER III.\n\nThree."
    )


def test_nested_nav_entries_stay_inside_their_chapter_and_lists_are_not_read() -> None:
    document = _read(nested_nav_epub())
    assert _titles(document) == ["One", "Two"]
    assert document.text == f"One\n\nPart A\n\n{STORY}\n\nPart B\n\nB text.\n\nTwo\n\nSecond text."


def test_a_toc_with_a_single_root_entry_is_read_from_the_level_below() -> None:
    points = nav_point(
        "The Book",
        "a.xhtml",
        nav_point("Chapter 1", "a.xhtml#c1") + nav_point("Chapter 2", "b.xhtml#c2"),
    )
    items = [
        ("a", "a.xhtml", XHTML_TYPE, ""),
        ("b", "b.xhtml", XHTML_TYPE, ""),
        ("ncx", "toc.ncx", "application/x-dtbncx+xml", ""),
    ]
    data = epub(
        {
            "OEBPS/content.opf": opf(items, [("a", True), ("b", True)], toc="ncx"),
            "OEBPS/toc.ncx": ncx(points),
            "OEBPS/a.xhtml": xhtml('<h2 id="c1">Chapter 1</h2><p>One.</p>'),
            "OEBPS/b.xhtml": xhtml('<h2 id="c2">Chapter 2</h2><p>Two.</p>'),
        }
    )
    assert _titles(_read(data)) == ["Chapter 1", "Chapter 2"]


def test_a_paragraph_with_a_few_links_is_still_read() -> None:
    body = (
        '<h1 id="c1">Chapter 1</h1><p>See <a href="b.xhtml">one</a>, <a href="b.xhtml#x">two</a> '
        'and <a href="b.xhtml#y">three</a> notes, said the narrator, who had a great deal more to '
        "say about the matter than anyone had expected.</p>"
    )
    items = [("a", "a.xhtml", XHTML_TYPE, "")]
    data = epub({"OEBPS/content.opf": opf(items, [("a", True)]), "OEBPS/a.xhtml": xhtml(body)})
    assert "said the narrator" in _read(data).text


# --- the shared Gutenberg books -------------------------------------------------------------

EXPECTED = {
    "frankenstein.epub": (
        ["Letter 1", "Letter 2", "Letter 3", "Letter 4"] + [f"Chapter {n}" for n in range(1, 25)]
    ),
    "sherlock-holmes.epub": [
        "I. A SCANDAL IN BOHEMIA",
        "II. THE RED-HEADED LEAGUE",
        "III. A CASE OF IDENTITY",
        "IV. THE BOSCOMBE VALLEY MYSTERY",
        "V. THE FIVE ORANGE PIPS",
        "VI. THE MAN WITH THE TWISTED LIP",
        "VII. THE ADVENTURE OF THE BLUE CARBUNCLE",
        "VIII. THE ADVENTURE OF THE SPECKLED BAND",
        "IX. THE ADVENTURE OF THE ENGINEER’S THUMB",
        "X. THE ADVENTURE OF THE NOBLE BACHELOR",
        "XI. THE ADVENTURE OF THE BERYL CORONET",
        "XII. THE ADVENTURE OF THE COPPER BEECHES",
    ],
}


@pytest.mark.parametrize("name", ["frankenstein.epub", "sherlock-holmes.epub", "moby-dick.epub"])
def test_a_shared_gutenberg_epub_has_the_chapters_of_the_book_and_nothing_else(name: str) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared corpus sits beside CI's clone only)")
    document = ingest_file(path)
    assert_contract(document, titles_from_text=False)
    titles = _titles(document)
    # A title section before the book's chapters is allowed; nothing else is.
    body = titles[1:]
    if name == "moby-dick.epub":
        assert body[:2] == ["ETYMOLOGY.", "EXTRACTS. (Supplied by a Sub-Sub-Librarian)."]
        assert len(body) == 2 + 135 + 1
        assert body[2] == "CHAPTER 1. Loomings." and body[-1] == "Epilogue"
        assert all(title.startswith("CHAPTER ") for title in body[2:-1])
    else:
        assert body == EXPECTED[name]
    assert "Gutenberg" not in document.text
    assert "CONTENTS" not in document.text.upper().split("\n\n")
    # The first paragraph of the first chapter is not a list of the others.
    assert document.text.count(body[1]) == 1
