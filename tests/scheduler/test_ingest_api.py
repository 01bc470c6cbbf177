"""The public ingestion API: files, uploads and inline text, and format dispatch."""

from __future__ import annotations

import hashlib
import io
import socket
import struct
import zipfile
from pathlib import Path

import pytest

from scheduler.ingest import ingest_bytes, ingest_file, ingest_text
from ttsbatch.errors import InputError


def test_a_file_becomes_a_document_named_after_it(tmp_path: Path) -> None:
    data = b"Chapter 1\n\nHello there.\n"
    path = tmp_path / "book.txt"
    path.write_bytes(data)
    document = ingest_file(path)
    assert document.name == "book"
    assert document.source_name == "book.txt"
    assert document.source_sha256 == hashlib.sha256(data).hexdigest()
    assert document.text == "Chapter 1\n\nHello there."
    assert [(c.title, c.char_start, c.char_end) for c in document.chapters] == [
        ("Chapter 1", 0, len(document.text))
    ]


def test_a_missing_file_is_an_input_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(InputError, match=rf"^{path}: no such file$"):
        ingest_file(path)


def test_a_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"is a directory"):
        ingest_file(tmp_path)


def test_a_socket_is_refused_as_not_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        with pytest.raises(InputError, match=rf"^{path}: is a socket, not a regular file"):
            ingest_file(path)


def test_a_device_is_refused_as_not_a_regular_file() -> None:
    with pytest.raises(InputError, match=r"^/dev/zero: is a device, not a regular file"):
        ingest_file(Path("/dev/zero"))


def test_a_text_with_a_few_stray_nul_bytes_is_read_without_them(tmp_path: Path) -> None:
    path = tmp_path / "scraped.txt"
    line = b"It was a dark and stormy night; the rain fell in torrents. " * 10
    path.write_bytes(line + b"\x00" + line + b"\x00\x00\n\n" + line * 5 + b"\x00")
    line = "It was a dark and stormy night; the rain fell in torrents. " * 10
    assert ingest_file(path).text == f"{(line * 2).strip()}\n\n{(line * 5).strip()}"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (struct.pack("<256I", *range(256)) * 16, "contains NUL bytes"),  # integers
        (bytes(range(256)) * 64, "not text"),  # a few NULs among every other byte
    ],
)
def test_a_binary_file_with_nul_bytes_is_still_refused(data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        ingest_bytes(data, "blob.txt")


def test_inline_text_is_named_and_hashed_as_utf8() -> None:
    document = ingest_text("Héllo.", name="note")
    assert (document.name, document.source_name) == ("note", "note")
    assert document.source_sha256 == hashlib.sha256("Héllo.".encode()).hexdigest()
    assert ingest_text("Hi.").name == "text"


def test_an_upload_with_a_client_path_keeps_only_the_file_name() -> None:
    document = ingest_bytes(b"Hi.", "C:\\Users\\me\\notes.text")
    assert (document.name, document.source_name) == ("notes", "notes.text")


@pytest.mark.parametrize(
    ("filename", "data", "text"),
    [
        ("a.md", b"# Title\n\n*Hi* there.", "Title\n\nHi there."),
        ("a.markdown", b"Hi *there*.", "Hi there."),
        ("a.html", b"<p>Hi <b>there</b>.</p>", "Hi there."),
        ("a.htm", b"<p>Hi.</p>", "Hi."),
        ("a.XHTML", b"<html><body><p>Hi.</p></body></html>", "Hi."),
        ("a.txt", b"# Not markdown *here*", "# Not markdown *here*"),
    ],
)
def test_the_extension_chooses_the_format(filename: str, data: bytes, text: str) -> None:
    assert ingest_bytes(data, filename).text == text


def test_without_a_known_extension_html_is_recognised_by_its_content() -> None:
    data = b"<!DOCTYPE html>\n<html><body><p>Hi <i>you</i>.</p></body></html>"
    assert ingest_bytes(data, "upload").text == "Hi you."


def test_without_a_known_extension_an_epub_is_recognised_by_its_content() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("META-INF/container.xml", "<container/>")
    # Read as an EPUB: the error is about the EPUB's insides, not the format.
    with pytest.raises(
        InputError, match=r"^upload\.bin: not a valid EPUB \(.*names no package file"
    ):
        ingest_bytes(buffer.getvalue(), "upload.bin")


def test_without_a_known_extension_text_is_read_as_plain_text() -> None:
    assert ingest_bytes("Just words — here.".encode(), "README").text == "Just words — here."


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("paper.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\x00\x00\x01binary"),
        ("sheet.xlsx", b"PK\x03\x04" + bytes(range(256)) * 4),
        ("blob", bytes(range(256)) * 8),
    ],
)
def test_an_unknown_format_names_the_file_and_the_supported_formats(
    filename: str, data: bytes
) -> None:
    with pytest.raises(
        InputError, match=rf"^{filename}: not a supported format; supported: .*\.epub"
    ):
        ingest_bytes(data, filename)
