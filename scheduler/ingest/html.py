"""HTML and XHTML: visible text as paragraphs, h1–h3 as chapters.

Block elements become paragraphs and inline text is joined. What a reader of
the page would not hear is left out: scripts, styles, navigation, hidden
elements, images, footnote reference marks (``<sup>1</sup>``, ``epub:type=
"noteref"``) and footnote bodies (``epub:type="footnote"``, ``aside``). The
parser never touches the network and never resolves entities (see
:mod:`.prolog`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from ttsbatch.errors import InputError

from .chapters import chapter_starts
from .normalise import Block, block
from .prolog import strip_prolog

# Not content, page chrome and forms, media and pictures (alt text is not read),
# ruby annotations, and asides (footnote bodies, sidebars).
_DROPPED_TAGS = (
    frozenset({"head", "title", "meta", "link", "script", "style", "template", "noscript"})
    | frozenset({"nav", "button", "select", "textarea", "input", "map", "area", "iframe"})
    | frozenset({"img", "svg", "math", "object", "embed", "canvas", "audio", "video"})
    | frozenset({"rt", "rp", "aside"})
)
_BLOCK_TAGS = (
    frozenset({"html", "body", "main", "article", "section", "header", "footer", "div"})
    | frozenset({"p", "blockquote", "pre", "address", "center", "hr", "hgroup", "dialog"})
    | frozenset({"ul", "ol", "li", "dl", "dt", "dd", "details", "summary", "figure", "figcaption"})
    | frozenset({"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"})
    | frozenset({"form", "fieldset", "legend"})
)
_HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}
# Footnote reference marks, footnote bodies and page-break marks (epub:type, role).
_NOTE_TYPES = frozenset({"noteref", "footnote", "footnotes", "endnote", "endnotes"}) | frozenset(
    {"rearnote", "rearnotes", "pagebreak"}
)
_NOTE_ROLES = frozenset({"doc-noteref", "doc-footnote", "doc-endnote", "doc-endnotes"}) | frozenset(
    {"doc-pagebreak"}
)
_CHROME_ROLES = frozenset({"banner", "contentinfo", "navigation"})
# A reference mark is digits and symbols only: "1", "[2]", "*", "†".
_MARK = re.compile(r"[\W\d_]*")
_CHAPTER_LEVEL = 3
# Control characters (NUL included), which libxml2 would turn into U+FFFD.
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass
class Extraction:
    """What a HTML document says.

    Attributes:
        blocks: Its paragraphs; headings carry their level (1–6).
        anchors: Element ids that begin a paragraph, mapped to that paragraph's
            index, so that a link to ``file.xhtml#id`` can be placed.
    """

    blocks: list[Block] = field(default_factory=list)
    anchors: dict[str, int] = field(default_factory=dict)


def read_html(markup: str, source_name: str) -> tuple[list[Block], list[tuple[int, str]]]:
    """Extract paragraphs from a HTML document; h1–h3 headings start chapters."""
    extraction = extract(markup, source_name)
    return extraction.blocks, chapter_starts(extraction.blocks, max_level=_CHAPTER_LEVEL)


def extract(markup: str, source_name: str) -> Extraction:
    """Parse ``markup`` (HTML or XHTML, already decoded) and extract its text.

    Raises:
        UnsafeInputError: When the document declares XML entities.
    """
    root = parse(markup, source_name)
    walker = _Walker()
    if root is None:
        return walker.extraction
    walker.walk(root)
    return walker.extraction


def parse(markup: str, source_name: str) -> etree._Element | None:
    """Parse HTML or XHTML leniently, offline; ``None`` when there is no element.

    Raises:
        UnsafeInputError: When the document declares XML entities.
        InputError: When the document nests too deeply to be parsed whole.
    """
    markup = _CONTROL.sub("", strip_prolog(markup, source_name))
    if not markup.strip():
        return None
    # huge_tree lifts libxml2's 10 MB limit on one text node, which would
    # otherwise drop a long paragraph without a word; HTML has no entity
    # declarations to expand, so nothing else is at stake.
    parser = etree.HTMLParser(
        no_network=True, remove_comments=True, remove_pis=True, huge_tree=True
    )
    root = etree.fromstring(markup, parser)
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        raise InputError(
            f"{source_name}: cannot be read: its elements nest deeper than the parser allows "
            "(over 2048 levels)"
        )
    return root


class _Walker:
    """Collects paragraphs in document order, iteratively (no recursion limit)."""

    def __init__(self) -> None:
        self.extraction = Extraction()
        self._parts: list[str] = []
        self._has_text = False

    def walk(self, root: etree._Element) -> None:
        stack: list[tuple[etree._Element, bool]] = [(root, False)]
        while stack:
            element, closing = stack.pop()
            tag = element.tag.lower() if isinstance(element.tag, str) else ""
            if closing:
                if tag in _BLOCK_TAGS or tag in _HEADING_LEVELS:
                    self._flush(_HEADING_LEVELS.get(tag, 0))
                self._add(element.tail if element is not root else None)
                continue
            ident = element.get("id")
            if ident and not self._has_text:
                self.extraction.anchors.setdefault(ident, len(self.extraction.blocks))
            if not tag or _is_unspoken(element, tag):
                self._add(element.tail if element is not root else None)
                continue
            if tag in _BLOCK_TAGS or tag in _HEADING_LEVELS:
                self._flush()
            elif tag == "br":
                self._add(" ")
            self._add(element.text)
            stack.append((element, True))
            stack.extend((child, False) for child in reversed(element))

    def _add(self, text: str | None) -> None:
        if text:
            self._parts.append(text)
            self._has_text = self._has_text or not text.isspace()

    def _flush(self, level: int = 0) -> None:
        if self._has_text:
            paragraph = block("".join(self._parts), level)
            if paragraph:
                self.extraction.blocks.append(paragraph)
        self._parts.clear()
        self._has_text = False


def _is_unspoken(element: etree._Element, tag: str) -> bool:
    roles = set((element.get("role") or "").split())
    if tag in _DROPPED_TAGS or _is_hidden(element):
        return True
    if _NOTE_TYPES.intersection((element.get("epub:type") or "").split()) or roles & _NOTE_ROLES:
        return True
    if tag in {"header", "footer"}:
        return bool(roles & _CHROME_ROLES) or element.find(".//nav") is not None
    if tag == "sup":
        return element.find(".//a") is not None or _is_mark(element)
    if tag == "a":
        return (element.get("href") or "").startswith("#") and _is_mark(element)
    return False


def _is_hidden(element: etree._Element) -> bool:
    return (
        element.get("hidden") is not None
        or (element.get("aria-hidden") or "").strip().lower() == "true"
        or "display:none" in (element.get("style") or "").replace(" ", "").lower()
    )


def _is_mark(element: etree._Element) -> bool:
    return bool(_MARK.fullmatch(text_of(element)))


def text_of(element: etree._Element) -> str:
    """Return all the text inside ``element`` (not its tail)."""
    return "".join(part for part in element.itertext() if isinstance(part, str))
