"""Where an EPUB's spoken text lies in its own XHTML, and spans wrapped around it.

Planning (the scheduler, which owns ingestion) maps the document's characters
to the text nodes they came from, as a :class:`SourceMap`; finishing (either
executor) reads the map and wraps each unit of text in a ``<span id>``. Both
sides parse the XHTML with :func:`parse_xhtml` and number its nodes with
:func:`nodes`, so a node's number means the same node on both.

A segment says: document characters ``[doc_start, doc_end)`` are the raw
characters from ``raw_start`` on, one for one, of one text slot (a node's
``text``, or its ``tail``). Collapsed whitespace starts a new segment. A unit
that crosses inline elements (``He said <i>no</i>.``) becomes one span per
text slot it touches: spans never move an element, so nothing a reader sees
changes but the ids.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from typing import Final, Literal

from lxml import etree
from pydantic import ConfigDict, Field

from ttsbatch.models import Frozen

XHTML_NS: Final = "http://www.w3.org/1999/xhtml"
#: A segment: document start, document end, node number, 1 for its tail (0: its text), raw start.
Segment = tuple[int, int, int, int, int]


class SourceDocument(Frozen):
    """One content document of the EPUB and where the book's text lies in it."""

    path: str = Field(description="Its path in the EPUB archive.")
    segments: tuple[Segment, ...]


class SourceMap(Frozen):
    """The spoken text of an EPUB input, mapped to its XHTML (stored beside the job's plan)."""

    schema_: Literal["ttsbatch.readalong-source/1"] = Field(
        default="ttsbatch.readalong-source/1", alias="schema"
    )
    documents: tuple[SourceDocument, ...]
    unmatched: int = Field(
        default=0, description="Paragraphs of the text found in no XHTML (they get no overlay)."
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def parse_xhtml(data: bytes) -> etree._ElementTree:
    """Parse an EPUB's XHTML as XML: no network, no DTD, no entity expansion.

    Raises:
        etree.XMLSyntaxError: it is not well-formed.
    """
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True
    )
    return etree.ElementTree(etree.fromstring(data, parser))


def nodes(tree: etree._ElementTree) -> list[etree._Element]:
    """Every node of the document (elements, comments, instructions) in document order."""
    return list(tree.getroot().iter())


def wrap(
    tree: etree._ElementTree, segments: Sequence[Segment], units: Sequence[tuple[str, int, int]]
) -> list[tuple[str, int, int]]:
    """Wrap each unit ``(id, char_start, char_end)`` in spans; return the spans made, in order.

    A unit found in one text slot keeps its id; one spread over several gets
    ``id-1``, ``id-2``… Pieces of only whitespace get no span. Returns each
    span's id and the document characters it holds.
    """
    numbered = nodes(tree)
    starts = [segment[0] for segment in segments]
    pieces: defaultdict[tuple[int, int], list[tuple[int, int, str]]] = defaultdict(list)
    made: list[tuple[str, int, int]] = []
    for unit_id, char_start, char_end in units:
        found = [
            piece
            for piece in _pieces(segments, starts, char_start, char_end)
            if _text(numbered[piece[0][0]], tail=piece[0][1])[piece[1] : piece[2]].strip()
        ]
        for number, (slot, raw_from, raw_to, doc_from, doc_to) in enumerate(found, 1):
            span_id = unit_id if len(found) == 1 else f"{unit_id}-{number}"
            pieces[slot].append((raw_from, raw_to, span_id))
            made.append((span_id, doc_from, doc_to))
    for (node, tail), spans in pieces.items():
        _wrap_slot(numbered[node], tail=bool(tail), spans=spans)
    return made


def _pieces(
    segments: Sequence[Segment], starts: list[int], char_start: int, char_end: int
) -> list[tuple[tuple[int, int], int, int, int, int]]:
    """The text slots holding ``[char_start, char_end)``: slot, raw range, document range."""
    found: list[tuple[tuple[int, int], int, int, int, int]] = []
    first = max(0, bisect.bisect_right(starts, char_start) - 1)
    for doc_start, doc_end, node, tail, raw_start in segments[first:]:
        if doc_start >= char_end:
            break
        low, high = max(doc_start, char_start), min(doc_end, char_end)
        if low >= high:
            continue
        slot = (node, tail)
        raw_from, raw_to = raw_start + low - doc_start, raw_start + high - doc_start
        if found and found[-1][0] == slot:
            previous = found[-1]
            found[-1] = (slot, previous[1], raw_to, previous[3], high)
        else:
            found.append((slot, raw_from, raw_to, low, high))
    return found


def _wrap_slot(node: etree._Element, *, tail: bool, spans: list[tuple[int, int, str]]) -> None:
    """Wrap raw ranges of one text slot in spans, the last first so earlier offsets hold."""
    for raw_from, raw_to, span_id in sorted(spans, reverse=True):
        raw = _text(node, tail=tail)
        span = node.makeelement(f"{{{XHTML_NS}}}span", {"id": span_id})
        span.text, span.tail = raw[raw_from:raw_to], raw[raw_to:]
        if tail:
            node.tail = raw[:raw_from]
            node.addnext(span)
        else:
            node.text = raw[:raw_from]
            node.insert(0, span)


def _text(node: etree._Element, *, tail: bool | int) -> str:
    return (node.tail if tail else node.text) or ""
