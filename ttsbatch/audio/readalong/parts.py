"""The parts every read-along EPUB shares: Media Overlay documents, the highlight, the archive.

What they follow (EPUB 3.3, https://www.w3.org/TR/epub-33/ and EPUB Media
Overlays 3.3, https://www.w3.org/TR/epub-mediaoverlays-33/): a Media Overlay
document is SMIL 3 (``<smil version="3.0">``) whose ``<par>`` pairs a
``<text src="doc.xhtml#id">`` with an ``<audio src clipBegin clipEnd>``; the
package gives each overlay's ``media:duration`` (refining its manifest item)
and the whole book's, and ``media:active-class`` names the class a reading
system puts on the element being read. The archive's first entry is
``mimetype``, stored uncompressed (OCF 3.3, 4.3).
"""

from __future__ import annotations

import html.entities
import posixpath
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

from lxml import etree

from ttsbatch.audio.readalong.timing import Clip, clock

SMIL_NS: Final = "http://www.w3.org/ns/SMIL"
EPUB_NS: Final = "http://www.idpf.org/2007/ops"
XHTML_NS: Final = "http://www.w3.org/1999/xhtml"
OPF_NS: Final = "http://www.idpf.org/2007/opf"
DC_NS: Final = "http://purl.org/dc/elements/1.1/"
#: The class a reading system sets on the text being read (``media:active-class``).
ACTIVE_CLASS: Final = "readalong-active"
#: The stylesheet of the highlight; nothing else in it, so a page looks as it did until it plays.
CSS: Final = (
    f".{ACTIVE_CLASS} {{ background-color: #ffe27a; color: #1a1a1a; border-radius: 0.15em; }}\n"
).encode()
CONTAINER: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">\n'
    '  <rootfiles>\n    <rootfile full-path="{path}" media-type="application/oebps-package+xml"/>\n'
    "  </rootfiles>\n</container>\n"
)
MIMETYPE: Final = b"application/epub+zip"
#: Zip entries' time: a fixed one, so the same job writes the same bytes.
_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Audio:
    """The book's audio file: where it is, its media type and its name's suffix."""

    path: Path
    media_type: str  # audio/mpeg or audio/mp4, EPUB 3's core media types for audio
    suffix: str


def root_element(tag: str, namespace: str) -> etree._Element:
    """A document's root element, ``namespace`` its default one, with the ``epub`` prefix declared."""
    nsmap = {None: namespace, "epub": EPUB_NS}
    return etree.Element(tag, nsmap=nsmap)  # type: ignore[arg-type]  # lxml: None is the default


def relative(path: str, start_file: str) -> str:
    """Return archive path ``path`` as a URL relative to the folder of archive file ``start_file``.

    Hrefs are URLs: a space in a file's name is ``%20`` (OCF 3.3, 4.2.4).
    """
    return quote(posixpath.relpath(path, posixpath.dirname(start_file) or "."), safe="/")


def smil(clips: Sequence[Clip], *, smil_path: str, audio_path: str, text_path: str) -> bytes:
    """Return a Media Overlay document: one ``<par>`` per clip, in order.

    ``clips`` carry their targets as ids in ``text_path``; every path is an
    archive path, written relative to the SMIL file.
    """
    root = root_element(f"{{{SMIL_NS}}}smil", SMIL_NS)
    root.set("version", "3.0")
    body = etree.SubElement(root, f"{{{SMIL_NS}}}body")
    text_href, audio_href = relative(text_path, smil_path), relative(audio_path, smil_path)
    for number, clip in enumerate(clips, 1):
        par = etree.SubElement(body, f"{{{SMIL_NS}}}par", id=f"par{number}")
        etree.SubElement(par, f"{{{SMIL_NS}}}text", src=f"{text_href}#{clip.target}")
        etree.SubElement(
            par,
            f"{{{SMIL_NS}}}audio",
            src=audio_href,
            clipBegin=clock(clip.begin),
            clipEnd=clock(clip.end),
        )
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def duration(clips: Iterable[Clip]) -> int:
    """The audio an overlay plays, in µs: the sum of its clips."""
    return sum(clip.end - clip.begin for clip in clips)


