"""One store interface, two implementations: a local folder and S3.

The store is the source of truth of every job (architecture.md). Keys are
``/``-separated paths relative to the store's prefix (see :mod:`ttsbatch.keys`).
Writes are atomic: a reader sees a whole object or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ttsbatch.errors import ConfigError, StorageError


class Writer(Protocol):
    """A sink for a streamed object."""

    def write(self, data: bytes, /) -> int:
        """Append ``data``; return the number of bytes taken."""
        ...


@dataclass(frozen=True, slots=True)
class ObjectPart:
    """A stored object to copy whole into a composed object; ``size`` is checked."""

    key: str
    size: int


@dataclass(frozen=True, slots=True)
class Stored:
    """An object as a listing tells it: key, size and when it was last written."""

    key: str
    size: int
    modified: float  # seconds since the epoch


#: A piece of a composed object: literal bytes, or a stored object.
Part = bytes | ObjectPart


def check_part_size(part: ObjectPart, got: int) -> None:
    """Raise if an object copied into a composition was not the size expected of it."""
    if got != part.size:
        raise StorageError(
            f"{part.key} holds {got} bytes, expected {part.size}; it was changed or cut short",
            key=part.key,
        )


class Store(Protocol):
    """Objects by key. Implementations: :class:`LocalStore`, :class:`S3Store`."""

    url: str

    def exists(self, key: str) -> bool:
        """Return whether an object is stored at ``key``."""
        ...

    def read(self, key: str) -> bytes:
        """Return the whole object at ``key`` (raises StorageError if missing)."""
        ...

    def write(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Store ``data`` at ``key``.

        With ``if_absent``, write only if nothing is there yet and return
        whether this call wrote it (a conditional put).
        """
        ...

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Open ``key`` for streaming reads."""
        ...

    def open_range(self, key: str, start: int, end: int) -> AbstractContextManager[BinaryIO]:
        """Open bytes ``start`` to ``end`` (exclusive) of ``key`` for streaming reads.

        Only those bytes are fetched (a local seek; an S3 ranged GET). A range
        that runs past the object's end yields the bytes up to its end, and one
        that starts there or beyond yields none: callers that know the size get
        exactly what they ask for.

        Raises:
            StorageError: if ``key`` is missing, or the range is negative or reversed.
        """
        ...

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Return bytes ``start`` to ``end`` (exclusive) of ``key``, as :meth:`open_range` reads."""
        ...

    def open_write(self, key: str) -> AbstractContextManager[Writer]:
        """Stream an object into ``key``; it appears only when the block exits cleanly."""
        ...

    def compose(self, key: str, parts: Sequence[Part]) -> None:
        """Write ``key`` as the concatenation of ``parts``, atomically.

        This is how a document's audio is stitched: chunk objects with pauses
        between them. A local folder copies the files inside the kernel; S3
        fetches the objects a few ahead while the result is uploaded.

        Raises:
            StorageError: if a part is missing or not the size it should be.
        """
        ...

    def size(self, key: str) -> int:
        """Return the size in bytes of the object at ``key``."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Yield every key under ``prefix``, in lexicographic order."""
        ...

    def scan(self, prefix: str) -> Iterator[Stored]:
        """Yield every object under ``prefix`` with its size and time, in no set order.

        Unlike :meth:`list` it streams (a page at a time on S3): for sweeping
        large prefixes such as the chunk cache.
        """
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Delete ``keys``; missing keys are ignored."""
        ...

    def download(self, key: str, path: Path) -> None:
        """Copy the object at ``key`` to the local file ``path`` (atomically)."""
        ...


def check_range(key: str, start: int, end: int) -> None:
    """Raise if ``start``..``end`` is no byte range (negative, or reversed)."""
    if start < 0 or end < start:
        raise StorageError(f"{key}: bytes {start}..{end} are no range", key=key)


def open_store(url: str) -> Store:
    """Return the store for ``url``: ``s3://bucket/prefix`` or a local folder path.

    Raises:
        ConfigError: if the URL is empty or names an unsupported scheme.
    """
    if not url:
        raise ConfigError(
            "no store configured: set TTSBATCH_STORE (s3://bucket/prefix or a folder)"
        )
    if url.startswith("s3://"):
        from ttsbatch.storage.s3 import S3Store  # noqa: PLC0415 - boto3 loads only when used

        return S3Store.from_url(url)
    if "://" in url and not url.startswith("file://"):
        raise ConfigError(f"unsupported store URL {url!r}: use s3://bucket/prefix or a folder path")
    from ttsbatch.storage.local import LocalStore  # noqa: PLC0415 - symmetric with S3

    return LocalStore(Path(url.removeprefix("file://")))


def upload_file(store: Store, path: Path, key: str, *, block: int = 8 << 20) -> None:
    """Store the local file ``path`` under ``key``, streamed in blocks."""
    with path.open("rb") as source, store.open_write(key) as sink:
        while data := source.read(block):
            sink.write(data)
