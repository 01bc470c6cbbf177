"""Which reader an input goes to: by file extension, else by its content."""

from __future__ import annotations

import io
import zipfile
from enum import StrEnum
from pathlib import PurePath

from ttsbatch.errors import InputError

from .decoding import decode_text


class Format(StrEnum):
    """The input formats ingestion understands."""

    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"
    EPUB = "epub"


EXTENSIONS = {
    ".txt": Format.TEXT,
    ".text": Format.TEXT,
    ".md": Format.MARKDOWN,
    ".markdown": Format.MARKDOWN,
    ".html": Format.HTML,
    ".htm": Format.HTML,
    ".xhtml": Format.HTML,
    ".epub": Format.EPUB,
}
SUPPORTED = (
    "plain text (.txt, .text), Markdown (.md, .markdown), HTML (.html, .htm, .xhtml), EPUB (.epub)"
)
_ZIP = b"PK\x03\x04"
# Formats people try first (PDF, Word, RTF, images, audio, archives), refused by
# name rather than read as text in some 8-bit encoding.
_OTHER_MAGIC = (
    b"%PDF",
    b"\xd0\xcf\x11\xe0",
    b"{\\rtf",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"RIFF",
    b"ID3",
    b"OggS",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"Rar!",
)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<?xml", b"<!--", b"<head", b"<body")


def detect(filename: str, data: bytes) -> Format | None:
    """Return the format of ``data`` named ``filename``, or ``None`` if unsupported."""
    known = EXTENSIONS.get(PurePath(filename).suffix.lower())
    if known:
        return known
    if data.startswith(_OTHER_MAGIC):
        return None
    if data.startswith(_ZIP):
        return Format.EPUB if _is_epub(data) else None
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(_HTML_STARTS) and b"<html" in head:
        return Format.HTML
    try:
        decode_text(data, filename)
    except InputError:
        return None
    return Format.TEXT


def _is_epub(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "META-INF/container.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False
