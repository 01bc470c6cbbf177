"""Ingestion: input files become a normalised :class:`~ttsbatch.models.Document`.

Plain text, Markdown, HTML/XHTML and EPUB are understood; the format comes from
the file extension, else from the content. Every reader produces paragraphs
and chapter starts, and :func:`.document.build_document` turns them into the
text every later offset indexes into: paragraphs separated by one blank line,
no other line breaks, single spaces, Unicode NFC. An EPUB also gives the
document its metadata and cover, a HTML page its title and author (see
:mod:`.metadata`).

Everything that can go wrong with an input is an :class:`InputError` (or an
:class:`UnsafeInputError` for hostile input) whose message names the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePath

from ttsbatch.errors import InputError
from ttsbatch.inputs import read_input
from ttsbatch.models import Document

from .decoding import decode_markup, decode_text
from .document import build_document
from .epub import read_epub
from .formats import SUPPORTED, Format, detect
from .html import read_html
from .markdown import read_markdown
from .metadata import Book
from .text import read_text

__all__ = ["ingest_bytes", "ingest_file", "ingest_text"]


def ingest_file(path: Path, *, keep_boilerplate: bool = False) -> Document:
    """Read and ingest the file at ``path``.

    Args:
        path: A .txt/.text, .md/.markdown, .html/.htm/.xhtml or .epub file; other
            names are recognised by their content.
        keep_boilerplate: Keep the Project Gutenberg licence header and footer.

    Raises:
        InputError: When the file is missing, unreadable, not a regular file (a FIFO,
            a socket, a device), empty or malformed.
        UnsafeInputError: When the file looks hostile.
    """
    path = Path(path)
    return ingest_bytes(read_input(path), path.name, keep_boilerplate=keep_boilerplate)


def ingest_bytes(data: bytes, filename: str, *, keep_boilerplate: bool = False) -> Document:
    """Ingest an uploaded file's bytes; ``filename`` chooses the format as in :func:`ingest_file`."""
    source_name = _file_name(filename)
    name = PurePath(source_name).stem or source_name
    if not data.strip():
        raise InputError(f"{source_name}: the file is empty: nothing to speak")
    kind = detect(source_name, data)
    if kind is None:
        raise InputError(f"{source_name}: not a supported format; supported: {SUPPORTED}")
    if kind is Format.EPUB:
        book = read_epub(data, source_name, keep_boilerplate=keep_boilerplate)
    elif kind is Format.HTML:
        markup = decode_markup(data, source_name)
        book = read_html(markup, source_name, keep_boilerplate=keep_boilerplate)
    else:
        text = _non_empty(decode_text(data, source_name), source_name)
        if kind is Format.MARKDOWN:
            book = Book(*read_markdown(text, source_name))
        else:
            book = Book(*read_text(text, keep_boilerplate=keep_boilerplate))
    document = build_document(
        book.blocks,
        book.starts,
        name=name,
        source_name=source_name,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    # Both are validated models already; model_copy does not copy the text. An
    # EPUB's bytes go with it: a read-along book keeps its XHTML (planning).
    epub = data if kind is Format.EPUB else None
    return document.model_copy(update={"info": book.info, "cover": book.cover, "epub": epub})


def ingest_text(text: str, name: str = "text") -> Document:
    """Ingest inline plain text; ``name`` becomes the document's name.

    Raises:
        InputError: When the text is empty or only whitespace.
    """
    blocks, starts = read_text(_non_empty(text, name))
    return build_document(
        blocks,
        starts,
        name=name,
        source_name=name,
        sha256=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
    )


def _non_empty(text: str, source_name: str) -> str:
    if not text.strip():
        raise InputError(f"{source_name}: the file is empty: nothing to speak")
    return text


def _file_name(filename: str) -> str:
    # Uploads may carry a client's path, with either kind of separator.
    return filename.replace("\\", "/").rsplit("/", 1)[-1] or "document"
