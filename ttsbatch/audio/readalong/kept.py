"""A read-along book made from an EPUB: its own files, with ids and overlays added.

Every file of the input is carried over: styles, images, fonts, the NCX and
the metadata. Content documents that hold spoken text get a ``<span id>``
around each unit (:func:`~ttsbatch.audio.readalong.anchors.wrap`) and a link
to the highlight's stylesheet; nothing else in them changes. Project
Gutenberg's licence stays in the book, unspoken and without an overlay: its
terms ask that it go with every copy.

An EPUB 2 input becomes EPUB 3, which Media Overlays need
(https://www.w3.org/TR/epub-33/): ``version="3.0"``, a ``dcterms:modified``,
a navigation document made from the NCX, ``<!DOCTYPE html>`` in its XHTML
(and a table's ``summary`` as its ``aria-label``), a creator's ``opf:file-as``
and ``opf:role`` as refining metas, the other OPF 2 attributes EPUB 3 no
longer takes (``opf:scheme``, ``opf:event``, ``xsi:type``) dropped, and one
``dc:date``. epubcheck holds these rules (the ``summary`` one came from its
error on the licence table of all three shared Gutenberg books).
"""

from __future__ import annotations

import bisect
import io
import posixpath
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import unquote

from lxml import etree

from ttsbatch.audio.readalong.anchors import SourceDocument, SourceMap, parse_xhtml, wrap
from ttsbatch.audio.readalong.parts import (
    CSS,
    DC_NS,
    OPF_NS,
    XHTML_NS,
    Audio,
    Front,
    duration,
    meta,
    nav_document,
    overlay_metadata,
    relative,
    smil,
    xhtml_bytes,
)
from ttsbatch.audio.readalong.timing import Clip, Spoken, by_document
from ttsbatch.errors import InputError

_CONTAINER_NS: Final = "urn:oasis:names:tc:opendocument:xmlns:container"
_NCX_NS: Final = "http://www.daisy.org/z3986/2005/ncx/"
_XHTML_TYPES: Final = frozenset({"application/xhtml+xml"})
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def kept_book(
    data: bytes,
    source: SourceMap,
    spoken: Spoken,
    *,
    front: Front,
    audio: Audio,
    prefix: str,
) -> tuple[str, list[tuple[str, bytes | Path]]]:
    """Return the OPF's path and the archive's files (after the container).

    Raises:
        InputError: the EPUB lacks its container or package (it was read once, so rarely).
    """
    archive = zipfile.ZipFile(io.BytesIO(data))
    opf_path = _package_path(archive)
    package = etree.fromstring(archive.read(opf_path), _PARSER)
    upgrade = not (package.get("version") or "").startswith("3")
    folder = posixpath.join(posixpath.dirname(opf_path), "readalong")
    audio_path = f"{folder}/book.{audio.suffix}"
    css_path = f"{folder}/readalong.css"
    changed: dict[str, bytes] = {}
    overlays: list[tuple[str, str, int]] = []
    smils: list[tuple[str, bytes]] = []
    placed, owner = _place(
        archive, source, spoken, prefix=prefix, css_path=css_path, upgrade=upgrade, changed=changed
    )
    grouped = by_document(placed, owner, len(source.documents))
    overlay_of: dict[str, str] = {}
    for number, (document, mine) in enumerate(zip(source.documents, grouped, strict=True)):
        if not mine:
            continue
        smil_path = f"{folder}/{number + 1:03d}.smil"
        smils.append(
            (
                smil_path,
                smil(mine, smil_path=smil_path, audio_path=audio_path, text_path=document.path),
            )
        )
        overlay_id = f"readalong-mo-{number + 1:03d}"
        overlays.append((smil_path, overlay_id, duration(mine)))
        overlay_of[document.path] = overlay_id
    if upgrade:
        _doctypes(archive, package, opf_path, changed)
    nav: tuple[str, bytes] | None = None
    if upgrade or _nav_item(package) is None:
        nav = (f"{folder}/nav.xhtml", _nav_from_ncx(archive, package, opf_path, front, folder))
    added: list[tuple[str, str, str, str | None]] = [(css_path, "readalong-css", "text/css", None)]
    if nav is not None:
        added.append((nav[0], "readalong-nav", "application/xhtml+xml", "nav"))
    added.extend(
        (path, overlay_id, "application/smil+xml", None) for path, overlay_id, _ in overlays
    )
    added.append((audio_path, "readalong-audio", audio.media_type, None))
    changed[opf_path] = _package(
        package,
        opf_path,
        front=front,
        upgrade=upgrade,
        overlays=overlays,
        overlay_of=overlay_of,
        added=added,
    )
    files: list[tuple[str, bytes | Path]] = []
    for info in archive.infolist():
        name = info.filename
        if name in {"mimetype", "META-INF/container.xml"} or name.endswith("/"):
            continue
        files.append((name, changed.get(name) or archive.read(name)))
    files.append((css_path, CSS))
    if nav:
        files.append(nav)
    files.extend(smils)
    files.append((audio_path, audio.path))
    return opf_path, files


