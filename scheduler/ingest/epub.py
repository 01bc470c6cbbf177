"""EPUB 2 and 3: the spine's documents in reading order, chapters from the TOC.

Each spine document with text starts at least one chapter. Its title is the
table-of-contents entry that points to it, else its first heading, else the
start of its first paragraph (``<title>`` is not used: many books repeat the
book's title in every file). A table-of-contents entry
pointing into the middle of a document starts another chapter there when it
lands on a heading. Documents marked ``linear="no"`` (pop-up notes, covers)
are read only when the linear ones hold no text at all.
"""

from __future__ import annotations

from collections import defaultdict

from .archive import Archive
from .decoding import decode_markup
from .html import Extraction, extract
from .navigation import Entry, chapter_entries
from .normalise import Block
from .package import read_package

_TITLE_CHARS = 80


def read_epub(data: bytes, source_name: str) -> tuple[list[Block], list[tuple[int, str]]]:
    """Extract the paragraphs and chapters of an EPUB.

    Raises:
        InputError: When the EPUB is malformed or misses a part it names.
        UnsafeInputError: When the archive or its XML is hostile.
    """
    archive = Archive(data, source_name)
    package = read_package(archive, source_name)
    entries: defaultdict[str, list[Entry]] = defaultdict(list)
    for entry in chapter_entries(archive, package, source_name):
        entries[entry.path].append(entry)
    linear = list(dict.fromkeys(path for path, is_linear in package.spine if is_linear))
    auxiliary = list(dict.fromkeys(path for path, is_linear in package.spine if not is_linear))
    blocks: list[Block] = []
    starts: list[tuple[int, str]] = []
    for paths in (linear, auxiliary):
        for path in paths:
            name = f"{source_name}: {path}"
            markup = decode_markup(archive.read(path, "spine document"), name)
            extraction = extract(markup, name)
            for index, title in _chapters(extraction, entries[path]):
                starts.append((len(blocks) + index, title))
            blocks.extend(extraction.blocks)
        if blocks:
            break
    return blocks, starts


def _chapters(extraction: Extraction, entries: list[Entry]) -> list[tuple[int, str]]:
    blocks = extraction.blocks
    if not blocks:
        return []
    titles: dict[int, str | None] = {0: None}
    for entry in entries:
        index = extraction.anchors.get(entry.fragment) if entry.fragment else 0
        if index is None or index >= len(blocks):
            continue
        # A link into the middle of a paragraph is a page mark or a note, not a chapter.
        if index > 0 and not blocks[index].level:
            continue
        if titles.get(index) is None:
            titles[index] = entry.title
    indices = sorted(titles)
    chapters = []
    for number, index in enumerate(indices):
        end = indices[number + 1] if number + 1 < len(indices) else len(blocks)
        title = titles[index] or _fallback_title(extraction, index, end)
        chapters.append((index, title))
    return chapters


def _fallback_title(extraction: Extraction, start: int, end: int) -> str:
    heading = next((b.text for b in extraction.blocks[start:end] if b.level), None)
    if heading:
        return heading
    text = extraction.blocks[start].text
    if len(text) <= _TITLE_CHARS:
        return text
    cut = text.rfind(" ", 0, _TITLE_CHARS)
    return text[: cut if cut > 0 else _TITLE_CHARS]
