"""A read-along book made from text (plain text, Markdown, HTML): XHTML written for it.

One content document per chapter (and one for what comes before the first
chapter), each paragraph a ``<p>`` (a chapter's title paragraph an ``<h2>``)
and each unit a ``<span id>``; a navigation document lists the chapters; the
package is EPUB 3 (https://www.w3.org/TR/epub-33/#sec-package-doc).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from ttsbatch.audio.readalong.parts import (
    CSS,
    DC_NS,
    EPUB_NS,
    OPF_NS,
    XHTML_NS,
    Audio,
    Front,
    duration,
    meta,
    nav_document,
    overlay_metadata,
    relative,
    root_element,
    smil,
    xhtml_bytes,
)
from ttsbatch.audio.readalong.timing import Clip, Spoken, by_document
from ttsbatch.models import Chapter, Cover

FOLDER = "EPUB"
OPF = f"{FOLDER}/package.opf"
_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class _Section:
    title: str
    char_start: int
    char_end: int


def generated_book(
    text: str,
    chapters: Sequence[Chapter],
    spoken: Spoken,
    *,
    front: Front,
    audio: Audio,
    cover: Cover | None,
    prefix: str,
) -> list[tuple[str, bytes | Path]]:
    """Return the archive's files (after the container): package, nav, CSS, text, overlays, audio."""
    sections = _sections(text, chapters, front.title)
    audio_path = f"{FOLDER}/audio/book.{audio.suffix}"
    units = [(f"{prefix}{number}", a, b) for number, (a, b) in enumerate(spoken.units, 1)]
    documents: list[tuple[str, bytes]] = []
    placed: list[Clip] = []
    owner: list[int] = []
    position = 0
    for number, section in enumerate(sections):
        path = f"{FOLDER}/text/c{number + 1:03d}.xhtml"
        mine = []
        while position < len(units) and units[position][1] < section.char_end:
            mine.append(units[position])
            position += 1
        documents.append((path, _section_xhtml(text, section, mine, front.language, path)))
        for unit_id, a, b in mine:
            clip = spoken.clip(a, b, unit_id)
            if clip is not None:
                placed.append(clip)
                owner.append(number)
    grouped = by_document(placed, owner, len(sections))
    files: list[tuple[str, bytes | Path]] = []
    overlays: list[tuple[str, str, int]] = []  # smil path, its id, duration
    for number, ((path, _), mine_clips) in enumerate(zip(documents, grouped, strict=True)):
        if not mine_clips:
            continue
        smil_path = f"{FOLDER}/overlays/c{number + 1:03d}.smil"
        files.append(
            (
                smil_path,
                smil(mine_clips, smil_path=smil_path, audio_path=audio_path, text_path=path),
            )
        )
        overlays.append((smil_path, f"mo-c{number + 1:03d}", duration(mine_clips)))
    nav_path = f"{FOLDER}/nav.xhtml"
    nav = nav_document(front.title, front.language, _toc(sections, documents, nav_path))
    opf = _package(
        front, documents, overlays, audio=(audio, audio_path), cover=cover, nav_path=nav_path
    )
    head: list[tuple[str, bytes | Path]] = [(OPF, opf), (nav_path, nav)]
    head.append((f"{FOLDER}/readalong.css", CSS))
    if cover is not None:
        head.append((f"{FOLDER}/cover.{cover.suffix}", cover.data))
    return [*head, *documents, *files, (audio_path, audio.path)]


def _sections(text: str, chapters: Sequence[Chapter], title: str) -> list[_Section]:
    """The content documents: what precedes the first chapter, then each chapter."""
    starts = [c for c in chapters if c.char_start < len(text)]
    sections: list[_Section] = []
    first = starts[0].char_start if starts else len(text)
    if text[:first].strip():
        sections.append(_Section(title, 0, first))
    for number, chapter in enumerate(starts):
        end = starts[number + 1].char_start if number + 1 < len(starts) else len(text)
        sections.append(_Section(chapter.title, chapter.char_start, end))
    return sections


def _section_xhtml(
    text: str, section: _Section, units: Sequence[tuple[str, int, int]], language: str, path: str
) -> bytes:
    root = root_element(f"{{{XHTML_NS}}}html", XHTML_NS)
    root.set("lang", language)
    root.set("{http://www.w3.org/XML/1998/namespace}lang", language)
    head = etree.SubElement(root, f"{{{XHTML_NS}}}head")
    etree.SubElement(head, f"{{{XHTML_NS}}}title").text = section.title
    etree.SubElement(
        head,
        f"{{{XHTML_NS}}}link",
        rel="stylesheet",
        type="text/css",
        href=relative(f"{FOLDER}/readalong.css", path),
    )
    body = etree.SubElement(root, f"{{{XHTML_NS}}}body")
    holder = etree.SubElement(body, f"{{{XHTML_NS}}}section")
    holder.set(f"{{{EPUB_NS}}}type", "chapter")
    position = 0
    start = section.char_start
    while start < section.char_end:
        end = text.find(_SEPARATOR, start, section.char_end)
        end = section.char_end if end < 0 else end
        paragraph = text[start:end].strip()
        if paragraph:
            tag = "h2" if start == section.char_start and paragraph == section.title else "p"
            element = etree.SubElement(holder, f"{{{XHTML_NS}}}{tag}")
            position = _fill(element, text, (start, end), units, position)
        start = end + len(_SEPARATOR)
    return xhtml_bytes(etree.ElementTree(root))