def _package_path(archive: zipfile.ZipFile) -> str:
    try:
        container = etree.fromstring(archive.read("META-INF/container.xml"), _PARSER)
    except KeyError:
        raise InputError("the EPUB has no META-INF/container.xml") from None
    rootfile = container.find(f".//{{{_CONTAINER_NS}}}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise InputError("the EPUB's container names no package document")
    return str(rootfile.get("full-path"))


def _free_prefix(tree: etree._ElementTree, prefix: str) -> str:
    """``prefix``, lengthened until no id the document has starts with it (ids stay unique)."""
    taken = [str(element.get("id")) for element in tree.iter() if element.get("id")]
    while any(name.startswith(prefix) for name in taken):
        prefix += "x"
    return prefix


def _place(
    archive: zipfile.ZipFile,
    source: SourceMap,
    spoken: Spoken,
    *,
    prefix: str,
    css_path: str,
    upgrade: bool,
    changed: dict[str, bytes],
) -> tuple[list[Clip], list[int]]:
    """Wrap the units of every mapped document; return their clips and each one's document."""
    units = spoken.units
    starts = [a for a, _ in units]
    placed: list[Clip] = []
    owner: list[int] = []
    for number, document in enumerate(source.documents):
        tree = parse_xhtml(archive.read(document.path))
        own = _free_prefix(tree, prefix)
        spans = wrap(tree, document.segments, _units_in(document, units, starts, own))
        _link_css(tree, relative(css_path, document.path))
        if upgrade:
            _html5(tree)
        changed[document.path] = xhtml_bytes(tree)
        for span_id, a, b in spans:
            clip = spoken.clip(a, b, span_id)
            if clip is not None:
                placed.append(clip)
                owner.append(number)
    return placed, owner


def _html5(tree: etree._ElementTree) -> None:
    """What XHTML 1.1 has and HTML5 refuses: a table's ``summary`` becomes its ``aria-label``.

    Neither is shown; both are read by screen readers, so nothing is lost.
    """
    for table in tree.getroot().iter(f"{{{XHTML_NS}}}table"):
        summary = table.attrib.pop("summary", "")
        if summary and not table.get("aria-label"):
            table.set("aria-label", summary)


def _units_in(
    document: SourceDocument, units: Sequence[tuple[int, int]], starts: list[int], prefix: str
) -> list[tuple[str, int, int]]:
    if not document.segments:
        return []
    low = document.segments[0][0]
    high = max(segment[1] for segment in document.segments)
    first = bisect.bisect_left(starts, low)
    stop = bisect.bisect_left(starts, high)
    return [(f"{prefix}{n + 1}", units[n][0], units[n][1]) for n in range(first, stop)]


def _link_css(tree: etree._ElementTree, href: str) -> None:
    head = tree.getroot().find(f"{{{XHTML_NS}}}head")
    if head is not None:
        link = etree.SubElement(head, f"{{{XHTML_NS}}}link", rel="stylesheet", type="text/css")
        link.set("href", href)


def _items(package: etree._Element) -> list[etree._Element]:
    return package.findall(f"{{{OPF_NS}}}manifest/{{{OPF_NS}}}item")


def _nav_item(package: etree._Element) -> etree._Element | None:
    return next((i for i in _items(package) if "nav" in (i.get("properties") or "").split()), None)


def _doctypes(
    archive: zipfile.ZipFile, package: etree._Element, opf_path: str, changed: dict[str, bytes]
) -> None:
    """Give every XHTML document EPUB 3's ``<!DOCTYPE html>`` (those kept as they were too)."""
    base = posixpath.dirname(opf_path)
    for item in _items(package):
        path = _item_path(base, item)
        if item.get("media-type") not in _XHTML_TYPES or path in changed:
            continue
        try:
            tree = parse_xhtml(archive.read(path))
        except (KeyError, etree.XMLSyntaxError):
            continue  # left as it was: epubcheck will name it
        _html5(tree)
        changed[path] = xhtml_bytes(tree)


def _nav_from_ncx(
    archive: zipfile.ZipFile,
    package: etree._Element,
    opf_path: str,
    front: Front,
    folder: str,
) -> bytes:
    """An EPUB 3 navigation document with the NCX's entries (nested as they were)."""
    base = posixpath.dirname(opf_path)
    nav_path = f"{folder}/nav.xhtml"
    entries = etree.Element(f"{{{XHTML_NS}}}ol")
    ncx_item = next(
        (i for i in _items(package) if i.get("media-type") == "application/x-dtbncx+xml"), None
    )
    if ncx_item is not None:
        ncx_path = _item_path(base, ncx_item)
        try:
            ncx = etree.fromstring(archive.read(ncx_path), _PARSER)
        except (KeyError, etree.XMLSyntaxError):
            ncx = None
        nav_map = ncx.find(f"{{{_NCX_NS}}}navMap") if ncx is not None else None
        if nav_map is not None:
            _points(nav_map, entries, ncx_path, nav_path)
    if not len(entries):  # no NCX: the spine, by file
        for itemref in package.iterfind(f"{{{OPF_NS}}}spine/{{{OPF_NS}}}itemref"):
            item = next((i for i in _items(package) if i.get("id") == itemref.get("idref")), None)
            if item is not None:
                path = _item_path(base, item)
                li = etree.SubElement(entries, f"{{{XHTML_NS}}}li")
                link = etree.SubElement(li, f"{{{XHTML_NS}}}a", href=relative(path, nav_path))
                link.text = posixpath.basename(path)
    return nav_document(front.title, front.language, entries)


def _points(parent: etree._Element, into: etree._Element, ncx_path: str, nav_path: str) -> None:
    """Copy the NCX's ``navPoint`` entries under ``parent`` as list items, nested as they are."""
    for point in parent.iterfind(f"{{{_NCX_NS}}}navPoint"):
        label_element = point.find(f"{{{_NCX_NS}}}navLabel")
        label = _text_of(label_element) if label_element is not None else ""
        content = point.find(f"{{{_NCX_NS}}}content")
        src = content.get("src") if content is not None else None
        if not src:
            continue
        path, _, fragment = src.partition("#")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(ncx_path), unquote(path)))
        href = relative(target, nav_path) + (f"#{fragment}" if fragment else "")
        item = etree.SubElement(into, f"{{{XHTML_NS}}}li")
        etree.SubElement(item, f"{{{XHTML_NS}}}a", href=href).text = label or "—"
        if point.find(f"{{{_NCX_NS}}}navPoint") is not None:
            nested = etree.SubElement(item, f"{{{XHTML_NS}}}ol")
            _points(point, nested, ncx_path, nav_path)