def nav_document(title: str, language: str, entries: etree._Element) -> bytes:
    """Return an EPUB 3 navigation document whose table of contents is the list ``entries``."""
    root = root_element(f"{{{XHTML_NS}}}html", XHTML_NS)
    root.set("lang", language)
    root.set("{http://www.w3.org/XML/1998/namespace}lang", language)
    head = etree.SubElement(root, f"{{{XHTML_NS}}}head")
    etree.SubElement(head, f"{{{XHTML_NS}}}title").text = title
    body = etree.SubElement(root, f"{{{XHTML_NS}}}body")
    nav = etree.SubElement(body, f"{{{XHTML_NS}}}nav", id="toc")
    nav.set(f"{{{EPUB_NS}}}type", "toc")
    etree.SubElement(nav, f"{{{XHTML_NS}}}h1").text = "Contents"
    nav.append(entries)
    return xhtml_bytes(etree.ElementTree(root))


def xhtml_bytes(tree: etree._ElementTree) -> bytes:
    """Serialise an XHTML document as EPUB 3 wants it: UTF-8, ``<!DOCTYPE html>``.

    Named entities an EPUB 2 document took from its XHTML 1.1 DTD (``&nbsp;``)
    become their characters: under ``<!DOCTYPE html>`` nothing declares them,
    and a reading system would refuse the document (epubcheck's RSC-016).
    """
    for entity in list(tree.iter(etree.Entity)):
        _inline(entity)
    return etree.tostring(tree, xml_declaration=True, encoding="utf-8", doctype="<!DOCTYPE html>")


def _inline(entity: etree._Entity) -> None:
    """Replace an entity reference with its character (kept as written if unknown)."""
    name = entity.text.strip("&;")
    code = html.entities.name2codepoint.get(name)
    text = (chr(code) if code is not None else entity.text) + (entity.tail or "")
    parent = entity.getparent()
    if parent is None:
        return
    previous = entity.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + text
    else:
        parent.text = (parent.text or "") + text
    parent.remove(entity)


def write_archive(out: Path, files: Iterable[tuple[str, bytes | Path]], *, opf_path: str) -> None:
    """Write the EPUB: ``mimetype`` first and stored, the container, then ``files`` in order.

    Audio (a :class:`~pathlib.Path`) is copied in stored, block by block: it is
    compressed already, and a book's audio is not held in memory.
    """
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(_info("mimetype", zipfile.ZIP_STORED), MIMETYPE)
        archive.writestr(
            _info("META-INF/container.xml", zipfile.ZIP_DEFLATED),
            CONTAINER.format(path=opf_path).encode(),
        )
        for name, data in files:
            if isinstance(data, Path):
                info = _info(name, zipfile.ZIP_STORED)
                info.file_size = data.stat().st_size  # zip64 only when it needs it
                with data.open("rb") as source, archive.open(info, "w") as sink:
                    while block := source.read(1 << 20):
                        sink.write(block)
            else:
                archive.writestr(_info(name, zipfile.ZIP_DEFLATED), data)


def _info(name: str, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, _ZIP_TIME)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    return info


@dataclass(frozen=True, slots=True)
class Front:
    """What the package says of the book."""

    title: str
    language: str
    identifier: str
    modified: str  # CCYY-MM-DDThh:mm:ssZ
    author: str | None = None
    narrator: str | None = None


def meta(
    metadata: etree._Element, prop: str, value: str, refines: str | None = None
) -> etree._Element:
    """Add an EPUB 3 ``<meta property>`` (refining ``refines``, an id with ``#``); return it."""
    element = etree.SubElement(metadata, f"{{{OPF_NS}}}meta", property=prop)
    if refines:
        element.set("refines", refines)
    element.text = value
    return element


def overlay_metadata(
    metadata: etree._Element, overlays: Sequence[tuple[str, str, int]], *, narrator: str | None
) -> None:
    """Add each overlay's ``media:duration``, the book's, the active class and the narrator."""
    for _, overlay_id, length in overlays:
        meta(metadata, "media:duration", clock(length), refines=f"#{overlay_id}")
    meta(metadata, "media:duration", clock(sum(length for _, _, length in overlays)))
    if narrator:
        meta(metadata, "media:narrator", narrator)
    meta(metadata, "media:active-class", ACTIVE_CLASS)
