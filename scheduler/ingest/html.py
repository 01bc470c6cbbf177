"""HTML and XHTML: visible text as paragraphs, h1–h3 as chapters.

Block elements become paragraphs and inline text is joined. What a reader of
the page would not hear is left out: scripts, styles, navigation, hidden
elements, images, footnote reference marks (``<sup>1</sup>``, ``epub:type=
"noteref"``) and footnote bodies (``epub:type="footnote"``, ``aside``).

Lists that point into the book are not read either: a table of contents, a
list of illustrations or an index says which it is by ``epub:type``/``role``
when its maker was careful, and otherwise by its shape, a container whose text
is mostly links to the book's own pages (Project Gutenberg's "CONTENTS" tables).
Gutenberg's licence header and footer (``id="pg-header"``/``"pg-footer"``,
class ``pg-boilerplate``; ``pgheader`` in older files) are left out unless
``keep_boilerplate`` asks for them. The parser never touches the network and
never resolves entities (see :mod:`.prolog`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lxml import etree

from ttsbatch.errors import InputError

from .chapters import chapter_starts
from .metadata import Book, head_info
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
# Lists of places in the book (EPUB 3 structural semantics, DPUB-ARIA roles).
_NAVIGATION_TYPES = frozenset({"toc", "loi", "lot", "lov", "landmarks", "index", "page-list"})
_NAVIGATION_ROLES = frozenset({"doc-toc", "doc-index", "doc-pagelist", "navigation"})
# Project Gutenberg's licence header and footer, current and older layouts.
_BOILERPLATE_IDS = frozenset({"pg-header", "pg-footer"})
_BOILERPLATE_CLASSES = frozenset({"pg-boilerplate", "pgheader", "pgfooter"})
# A container with at least this many links into the book, whose letters are
# mostly link text, is a list of contents or illustrations. Chapters link back
# to their contents ("Back to top") or to notes, but with a few words among
# thousands.
_LIST_MIN_LINKS = 3
_LIST_LINK_SHARE = 0.6
_LIST_TITLE = re.compile(r"\b(?:contents|illustrations|plates|figures|maps|index)\b", re.IGNORECASE)
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
        unspoken: Ids of elements left out (a contents list, the licence), so
            that a link to one is known to lead nowhere spoken.
        sources: Only from :func:`trace`: for each block, the raw texts it was
            joined from and where each came from (an element and whether it is
            its tail; ``None`` for the space a ``<br>`` stands for).
    """

    blocks: list[Block] = field(default_factory=list)
    anchors: dict[str, int] = field(default_factory=dict)
    unspoken: set[str] = field(default_factory=set)
    sources: list[list[tuple[Source, str]]] | None = None


#: Where a piece of a block's raw text came from: an element, and True for its tail.
Source = tuple[etree._Element, bool] | None


def read_html(markup: str, source_name: str, *, keep_boilerplate: bool = False) -> Book:
    """Extract paragraphs from a HTML document; h1–h3 headings start chapters.

    Its ``<title>`` and ``<meta name="author">`` are the book's title and author.
    """
    root = parse(markup, source_name)
    if root is None:
        return Book([], [])
    extraction = _extract(root, keep_boilerplate=keep_boilerplate)
    starts = chapter_starts(extraction.blocks, max_level=_CHAPTER_LEVEL)
    return Book(extraction.blocks, starts, info=head_info(root))


def extract(markup: str, source_name: str, *, keep_boilerplate: bool = False) -> Extraction:
    """Parse ``markup`` (HTML or XHTML, already decoded) and extract its text.

    Args:
        markup: The document.
        source_name: Names the input in errors.
        keep_boilerplate: Read Project Gutenberg's licence header and footer too.

    Raises:
        UnsafeInputError: When the document declares XML entities.
    """
    root = parse(markup, source_name)
    if root is None:
        return Extraction()
    return _extract(root, keep_boilerplate=keep_boilerplate)


def _extract(root: etree._Element, *, keep_boilerplate: bool) -> Extraction:
    walker = _Walker(_link_lists(root), keep_boilerplate=keep_boilerplate)
    walker.walk(root)
    return walker.extraction