def _item_path(base: str, item: etree._Element) -> str:
    """The archive path of a manifest item (its href is a URL relative to the package)."""
    return posixpath.normpath(posixpath.join(base, unquote(item.get("href") or "")))


def _text_of(element: etree._Element) -> str:
    return " ".join("".join(str(part) for part in element.itertext()).split())


def _package(
    package: etree._Element,
    opf_path: str,
    *,
    front: Front,
    upgrade: bool,
    overlays: Sequence[tuple[str, str, int]],
    overlay_of: dict[str, str],
    added: Sequence[tuple[str, str, str, str | None]],
) -> bytes:
    """The package document with the overlays, the audio and (from EPUB 2) EPUB 3's rules."""
    metadata = package.find(f"{{{OPF_NS}}}metadata")
    manifest = package.find(f"{{{OPF_NS}}}manifest")
    if metadata is None or manifest is None:
        raise InputError("the EPUB's package has no metadata or manifest")
    base = posixpath.dirname(opf_path)
    if upgrade:
        package.set("version", "3.0")
        _epub3_metadata(metadata, package)
    for old in metadata.findall(f"{{{OPF_NS}}}meta[@property='dcterms:modified']"):
        metadata.remove(old)
    meta(metadata, "dcterms:modified", front.modified)
    overlay_metadata(metadata, overlays, narrator=front.narrator)
    for item in _items(package):
        path = _item_path(base, item)
        if path in overlay_of:
            item.set("media-overlay", overlay_of[path])
    for path, item_id, media_type, properties in added:
        item = etree.SubElement(manifest, f"{{{OPF_NS}}}item", id=item_id)
        item.set("href", relative(path, opf_path))
        item.set("media-type", media_type)
        if properties:
            item.set("properties", properties)
    etree.indent(package, space="  ")  # the package holds no mixed content: only layout changes
    return etree.tostring(package, xml_declaration=True, encoding="utf-8")


