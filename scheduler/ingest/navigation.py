"""An EPUB's table of contents, reduced to the entries that are chapters.

The EPUB 3 navigation document (``<nav epub:type="toc">``) is preferred, the
EPUB 2 NCX ``navMap`` used otherwise. Real books fill these with entries that
are not chapters: page numbers (``"12"`` → ``chapter3.xhtml#page12``) and many
links into one file. Entries that look like page marks are dropped here; the
reader keeps a link into the middle of a file only when it lands on a heading.

Entries keep their depth in the tree: the parts of a story (*The Adventures of
Sherlock Holmes*: "I.", "II.", "III." under "A Scandal in Bohemia") are
sections of their chapter, not chapters. A tree whose top is one entry
holding all the others (the book's title) is read from the level below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

from ttsbatch.errors import UnsafeInputError

from .archive import Archive
from .decoding import decode_markup
from .html import parse, text_of
from .normalise import clean
from .package import Package, resolve
from .safexml import local_name, parse_xml

_PAGE_LABEL = re.compile(r"(?i:p(?:age|g)?\.?\s*)?(?:\d+|[ivxlcdm]+)")
_PAGE_ANCHOR = re.compile(r"(?:page|pg|p)[-_]?(?:\d+|[ivxlcdm]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Entry:
    """One table-of-contents entry: a title and where it points."""

    title: str
    path: str
    fragment: str
    depth: int = 0


def chapter_entries(archive: Archive, package: Package, source_name: str) -> list[Entry]:
    """Return the table of contents' chapter entries in order, without page marks."""
    entries = _from_nav(archive, package.nav, source_name) if package.nav else []
    if not entries and package.ncx:
        entries = _from_ncx(archive, package.ncx, source_name)
    seen: set[tuple[str, str]] = set()
    kept: list[Entry] = []
    for entry in entries:
        where = (entry.path, entry.fragment)
        if entry.title and where not in seen and not _is_page_mark(entry):
            seen.add(where)
            kept.append(entry)
    return _below_a_single_root(kept)


def _below_a_single_root(entries: list[Entry]) -> list[Entry]:
    while len(entries) > 1 and sum(1 for entry in entries if entry.depth == 0) == 1:
        entries = [replace(entry, depth=entry.depth - 1) for entry in entries if entry.depth]
    return entries


def _from_nav(archive: Archive, path: str, source_name: str) -> list[Entry]:
    name = f"{source_name}: {path}"
    root = parse(decode_markup(archive.read(path, "the navigation document"), name), name)
    if root is None:
        return []
    for nav in root.iter("nav"):
        if "toc" in (nav.get("epub:type") or "").split() or nav.get("role") == "doc-toc":
            break
    else:
        return []
    entries = []
    for link in nav.iter("a"):
        # Each <li> around the link, but the outermost, is a level of nesting.
        depth = max(sum(1 for e in link.iterancestors("li")) - 1, 0)
        entry = _entry(path, link.get("href"), text_of(link), source_name, depth)
        if entry:
            entries.append(entry)
    return entries


def _from_ncx(archive: Archive, path: str, source_name: str) -> list[Entry]:
    ncx = parse_xml(archive.read(path, "the NCX table of contents"), path, source_name)
    entries = []
    # Depth first in document order, parts before their chapters.
    stack = [(element, 0) for element in reversed(ncx) if local_name(element) == "navMap"]
    while stack:
        element, depth = stack.pop()
        points = [child for child in element if local_name(child) == "navPoint"]
        stack.extend(
            (point, depth + (local_name(element) == "navPoint")) for point in reversed(points)
        )
        label = element.find("{*}navLabel/{*}text")
        content = element.find("{*}content")
        if local_name(element) != "navPoint" or label is None or content is None:
            continue
        entry = _entry(path, content.get("src"), label.text or "", source_name, depth)
        if entry:
            entries.append(entry)
    return entries


def _entry(base: str, href: str | None, label: str, source_name: str, depth: int) -> Entry | None:
    if not href or urlsplit(href).scheme:
        return None
    try:
        path = resolve(base, href, source_name)
    except UnsafeInputError:
        return None  # a link out of the book is ignored, not followed
    return Entry(clean(label), path, unquote(urlsplit(href).fragment), depth)


def _is_page_mark(entry: Entry) -> bool:
    if not entry.fragment:
        return False  # a whole file is a chapter, even one titled "12"
    return bool(_PAGE_ANCHOR.fullmatch(entry.fragment) or _PAGE_LABEL.fullmatch(entry.title))
