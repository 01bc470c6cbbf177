"""Reading members of an untrusted zip archive (an EPUB) within fixed bounds.

Refused before anything is read: member names with ``..`` or an absolute path,
more members than any book has, a declared total beyond
:data:`MAX_TOTAL_BYTES`, and a large member compressed more than
:data:`MAX_RATIO` to one. While reading, every byte is counted against the
same total, so a header that lies about sizes cannot get past it either;
zipfile itself stops at the declared size and checks the CRC.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from typing import Final

from ttsbatch.errors import InputError, UnsafeInputError

MAX_TOTAL_BYTES: Final = 200 * 1024 * 1024
MAX_RATIO: Final = 100
MAX_MEMBERS: Final = 20_000
# Small members may compress very well (a page of spaces); the ratio only
# matters once a member is big enough to hurt.
_RATIO_FLOOR: Final = 1024 * 1024
_CHUNK: Final = 64 * 1024


class Archive:
    """An opened zip archive whose members are read with a byte budget."""

    def __init__(self, data: bytes, source_name: str) -> None:
        """Open and vet the archive.

        Raises:
            InputError: When ``data`` is not a zip archive.
            UnsafeInputError: When a name, a size or a ratio is hostile.
        """
        self._source_name = source_name
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
            raise InputError(f"{source_name}: not a valid EPUB (not a zip archive)") from None
        infos = self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise self._unsafe(f"it has {len(infos)} files, more than {MAX_MEMBERS}")
        for info in infos:
            if _escapes(info.filename):
                raise self._unsafe(f"it holds a file outside the book: {info.filename!r}")
            if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(
                1, info.compress_size
            ):
                raise self._unsafe(
                    f"{info.filename!r} expands {info.file_size // max(1, info.compress_size)} "
                    "times (a zip bomb?)"
                )
        declared = sum(info.file_size for info in infos)
        if declared > MAX_TOTAL_BYTES:
            raise self._unsafe(f"it unpacks to {declared} bytes, more than {MAX_TOTAL_BYTES}")
        self._budget = MAX_TOTAL_BYTES
        self._by_name = {info.filename: info for info in infos}
        self._by_folded = {name.casefold(): info for name, info in self._by_name.items()}

    def has(self, path: str) -> bool:
        """Return whether the archive holds ``path`` (exactly, or but for case)."""
        return path in self._by_name or path.casefold() in self._by_folded

    def read(self, path: str, what: str) -> bytes:
        """Return the bytes of member ``path``.

        Args:
            path: The member's name inside the archive.
            what: What the member is, for the error message ("the package file").

        Raises:
            InputError: When the member is missing or corrupt.
            UnsafeInputError: When reading it would exceed the byte budget.
        """
        info = self._by_name.get(path) or self._by_folded.get(path.casefold())
        if info is None:
            raise InputError(
                f"{self._source_name}: not a valid EPUB ({what} {path} is missing from the archive)"
            )
        chunks: list[bytes] = []
        try:
            with self._zip.open(info) as member:
                while chunk := member.read(_CHUNK):
                    self._budget -= len(chunk)
                    if self._budget < 0:
                        raise self._unsafe(f"it unpacks to more than {MAX_TOTAL_BYTES} bytes")
                    chunks.append(chunk)
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            NotImplementedError,
            RuntimeError,
        ) as error:
            raise InputError(
                f"{self._source_name}: not a valid EPUB ({path} cannot be unpacked: {error})"
            ) from None
        return b"".join(chunks)

    def _unsafe(self, reason: str) -> UnsafeInputError:
        return UnsafeInputError(f"{self._source_name}: refused: {reason}")


def _escapes(name: str) -> bool:
    """Return whether a member name is absolute or climbs out of the archive."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in posixpath.normpath(name).split("/") or ".." in name.split("/")