def _epub3_metadata(metadata: etree._Element, package: etree._Element) -> None:
    """Say an EPUB 2 package's metadata as EPUB 3 does; mark the cover image.

    A creator's ``opf:file-as`` and ``opf:role`` become ``file-as`` and ``role``
    metas refining it (EPUB 3.3, D.3 and D.5); other OPF 2 attributes
    (``opf:scheme``, ``opf:event``, ``xsi:type``) have no EPUB 3 form that
    keeps their meaning exactly and are dropped, as is every ``dc:date`` but
    the first (EPUB 3 takes one).
    """
    dates = 0
    for number, element in enumerate(list(metadata), 1):
        if not isinstance(element.tag, str):
            continue
        refinements = [
            (prop, element.get(f"{{{OPF_NS}}}{name}"))
            for name, prop in (("file-as", "file-as"), ("role", "role"))
            if element.get(f"{{{OPF_NS}}}{name}")
        ]
        for name in [str(name) for name in element.attrib]:
            if name.startswith((f"{{{OPF_NS}}}", "{http://www.w3.org/2001/XMLSchema-instance}")):
                del element.attrib[name]
        if refinements and element.tag in {f"{{{DC_NS}}}creator", f"{{{DC_NS}}}contributor"}:
            element_id = element.get("id") or f"readalong-creator-{number}"
            element.set("id", element_id)
            for prop, value in refinements:
                refinement = meta(metadata, prop, str(value), refines=f"#{element_id}")
                if prop == "role":
                    refinement.set("scheme", "marc:relators")
        if element.tag == f"{{{DC_NS}}}date":
            dates += 1
            if dates > 1:
                metadata.remove(element)
    cover = metadata.find(f"{{{OPF_NS}}}meta[@name='cover']")
    if cover is not None:
        for item in _items(package):
            if item.get("id") == cover.get("content") and (item.get("media-type") or "").startswith(
                "image/"
            ):
                item.set("properties", "cover-image")