def _fill(
    element: etree._Element,
    text: str,
    span: tuple[int, int],
    units: Sequence[tuple[str, int, int]],
    position: int,
) -> int:
    """Write ``text[start:end]`` into ``element``, each unit inside it a span; return the next unit."""
    start, end = span
    cursor = start
    last: etree._Element | None = None

    def put(piece: str) -> None:
        if last is None:
            element.text = (element.text or "") + piece
        else:
            last.tail = (last.tail or "") + piece

    while position < len(units) and units[position][1] < end:
        unit_id, a, b = units[position]
        put(text[cursor:a])
        last = etree.SubElement(element, f"{{{XHTML_NS}}}span", id=unit_id)
        last.text = text[a:b]
        cursor = b
        position += 1
    put(text[cursor:end].rstrip())
    return position


def _toc(
    sections: Sequence[_Section], documents: Sequence[tuple[str, bytes]], nav_path: str
) -> etree._Element:
    entries = etree.Element(f"{{{XHTML_NS}}}ol")
    for section, (path, _) in zip(sections, documents, strict=True):
        item = etree.SubElement(entries, f"{{{XHTML_NS}}}li")
        link = etree.SubElement(item, f"{{{XHTML_NS}}}a", href=relative(path, nav_path))
        link.text = section.title
    return entries


def _package(
    front: Front,
    documents: Sequence[tuple[str, bytes]],
    overlays: Sequence[tuple[str, str, int]],
    *,
    audio: tuple[Audio, str],
    cover: Cover | None,
    nav_path: str,
) -> bytes:
    root = root_element(f"{{{OPF_NS}}}package", OPF_NS)
    root.set("version", "3.0")
    root.set("unique-identifier", "uid")
    root.set("{http://www.w3.org/XML/1998/namespace}lang", front.language)
    metadata = etree.SubElement(root, f"{{{OPF_NS}}}metadata", nsmap={"dc": DC_NS})
    etree.SubElement(metadata, f"{{{DC_NS}}}identifier", id="uid").text = front.identifier
    etree.SubElement(metadata, f"{{{DC_NS}}}title").text = front.title
    etree.SubElement(metadata, f"{{{DC_NS}}}language").text = front.language
    if front.author:
        etree.SubElement(metadata, f"{{{DC_NS}}}creator").text = front.author
    meta(metadata, "dcterms:modified", front.modified)
    overlay_metadata(metadata, overlays, narrator=front.narrator)
    if cover is not None:
        etree.SubElement(metadata, f"{{{OPF_NS}}}meta", name="cover", content="cover")
    manifest = etree.SubElement(root, f"{{{OPF_NS}}}manifest")

    def item(path: str, item_id: str, media_type: str, **extra: str) -> None:
        etree.SubElement(
            manifest,
            f"{{{OPF_NS}}}item",
            id=item_id,
            href=relative(path, OPF),
            attrib={"media-type": media_type, **extra},
        )

    item(nav_path, "nav", "application/xhtml+xml", properties="nav")
    item(f"{FOLDER}/readalong.css", "readalong-css", "text/css")
    if cover is not None:
        item(f"{FOLDER}/cover.{cover.suffix}", "cover", cover.media_type, properties="cover-image")
    overlay_of = {
        smil_path.rsplit("/", 1)[-1].removesuffix(".smil"): overlay_id
        for smil_path, overlay_id, _ in overlays
    }
    for path, _ in documents:
        name = path.rsplit("/", 1)[-1].removesuffix(".xhtml")
        extra = {"media-overlay": overlay_of[name]} if name in overlay_of else {}
        item(path, name, "application/xhtml+xml", **extra)
    for smil_path, overlay_id, _ in overlays:
        item(smil_path, overlay_id, "application/smil+xml")
    item(audio[1], "audio", audio[0].media_type)
    spine = etree.SubElement(root, f"{{{OPF_NS}}}spine")
    for path, _ in documents:
        name = path.rsplit("/", 1)[-1].removesuffix(".xhtml")
        etree.SubElement(spine, f"{{{OPF_NS}}}itemref", idref=name)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
