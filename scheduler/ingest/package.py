"""The EPUB package: ``META-INF/container.xml`` → the OPF → manifest, spine, metadata.

Paths in the package are relative to the OPF and URL-encoded; they are
resolved here into archive member names, and any that would climb out of the
archive is refused.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ttsbatch.errors import InputError, UnsafeInputError
from ttsbatch.models import BookInfo

from .archive import Archive
from .metadata import cover_item, opf_info
from .safexml import local_name, parse_xml

CONTAINER = "META-INF/container.xml"
_OPF_TYPE = "application/oebps-package+xml"
_NCX_TYPE = "application/x-dtbncx+xml"
_MARKUP_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/xml", "text/xml"})
_MARKUP_SUFFIXES = (".xhtml", ".html", ".htm", ".xml")


@dataclass(frozen=True, slots=True)
class Package:
    """What the OPF says about reading the book.

    Attributes:
        spine: Archive paths of the spine's (X)HTML documents in reading order,
            each with whether it is linear (``linear="no"`` marks auxiliary
            content). Images and SVG pages in the spine have nothing to read
            and are left out.
        nav: Archive path of the EPUB 3 navigation document, if any.
        ncx: Archive path of the EPUB 2 NCX, if any.
        info: What the OPF's metadata says about the book (see :mod:`.metadata`).
        cover: Archive path and declared media type of the cover image, if the
            manifest names one that the archive holds.
    """

    spine: tuple[tuple[str, bool], ...]
    nav: str | None
    ncx: str | None
    info: BookInfo
    cover: tuple[str, str] | None


def read_package(archive: Archive, source_name: str) -> Package:
    """Locate and read the OPF of the EPUB in ``archive``.

    Raises:
        InputError: When the container, the OPF or a spine document is missing.
        UnsafeInputError: When a path leaves the archive or the XML is hostile.
    """
    if not archive.has(CONTAINER):
        raise InputError(f"{source_name}: not a valid EPUB (no {CONTAINER})")
    container = parse_xml(archive.read(CONTAINER, "the container"), CONTAINER, source_name)
    rootfiles = [e for e in container.iter() if local_name(e) == "rootfile" and e.get("full-path")]
    rootfiles.sort(key=lambda e: e.get("media-type") != _OPF_TYPE)
    if not rootfiles:
        raise InputError(f"{source_name}: not a valid EPUB ({CONTAINER} names no package file)")
    opf_path = resolve("", rootfiles[0].get("full-path", ""), source_name)
    opf = parse_xml(archive.read(opf_path, "the package file"), opf_path, source_name)

    items: dict[str, tuple[str, str, str]] = {}
    for item in (e for e in opf.iter() if local_name(e) == "item"):
        ident, href = item.get("id"), item.get("href")
        if ident and href and not urlsplit(href).scheme:
            items[ident] = (
                resolve(opf_path, href, source_name),
                item.get("media-type", ""),
                item.get("properties", ""),
            )
    spine_element = next((e for e in opf.iter() if local_name(e) == "spine"), None)
    if spine_element is None:
        raise InputError(f"{source_name}: not a valid EPUB ({opf_path} has no spine)")
    spine: list[tuple[str, bool]] = []
    for itemref in (e for e in spine_element if local_name(e) == "itemref"):
        idref = itemref.get("idref", "")
        if idref not in items:
            raise InputError(
                f"{source_name}: not a valid EPUB (the spine of {opf_path} refers to "
                f"{idref!r}, which the manifest does not list)"
            )
        path, kind, _ = items[idref]
        if not archive.has(path):
            raise InputError(
                f"{source_name}: not a valid EPUB (spine document {path} is missing from the archive)"
            )
        if kind in _MARKUP_TYPES or (not kind and path.lower().endswith(_MARKUP_SUFFIXES)):
            spine.append((path, itemref.get("linear", "yes").strip().lower() != "no"))
    if not spine:
        raise InputError(
            f"{source_name}: not a valid EPUB ({opf_path} lists no (X)HTML document in its spine)"
        )

    nav = next((path for path, _, props in items.values() if "nav" in props.split()), None)
    toc_id = spine_element.get("toc") or ""
    ncx = items[toc_id][0] if toc_id in items else None
    if ncx is None:
        ncx = next((path for path, kind, _ in items.values() if kind == _NCX_TYPE), None)
    cover = cover_item(opf, items)
    return Package(
        spine=tuple(spine),
        nav=nav if nav and archive.has(nav) else None,
        ncx=ncx if ncx and archive.has(ncx) else None,
        info=opf_info(opf),
        cover=cover if cover and archive.has(cover[0]) else None,
    )


def resolve(base: str, href: str, source_name: str) -> str:
    """Resolve ``href`` (URL-encoded, relative to member ``base``) to a member name.

    Raises:
        UnsafeInputError: When the result would lie outside the archive.
    """
    path = unquote(urlsplit(href).path)
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), path))
    if joined.startswith(("../", "/")) or joined == "..":
        raise UnsafeInputError(f"{source_name}: refused: {href!r} points outside the book")
    return joined
