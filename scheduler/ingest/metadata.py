"""What a book says about itself: an EPUB's OPF metadata and cover, a HTML page's head.

From the OPF's ``<metadata>``: the main title (``title-type`` "main" when
there are several), the authors (creators whose role is ``aut`` or unstated,
joined with " & "), the language, the year of publication (from ``dc:date``;
modification and conversion dates are not publication dates), the
description (HTML tags stripped) and the publisher. Every value is one
normalised line; an empty one is ``None``; a long one is cut to what
:class:`~ttsbatch.models.BookInfo` holds.

The cover is the manifest item marked ``cover-image`` (EPUB 3), else the one
``<meta name="cover">`` names (EPUB 2), else an image whose id or path says
"cover". Only a JPEG or PNG (told by its bytes) of at most
:data:`MAX_COVER_BYTES` is a cover; any other image, or one missing or
corrupt in the archive, means no cover, not an error: the book's text is
still read.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final
from xml.etree.ElementTree import Element

from lxml import etree

from ttsbatch.errors import InputError, UnsafeInputError
from ttsbatch.models import MAX_COVER_BYTES, BookInfo, Cover

from .archive import Archive
from .normalise import Block, clean
from .safexml import local_name

_COVER_TYPES: Final = frozenset({"image/jpeg", "image/jpg", "image/png"})
# dc:date events (EPUB 2) that date the file, not the book.
_NOT_PUBLICATION: Final = frozenset({"modification", "conversion"})
_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")
# Tags after which a reader hears a pause; other tags (<i>, <b>) join their text.
_BREAKING_TAG = re.compile(r"</?(?:p|br|div|li|h[1-6]|blockquote|tr|td)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class Book:
    """A read input: its paragraphs, chapter starts, what it says about itself and its cover.

    Attributes:
        blocks: The paragraphs, in reading order.
        starts: ``(block index, title)`` of each chapter's first paragraph.
        info: The book's title, author and the like, as far as the input says.
        cover: Its cover image, if it has one this project can use.
    """

    blocks: list[Block]
    starts: list[tuple[int, str]]
    info: BookInfo = field(default_factory=BookInfo)
    cover: Cover | None = None


def opf_info(opf: Element) -> BookInfo:
    """Return what the ``<metadata>`` of the OPF ``opf`` says about the book."""
    metadata = next((e for e in opf.iter() if local_name(e) == "metadata"), None)
    if metadata is None:
        return BookInfo()
    # OPF 2 spells Dublin Core elements in lower case; OPF 1 (dc:Title) did not.
    elements: dict[str, list[Element]] = {}
    for element in metadata.iter():
        elements.setdefault(local_name(element).lower(), []).append(element)
    refines = _refinements(elements.get("meta", []))
    dates = [
        _text(e) for e in elements.get("date", []) if _attribute(e, "event") not in _NOT_PUBLICATION
    ]
    return book_info(
        title=_main_title(elements.get("title", []), refines),
        author=" & ".join(dict.fromkeys(_authors(elements.get("creator", []), refines))),
        language=_first(_text(e) for e in elements.get("language", [])),
        year=_first(match.group() for date in dates if (match := _YEAR.search(date))),
        description=_first(_plain(_text(e)) for e in elements.get("description", [])),
        publisher=_first(_text(e) for e in elements.get("publisher", [])),
    )


def head_info(root: etree._Element) -> BookInfo:
    """Return the title (``<title>``) and author (``<meta name="author">``) of a HTML page."""
    head = next(root.iter("head"), root)
    title = next(head.iter("title"), None)
    authors = (e.get("content") for e in head.iter("meta") if _is_named(e, "author"))
    return book_info(
        title=None if title is None else "".join(t for t in title.itertext() if isinstance(t, str)),
        author=next(authors, None),
    )


def book_info(**values: str | None) -> BookInfo:
    """Return a :class:`BookInfo` of ``values``, each cleaned, cut to fit, empty ones unset."""
    fields = BookInfo.model_fields
    kept: dict[str, str] = {}
    for name, value in values.items():
        text = clean(value) if value else ""
        limit = next(
            (m.max_length for m in fields[name].metadata if hasattr(m, "max_length")), None
        )
        if limit is not None and len(text) > limit:
            text = text[: limit - 1].rstrip() + "…"
        if text:
            kept[name] = text
    return BookInfo.model_validate(kept)


def cover_item(opf: Element, items: Mapping[str, tuple[str, str, str]]) -> tuple[str, str] | None:
    """Return the archive path and media type of the manifest item that is the cover.

    Args:
        opf: The package document.
        items: The manifest: item id -> (archive path, media type, properties).
    """
    for path, kind, properties in items.values():
        if "cover-image" in properties.split():
            return path, kind
    named = next(
        (
            e.get("content", "").strip()
            for e in opf.iter()
            if local_name(e) == "meta" and (e.get("name") or "").strip().lower() == "cover"
        ),
        "",
    )
    if named in items:
        path, kind, _ = items[named]
        return path, kind
    for ident, (path, kind, _) in items.items():
        if kind.startswith("image/") and "cover" in f"{ident} {path}".lower():
            return path, kind
    return None


def read_cover(archive: Archive, path: str, media_type: str) -> Cover | None:
    """Read the cover image at ``path``; ``None`` unless it is a JPEG or PNG within the cap.

    Archive offers no member size before reading, so the cap is checked on
    the bytes read (which its own byte budget bounds).

    Raises:
        UnsafeInputError: When reading it would exceed the archive's byte budget.
    """
    if media_type.strip().lower() not in _COVER_TYPES or not archive.has(path):
        return None
    try:
        data = archive.read(path, "the cover image")
    except UnsafeInputError:
        raise
    except InputError:
        return None  # A corrupt cover costs the cover, not the book.
    if len(data) > MAX_COVER_BYTES:
        return None
    return Cover.sniff(data)


def _is_named(meta: etree._Element, name: str) -> bool:
    return (meta.get("name") or "").strip().lower() == name


def _refinements(metas: list[Element]) -> dict[tuple[str, str], str]:
    """Map (refined id, property) to the value of EPUB 3 ``<meta refines="#id">`` elements."""
    refined: dict[tuple[str, str], str] = {}
    for meta in metas:
        target, prop = meta.get("refines", "").strip(), meta.get("property", "").strip()
        if target.startswith("#") and prop:
            refined.setdefault((target[1:], prop.lower()), _text(meta).lower())
    return refined


def _main_title(titles: list[Element], refines: Mapping[tuple[str, str], str]) -> str | None:
    named = [(e.get("id", ""), _text(e)) for e in titles]
    named = [(ident, text) for ident, text in named if text]
    main = next(
        (text for ident, text in named if refines.get((ident, "title-type")) == "main"), None
    )
    return main or _first(text for _, text in named)


def _authors(creators: list[Element], refines: Mapping[tuple[str, str], str]) -> list[str]:
    authors: list[str] = []
    for creator in creators:
        role = _attribute(creator, "role") or refines.get((creator.get("id", ""), "role"), "")
        name = _text(creator)
        if name and role in {"", "aut"}:
            authors.append(name)
    return authors


def _attribute(element: Element, name: str) -> str:
    """Return the attribute ``name`` in any namespace (``opf:role``, ``role``), lower-cased."""
    value = next((v for k, v in element.attrib.items() if k.rpartition("}")[2] == name), "")
    return value.strip().lower()


def _text(element: Element) -> str:
    return clean("".join(element.itertext()))


def _plain(text: str) -> str:
    """Return a description as plain text: tags (escaped or not in the OPF) dropped."""
    text = _TAG.sub("", _BREAKING_TAG.sub(" ", text))
    return clean(html.unescape(text))


def _first(values: Iterable[str]) -> str | None:
    return next((value for value in values if value), None)
