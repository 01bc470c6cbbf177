"""Markdown: spoken content only, headings as chapters."""

from __future__ import annotations

from scheduler.ingest import ingest_bytes
from tests.scheduler.test_ingest_properties import assert_contract
from ttsbatch.models import Document


def _md(source: str) -> Document:
    document = ingest_bytes(source.encode(), "notes.md")
    assert_contract(document)
    return document


def test_markup_is_not_spoken_but_link_text_is() -> None:
    source = (
        "Some *emphasis*, __strong__, ~~struck~~ and `code` with a [link](https://example.com/x)"
        " and an image ![alt text](pic.png) and <https://example.com/auto> &amp; an \\* escape.\n"
        "A soft\nbreak and a hard  \nbreak.<br>Inline <span>html</span>."
    )
    assert _md(source).text == (
        "Some emphasis, strong, struck and code with a link and an image and & an * escape. "
        "A soft break and a hard break. Inline html."
    )


def test_code_blocks_are_skipped_and_lists_quotes_and_tables_become_paragraphs() -> None:
    source = """Intro.

```python
print("not spoken")
```

    indented code, not spoken

- first item
- second *item*

1. numbered

> A quotation.

| Name | Age |
|------|-----|
| Ann  | 30  |
"""
    assert _md(source).text.split("\n\n") == [
        "Intro.",
        "first item",
        "second item",
        "numbered",
        "A quotation.",
        "Name",
        "Age",
        "Ann",
        "30",
    ]


def test_html_blocks_are_stripped_to_their_text() -> None:
    source = 'Before.\n\n<div class="note">\n<p>Inside <b>html</b>.</p>\n<script>alert(1)</script>\n</div>\n\nAfter.'
    assert _md(source).text == "Before.\n\nInside html.\n\nAfter."


def test_the_shallowest_repeated_heading_level_makes_the_chapters() -> None:
    source = "# The Book\n\n## Chapter 1\n\nOne.\n\n### A section\n\nMore.\n\n## Chapter 2\n\nTwo."
    document = _md(source)
    assert document.text == (
        "The Book\n\nChapter 1\n\nOne.\n\nA section\n\nMore.\n\nChapter 2\n\nTwo."
    )
    assert [(c.title, document.text[c.char_start : c.char_end]) for c in document.chapters] == [
        ("Chapter 1", "Chapter 1\n\nOne.\n\nA section\n\nMore."),
        ("Chapter 2", "Chapter 2\n\nTwo."),
    ]


def test_a_lone_title_with_its_own_text_is_a_chapter_too() -> None:
    source = "# Guide\n\nWelcome.\n\n## Install\n\nRun it.\n\n## Use\n\nUse it."
    assert [c.title for c in _md(source).chapters] == ["Guide", "Install", "Use"]


def test_setext_headings_count_and_a_single_heading_level_is_used_when_none_repeats() -> None:
    source = "Only Title\n==========\n\nSome text.\n\nSub\n---\n\nMore text."
    assert [c.title for c in _md(source).chapters] == ["Only Title"]


def test_yaml_front_matter_is_not_spoken() -> None:
    assert _md("---\ntitle: Secret\nauthor: Me\n---\n\n# Hello\n\nText.").text == "Hello\n\nText."


def test_a_crlf_markdown_file_with_a_bom_reads_the_same() -> None:
    data = "\ufeff# Title\r\n\r\nLine one\r\nline two.\r\n".encode()
    assert ingest_bytes(data, "x.markdown").text == "Title\n\nLine one line two."
