"""EPUB 2 and 3: the spine's documents in reading order, chapters from the TOC.

Each spine document with text starts at least one chapter. Its title is the
table-of-contents entry that points to it, else its first heading, else the
start of its first paragraph (``<title>`` is not used: many books repeat the
book's title in every file). A top-level table-of-contents entry pointing into
the middle of a document starts another chapter there when it lands on a
heading; nested entries are sections inside their chapter. Consecutive
entries that hold only headings (a title page listed line by line) are one
chapter. Documents marked ``linear="no"`` (pop-up notes, covers) are read only
when the linear ones hold no text at all.

Project Gutenberg's books are read as their plain text is: without the
licence header and footer (marked up as such, or found by their markers),
without the notes Gutenberg adds (transcriber's notes, "there is an
illustrated edition of this title…"), unless ``keep_boilerplate``.
Contents lists are never read (see :mod:`.html`).

The book's metadata and cover come from its package (see :mod:`.metadata`);
the cover is read after the text, so that the text has the archive's byte
budget first.
"""

from __future__ import annotations

import re
from collections import defaultdict

from .archive import Archive
from .decoding import decode_markup
from .gutenberg import is_editions_note, licence_bounds
from .html import Extraction, extract
from .metadata import Book, read_cover
from .navigation import Entry, chapter_entries
from .normalise import Block
from .package import Package, read_package

_TITLE_CHARS = 80
# Gutenberg's notes on how its edition was made, not part of the book.
_PRODUCTION_NOTES = re.compile(r"(?:original\s+)?transcriber[’']?s?\s+notes?\b", re.IGNORECASE)


def read_epub(data: bytes, source_name: str, *, keep_boilerplate: bool = False) -> Book:
    """Extract the paragraphs, chapters, metadata and cover of an EPUB.

    Args:
        data: The EPUB file.
        source_name: Names the input in errors.
        keep_boilerplate: Keep Project Gutenberg's licence and production notes.

    Raises:
        InputError: When the EPUB is malformed or misses a part it names.
        UnsafeInputError: When the archive or its XML is hostile.
    """
    archive = Archive(data, source_name)
    package = read_package(archive, source_name)
    blocks, starts = _read_text(archive, package, source_name, keep_boilerplate=keep_boilerplate)
    cover = read_cover(archive, *package.cover) if package.cover else None
    return Book(blocks, starts, info=package.info, cover=cover)


def _read_text(
    archive: Archive, package: Package, source_name: str, *, keep_boilerplate: bool
) -> tuple[list[Block], list[tuple[int, str]]]:
    entries: defaultdict[str, list[Entry]] = defaultdict(list)
    for entry in chapter_entries(archive, package, source_name):
        entries[entry.path].append(entry)
    has_toc = bool(entries)
    linear = list(dict.fromkeys(path for path, is_linear in package.spine if is_linear))
    auxiliary = list(dict.fromkeys(path for path, is_linear in package.spine if not is_linear))
    blocks: list[Block] = []
    starts: list[tuple[int, str]] = []
    for paths in (linear, auxiliary):
        for path in paths:
            name = f"{source_name}: {path}"
            markup = decode_markup(archive.read(path, "spine document"), name)
            extraction = extract(markup, name, keep_boilerplate=keep_boilerplate)
            # With a table of contents, a document it does not list that opens
            # without a heading is the rest of the chapter before (Gutenberg
            # splits long chapters into files by size).
            opens = not starts or not has_toc
            for index, title in _chapters(extraction, entries[path], opens_chapter=opens):
                starts.append((len(blocks) + index, title))
            blocks.extend(extraction.blocks)
        if blocks:
            break
    if keep_boilerplate:
        return blocks, starts
    begin, end = licence_bounds([paragraph.text for paragraph in blocks])
    kept = [begin <= n < end and not is_editions_note(b.text) for n, b in enumerate(blocks)]
    for number, (index, title) in enumerate(starts):
        if _PRODUCTION_NOTES.match(title):
            following = starts[number + 1][0] if number + 1 < len(starts) else len(blocks)
            kept[index:following] = [False] * (following - index)
    return _keep(blocks, starts, kept)


def _keep(
    blocks: list[Block], starts: list[tuple[int, str]], kept: list[bool]
) -> tuple[list[Block], list[tuple[int, str]]]:
    """Return the ``kept`` blocks; a chapter starts at its first kept block, or is gone."""
    new_index: list[int] = []
    count = 0
    for keep in kept:
        new_index.append(count)
        count += keep
    new_starts: list[tuple[int, str]] = []
    for number, (index, title) in enumerate(starts):
        following = starts[number + 1][0] if number + 1 < len(starts) else len(blocks)
        first = next((n for n in range(index, following) if kept[n]), None)
        if first is not None:
            new_starts.append((new_index[first], title))
    return [b for b, keep in zip(blocks, kept, strict=True) if keep], new_starts


def _chapters(
    extraction: Extraction, entries: list[Entry], *, opens_chapter: bool
) -> list[tuple[int, str]]:
    blocks = extraction.blocks
    if not blocks:
        return []
    titles: dict[int, str | None] = {0: None} if opens_chapter or blocks[0].level else {}
    for entry in entries:
        if entry.depth or entry.fragment in extraction.unspoken:
            continue
        index = extraction.anchors.get(entry.fragment) if entry.fragment else 0
        if index is None or index >= len(blocks):
            continue
        # A link into the middle of a paragraph is a page mark or a note, not a chapter.
        if index > 0 and not blocks[index].level:
            continue
        if titles.get(index) is None:
            titles[index] = entry.title
    indices = sorted(titles)
    chapters: list[tuple[int, str]] = []
    only_headings = False
    for number, index in enumerate(indices):
        end = indices[number + 1] if number + 1 < len(indices) else len(blocks)
        title = titles[index] or _fallback_title(extraction, index, end)
        headings = all(paragraph.level for paragraph in blocks[index:end])
        if only_headings and headings:
            # One title page, listed line by line ("Frankenstein;", "or, the Modern Prometheus").
            chapters[-1] = (chapters[-1][0], f"{chapters[-1][1]} {title}")
        else:
            chapters.append((index, title))
        only_headings = headings
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
