"""Where an EPUB's spoken text lies in its own XHTML, and spans wrapped around it.

Planning (the scheduler, which owns ingestion) maps the document's characters
to the text nodes they came from, as a :class:`SourceMap`; finishing (either
executor) reads the map and wraps each unit of text in a ``<span id>``. Both
sides parse the XHTML with :func:`parse_xhtml` and number its nodes with
:func:`nodes`, so a node's number means the same node on both.

A segment says: document characters ``[doc_start, doc_end)`` are the raw
characters from ``raw_start`` on, one for one, of one text slot (a node's
``text``, or its ``tail``). Collapsed whitespace starts a new segment. A unit
that crosses inline elements (``He said <i>no</i>.``, a drop cap) is one span
around them when they hold nothing else; otherwise one span per text slot it
touches (:func:`wrap`). Either way the text, and the order of the elements,
stay as they were: a reader sees no change until the book plays.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
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

    A unit found in one text slot is one span with its id. A unit spread over
    several is one span too when the inline elements it crosses hold nothing
    but its own text (``He said <i>no</i> twice.``): they move inside the
    span. Otherwise (a footnote mark inside it, a sentence ending inside an
    element that goes on) each text slot gets a span of its own, ``id-1``,
    ``id-2``…, and no element moves. Pieces of only whitespace get no span.
    Returns each span's id and the document characters it holds.
    """
    numbered = nodes(tree)
    starts = [segment[0] for segment in segments]
    operations: list[tuple[int, _Piece | _Whole, str]] = []
    made: list[tuple[str, int, int]] = []
    for unit_id, char_start, char_end in units:
        found = [
            piece
            for piece in _pieces(segments, starts, char_start, char_end)
            if _text(numbered[piece[0][0]], tail=piece[0][1])[piece[1] : piece[2]].strip()
        ]
        whole = _whole(numbered, found) if len(found) > 1 else None
        if whole is not None:
            operations.append((found[0][3], whole, unit_id))
            made.append((unit_id, found[0][3], found[-1][4]))
            continue
        for number, (slot, raw_from, raw_to, doc_from, doc_to) in enumerate(found, 1):
            span_id = unit_id if len(found) == 1 else f"{unit_id}-{number}"
            piece = _Piece(numbered[slot[0]], bool(slot[1]), raw_from, raw_to)
            operations.append((doc_from, piece, span_id))
            made.append((span_id, doc_from, doc_to))
    # The last first: text before a span, and the elements it names, stay where they were.
    for _, operation, span_id in sorted(operations, key=lambda op: op[0], reverse=True):
        operation.wrap(span_id)
    return made


@dataclass(frozen=True, slots=True)
class _Piece:
    """Raw characters ``[raw_from, raw_to)`` of one text slot."""

    node: etree._Element
    tail: bool
    raw_from: int
    raw_to: int

    def wrap(self, span_id: str) -> None:
        raw = _text(self.node, tail=self.tail)
        span = self.node.makeelement(f"{{{XHTML_NS}}}span", {"id": span_id})
        span.text, span.tail = raw[self.raw_from : self.raw_to], raw[self.raw_to :]
        if self.tail:
            self.node.tail = raw[: self.raw_from]
            self.node.addnext(span)
        else:
            self.node.text = raw[: self.raw_from]
            self.node.insert(0, span)


@dataclass(frozen=True, slots=True)
class _Whole:
    """A unit across inline children of ``parent``: from ``start`` characters into
    ``after``'s tail (``None``: the parent's text) to ``end`` characters into ``last``'s tail."""

    parent: etree._Element
    after: etree._Element | None
    start: int
    last: etree._Element
    end: int

    def wrap(self, span_id: str) -> None:
        parent, after, last = self.parent, self.after, self.last
        rest = (last.tail or "")[self.end :]
        last.tail = (last.tail or "")[: self.end]
        if after is None:
            lead, parent.text = (parent.text or "")[self.start :], (parent.text or "")[: self.start]
            first = 0
        else:
            lead, after.tail = (after.tail or "")[self.start :], (after.tail or "")[: self.start]
            first = parent.index(after) + 1
        moved = list(parent)[first : parent.index(last) + 1]
        span = parent.makeelement(f"{{{XHTML_NS}}}span", {"id": span_id})
        span.text, span.tail = lead, rest
        for child in moved:
            span.append(child)
        parent.insert(first, span)