def trace(root: etree._Element, *, keep_boilerplate: bool) -> Extraction:
    """Extract the text of a parsed document as :func:`extract` does, saying where each piece came from.

    A read-along book uses it to find the book's sentences in the XHTML
    (:mod:`.anchoring`): the same rules decide what is spoken.
    """
    walker = _Walker(_link_lists(root), keep_boilerplate=keep_boilerplate)
    walker.extraction.sources = []
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

    def __init__(self, link_lists: set[etree._Element], *, keep_boilerplate: bool) -> None:
        self.extraction = Extraction()
        self._parts: list[str] = []
        self._sources: list[Source] = []
        self._has_text = False
        self._link_lists = link_lists
        self._keep_boilerplate = keep_boilerplate

    def walk(self, root: etree._Element) -> None:
        stack: list[tuple[etree._Element, bool]] = [(root, False)]
        while stack:
            element, closing = stack.pop()
            tag = element.tag.lower() if isinstance(element.tag, str) else ""
            tail = None if element is root else element.tail
            if closing:
                if tag in _BLOCK_TAGS or tag in _HEADING_LEVELS:
                    self._flush(_HEADING_LEVELS.get(tag, 0))
                self._add(tail, (element, True))
                continue
            ident = element.get("id")
            if tag and self._is_left_out(element):
                if ident:
                    self.extraction.unspoken.add(ident)
                self._add(tail, (element, True))
                continue
            if ident and not self._has_text:
                self.extraction.anchors.setdefault(ident, len(self.extraction.blocks))
            if not tag or _is_unspoken(element, tag):
                self._add(tail, (element, True))
                continue
            if tag in _BLOCK_TAGS or tag in _HEADING_LEVELS:
                self._flush()
            elif tag == "br":
                self._add(" ", None)
            self._add(element.text, (element, False))
            stack.append((element, True))
            stack.extend((child, False) for child in reversed(element))

    def _is_left_out(self, element: etree._Element) -> bool:
        """A list of places in the book, or Gutenberg's licence: whole parts not read."""
        if element in self._link_lists:
            return True
        if _NAVIGATION_TYPES.intersection((element.get("epub:type") or "").split()):
            return True
        if _NAVIGATION_ROLES.intersection((element.get("role") or "").split()):
            return True
        if self._keep_boilerplate:
            return False
        classes = (element.get("class") or "").split()
        return element.get("id") in _BOILERPLATE_IDS or bool(
            _BOILERPLATE_CLASSES.intersection(classes)
        )

    def _add(self, text: str | None, source: Source) -> None:
        if text:
            self._parts.append(text)
            self._sources.append(source)
            self._has_text = self._has_text or not text.isspace()

    def _flush(self, level: int = 0) -> None:
        if self._has_text:
            paragraph = block("".join(self._parts), level)
            if paragraph:
                self.extraction.blocks.append(paragraph)
                if self.extraction.sources is not None:
                    self.extraction.sources.append(
                        list(zip(self._sources, self._parts, strict=True))
                    )
        self._parts.clear()
        self._sources.clear()
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


def _link_lists(root: etree._Element) -> set[etree._Element]:
    """Return the containers whose letters are mostly links into the book, and their headings.

    One pass from the leaves up counts, for every element, its letters, the
    letters inside internal links and the number of those links.
    """
    counts: dict[etree._Element, tuple[int, int, int]] = {}
    lists: set[etree._Element] = set()
    # Reversed document order visits every child before its parent.
    for element in reversed(list(root.iter())):
        if not isinstance(element.tag, str):
            continue
        letters, linked, links = _letters(element.text), 0, 0
        for child in element:
            child_letters, child_linked, child_links = counts.pop(child, (0, 0, 0))
            letters += child_letters + _letters(child.tail)
            linked += child_linked
            links += child_links
        tag = element.tag.lower()
        if tag == "a" and _is_internal(element.get("href")):
            linked, links = letters, links + 1
        elif (
            tag in _BLOCK_TAGS
            and tag not in {"html", "body"}
            and links >= _LIST_MIN_LINKS
            and linked >= _LIST_LINK_SHARE * letters
        ):
            lists.add(element)
        counts[element] = (letters, linked, links)
    # A heading just before a list is its title ("Contents"), heard with it or not at all.
    for element in list(lists):
        previous = element.getprevious()
        if previous is not None and not _letters(previous.tail):
            tag = previous.tag.lower() if isinstance(previous.tag, str) else ""
            if tag in _HEADING_LEVELS and _LIST_TITLE.search(text_of(previous)):
                lists.add(previous)
    return lists


def _letters(text: str | None) -> int:
    return len("".join(text.split())) if text else 0


def _is_internal(href: str | None) -> bool:
    if not href:
        return False
    parts = urlsplit(href)
    return not parts.scheme and not parts.netloc


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
