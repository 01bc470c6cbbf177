"""Where an EPUB's spoken text lies in its XHTML: the map a read-along book is made from.

The book's text was extracted from each spine document's markup
(:mod:`.epub`, :mod:`.html`). Here the same documents are parsed as XML (as
the read-along book will write them, :func:`~ttsbatch.audio.readalong.anchors.parse_xhtml`),
copied into an HTML tree the extraction's walker understands (local names,
``epub:type``), and walked by the same rules with :func:`.html.trace`, which
says which text node every piece of every paragraph came from.
:func:`.normalise.clean_with_positions` follows each character through the
normalisation. The document's paragraphs are then found, in order, among
these: a paragraph ingestion dropped (Gutenberg's licence, its notes) is
passed over, and one whose extraction differs (an entity only a DTD defines)
is counted as unmatched and gets no overlay rather than a wrong one.
"""

from __future__ import annotations

import bisect
import io
import zipfile
from collections.abc import Iterator

from lxml import etree

from ttsbatch.audio.readalong.anchors import (
    Segment,
    SourceDocument,
    SourceMap,
    nodes,
    parse_xhtml,
)
from ttsbatch.errors import InputError

from .archive import Archive
from .document import SEPARATOR
from .html import Source, trace
from .normalise import clean_with_positions
from .package import read_package

_OPS_NS = "http://www.idpf.org/2007/ops"

# A paragraph as found in a spine document: its text and its segments, from 0.
_Found = tuple[int, str, list[Segment]]


def source_map(data: bytes, text: str, source_name: str) -> SourceMap:
    """Map ``text`` (the document ingested from the EPUB ``data``) to the EPUB's XHTML.

    Raises:
        InputError: the EPUB has Media Overlays already, or cannot be read (it was
            read once already, so rarely).
    """
    archive = Archive(data, source_name)
    package = read_package(archive, source_name)
    if any(name.lower().endswith(".smil") for name in zipfile.ZipFile(io.BytesIO(data)).namelist()):
        raise InputError(
            f"{source_name}: it has Media Overlays of its own already; a read-along book makes"
            " new ones from its text: give the EPUB without them, or leave out --read-along"
        )
    paths = list(dict.fromkeys(path for path, _ in package.spine))
    found: list[_Found] = []
    for number, path in enumerate(paths):
        try:
            tree = parse_xhtml(archive.read(path, "spine document"))
        except etree.XMLSyntaxError:
            continue  # not well-formed XML: its text gets no overlay
        found.extend((number, paragraph, segments) for paragraph, segments in _paragraphs(tree))
    segments: dict[int, list[Segment]] = {}
    unmatched = 0
    position = 0
    for start, paragraph, last in _document_paragraphs(text):
        match = next(
            (
                k
                for k in range(position, len(found))
                if found[k][1] == paragraph or (last and found[k][1].startswith(paragraph))
            ),
            None,
        )
        if match is None:
            unmatched += 1
            continue
        position = match + 1
        number, _, relative = found[match]
        segments.setdefault(number, []).extend(
            (a + start, min(b, len(paragraph)) + start, node, tail, raw)
            for a, b, node, tail, raw in relative
            if a < len(paragraph)
        )
    return SourceMap(
        documents=tuple(
            SourceDocument(path=paths[number], segments=tuple(segments[number]))
            for number in sorted(segments)
        ),
        unmatched=unmatched,
    )


def _document_paragraphs(text: str) -> Iterator[tuple[int, str, bool]]:
    """Each paragraph of the document: its start, its text, whether it is the last one."""
    start = 0
    while start < len(text):
        end = text.find(SEPARATOR, start)
        end = len(text) if end < 0 else end
        yield start, text[start:end], end == len(text)
        start = end + len(SEPARATOR)


def _paragraphs(tree: etree._ElementTree) -> Iterator[tuple[str, list[Segment]]]:
    """Each paragraph the extraction reads in the document, with its segments (from 0)."""
    numbered = nodes(tree)
    copy, number_of = _html_copy(numbered)
    extraction = trace(copy, keep_boilerplate=True)
    for paragraph, sources in zip(extraction.blocks, extraction.sources or [], strict=True):
        joined = "".join(raw for _, raw in sources)
        cleaned, positions = clean_with_positions(joined)
        if cleaned != paragraph.text:
            continue  # the walk and the normalisation disagree: no overlay
        yield paragraph.text, _segments(positions, sources, number_of)


def _segments(
    positions: list[int],
    sources: list[tuple[Source, str]],
    number_of: dict[etree._Element, int],
) -> list[Segment]:
    """Runs of characters that map one for one onto one text slot."""
    starts: list[int] = []
    offset = 0
    for _, piece in sources:
        starts.append(offset)
        offset += len(piece)
    segments: list[Segment] = []
    for char, position in enumerate(positions):
        part = bisect.bisect_right(starts, position) - 1
        source = sources[part][0]
        if source is None:  # the space a <br> stands for: in no text node
            continue
        node, tail = number_of[source[0]], int(source[1])
        raw = position - starts[part]
        if segments:
            a, b, last_node, last_tail, last_raw = segments[-1]
            if (last_node, last_tail) == (node, tail) and b == char and last_raw + b - a == raw:
                segments[-1] = (a, char + 1, node, tail, last_raw)
                continue
        segments.append((char, char + 1, node, tail, raw))
    return segments


def _html_copy(numbered: list[etree._Element]) -> tuple[etree._Element, dict[etree._Element, int]]:
    """Copy an XHTML tree into an HTML one (local names, ``epub:type``), as the walker reads.

    Returns the copy's root and, for each of its nodes, the number of the node it copies.
    """
    root = numbered[0]
    number = {node: n for n, node in enumerate(numbered)}
    top = etree.fromstring("<html></html>", etree.HTMLParser())
    for child in list(top):
        top.remove(child)
    _copy_attributes(root, top)
    top.text = root.text
    number_of = {top: 0}
    stack = [(root, top)]
    while stack:
        original, copy = stack.pop()
        for child in original:
            if isinstance(child.tag, str):
                made = etree.SubElement(copy, etree.QName(child).localname)
                _copy_attributes(child, made)
                made.text = child.text
                stack.append((child, made))
            else:  # a comment or processing instruction: the walker skips it, keeps its tail
                made = etree.Comment("")
                copy.append(made)
            made.tail = child.tail
            number_of[made] = number[child]
    return top, number_of


def _copy_attributes(original: etree._Element, copy: etree._Element) -> None:
    for key, value in original.attrib.items():
        name = str(key)
        if not name.startswith("{"):
            copy.set(name, value)
        elif name.startswith(f"{{{_OPS_NS}}}"):
            copy.set(f"epub:{etree.QName(name).localname}", value)