#: Elements a ``<span>`` may not hold (HTML's flow content that is not phrasing).
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "details",
        "dialog",
        "div",
        "dl",
        "dd",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)


def _is_block(element: etree._Element) -> bool:
    """Whether ``element`` is flow content a span cannot hold (comments are not elements)."""
    return isinstance(element.tag, str) and etree.QName(element).localname in _BLOCKS


def _whole(
    numbered: list[etree._Element], found: list[tuple[tuple[int, int], int, int, int, int]]
) -> _Whole | None:
    """One span for a unit over several text slots, if the elements it crosses hold only it."""
    covered = {(numbered[node], bool(tail)): (a, b) for (node, tail), a, b, _, _ in found}
    slots = [(numbered[node], bool(tail)) for (node, tail), *_ in found]
    containers = [
        container
        for node, tail in slots
        if (container := node.getparent() if tail else node) is not None
    ]
    if len(containers) < len(slots):
        return None
    lineage = [containers[0], *containers[0].iterancestors()]
    for container in containers[1:]:
        own = {container, *container.iterancestors()}
        lineage = [node for node in lineage if node in own]
    if not lineage:
        return None
    parent = lineage[0]
    (node, tail), start = slots[0], found[0][1]
    after: etree._Element | None
    if containers[0] is parent:
        after = node if tail else None
        first = parent.index(node) + 1 if after is not None else 0
    else:  # it starts inside a child (a drop cap): the span starts before that child
        child = _child_of(parent, containers[0])
        after = child.getprevious()
        start = len((after.tail if after is not None else parent.text) or "")
        first = parent.index(child)
    (node, tail), end = slots[-1], found[-1][2]
    if containers[-1] is parent:
        if not tail:
            return None
        last = node
    else:  # it ends inside a child: the span ends after it
        last, end = _child_of(parent, containers[-1]), 0
    children = list(parent)[first : parent.index(last) + 1]
    phrasing = not any(_is_block(element) for child in children for element in child.iter())
    if not (children and phrasing and all(_covered(child, covered) for child in children)):
        return None  # a span holds phrasing only (a unit over paragraphs: one per text node)
    tails = [(child, True) for child in children[:-1]]
    if not all(_slot_covered(slot, covered) for slot in tails):
        return None
    return _Whole(parent, after, start, last, end)


def _child_of(parent: etree._Element, node: etree._Element) -> etree._Element:
    while node.getparent() is not parent:
        node = node.getparent()  # type: ignore[assignment]  # parent is an ancestor of node
    return node


def _covered(
    element: etree._Element, covered: dict[tuple[etree._Element, bool], tuple[int, int]]
) -> bool:
    """Whether every word in ``element`` (its tail aside) belongs to the unit."""
    for node in element.iter():
        if isinstance(node.tag, str) and not _slot_covered((node, False), covered):
            return False
        if node is not element and not _slot_covered((node, True), covered):
            return False
    return True


def _slot_covered(
    slot: tuple[etree._Element, bool], covered: dict[tuple[etree._Element, bool], tuple[int, int]]
) -> bool:
    text = _text(slot[0], tail=slot[1])
    if not text.strip():
        return True
    first = len(text) - len(text.lstrip())
    last = len(text.rstrip())
    found = covered.get(slot)
    return found is not None and found[0] <= first and found[1] >= last


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


def _text(node: etree._Element, *, tail: bool | int) -> str:
    return (node.tail if tail else node.text) or ""
