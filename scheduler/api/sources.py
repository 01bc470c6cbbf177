"""Inputs of a job become documents: inline text, uploads, and ``s3://`` sources.

Limits are checked here, before anything is planned, with messages that say
what to change: on a request's inputs as given (:func:`check_size`, a job
the API accepts) or on ingested documents (:func:`check_limits`, a run's jobs).
An uploaded cover image is checked here too (:func:`cover_of`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.api.errors import InvalidRequestError, TooLargeError, UnsupportedError
from scheduler.ingest import ingest_bytes, ingest_text
from scheduler.ingest.formats import SUPPORTED, detect
from scheduler.intake import Given, too_many_characters
from ttsbatch.errors import StorageError
from ttsbatch.models import MAX_COVER_BYTES, Cover, Document
from ttsbatch.settings import ApiSettings
from ttsbatch.storage import Store
from ttsbatch.storage.s3 import S3Store, create_client


@dataclass(frozen=True, slots=True)
class Upload:
    """A file's bytes and name, as uploaded or read from a bucket."""

    filename: str
    data: bytes
    field: str = "files"  # the form field: a document, or the job's ``cover``


def from_upload(upload: Upload) -> Document:
    """Ingest an uploaded file.

    Raises:
        UnsupportedError: the file's format is not one of txt, md, html, epub.
        InputError: the file is empty or malformed.
    """
    _check_format(upload.filename, upload.data)
    return ingest_bytes(upload.data, upload.filename)


def from_text(text: str, name: str) -> Document:
    """Ingest inline text."""
    return ingest_text(text, name)


#: A cover's type, told by its first bytes (its name and declared type are not trusted).


def cover_of(upload: Upload) -> Cover:
    """Return an uploaded cover image, a JPEG or a PNG (told by its bytes) of at most 20 MiB.

    Raises:
        InvalidRequestError: empty, too large, or neither a JPEG nor a PNG.
    """
    name = upload.filename
    if not upload.data:
        raise InvalidRequestError(f"cover {name}: the file is empty: upload a JPEG or PNG image")
    if len(upload.data) > MAX_COVER_BYTES:
        raise InvalidRequestError(
            f"cover {name}: {len(upload.data)} bytes; the limit is {MAX_COVER_BYTES}"
            " (20 MiB): upload a smaller image"
        )
    cover = Cover.sniff(upload.data)
    if cover is None:
        raise InvalidRequestError(f"cover {name}: not a JPEG or PNG image: upload one of those")
    return cover


def file_input(filename: str, data: bytes) -> Given:
    """Return an uploaded (or read) file as a job's input, its format known by name or content.

    Raises:
        UnsupportedError: not one of txt, md, html, epub.
        InputError: it is empty.
    """
    _check_format(filename, data)
    return Given.file(filename, data)


def _check_format(filename: str, data: bytes) -> None:
    if detect(filename, data) is None:
        raise UnsupportedError(f"{filename}: not a supported format; upload one of: {SUPPORTED}")


def check_limits(documents: Sequence[Document], limits: ApiSettings) -> None:
    """Refuse a job of ingested documents over the configured size.

    Raises:
        TooLargeError: too many documents or characters, saying the limit.
    """
    _check_count(len(documents), limits)
    chars = sum(len(document.text) for document in documents)
    if chars > limits.max_chars_per_job:
        raise TooLargeError(too_many_characters(chars, limits.max_chars_per_job))


def check_size(given: Sequence[Given], limits: ApiSettings) -> None:
    """Refuse at once what is over the documents limit, or surely over the characters limit.

    Inline text is counted as ingested (only when its raw length is over the
    limit: ingestion drops whitespace and markup); files are counted when planned.

    Raises:
        TooLargeError: saying the limit.
    """
    _check_count(len(given), limits)
    texts = [item for item in given if item.kind == "text"]
    if sum(len(item.data) for item in texts) <= limits.max_chars_per_job:
        return  # UTF-8 bytes are at least as many as characters
    chars = sum(
        len(ingest_text(item.data.decode("utf-8", "surrogatepass"), item.name).text)
        for item in texts
    )
    if chars > limits.max_chars_per_job:
        raise TooLargeError(too_many_characters(chars, limits.max_chars_per_job))


def _check_count(documents: int, limits: ApiSettings) -> None:
    if documents > limits.max_documents_per_job:
        raise TooLargeError(
            f"{documents} documents in one job; the limit is"
            f" {limits.max_documents_per_job}: split them over several jobs or use /v1/runs"
        )


def split_s3_url(url: str) -> tuple[str, str]:
    """Return (bucket, key or prefix) of ``s3://bucket/key``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise InvalidRequestError(f"{url!r} is not a valid URL: use s3://bucket/key") from None
    if parts.scheme != "s3" or not parts.netloc:
        raise InvalidRequestError(f"{url!r} is not an s3:// URL: use s3://bucket/key")
    return parts.netloc, parts.path.lstrip("/")


class SourceReader:
    """Reads ``s3://`` sources from the buckets the service is configured to read.

    Args:
        limits: the API settings (``TTSBATCH_API_SOURCE_BUCKETS``).
        store: the job store; its S3 client (and credentials) is reused.
    """

    def __init__(self, limits: ApiSettings, store: Store) -> None:
        self.buckets = {b.strip() for b in limits.source_buckets.split(",") if b.strip()}
        self._client = store.client if isinstance(store, S3Store) else None

    def _bucket(self, url: str) -> tuple[S3Store, str]:
        bucket, key = split_s3_url(url)
        if bucket not in self.buckets:
            allowed = ", ".join(sorted(self.buckets)) or "none"
            raise InvalidRequestError(
                f"{url}: the service may not read bucket {bucket!r} (allowed: {allowed});"
                " add it to TTSBATCH_API_SOURCE_BUCKETS or upload the file"
            )
        if self._client is None:
            self._client = create_client()
        return S3Store(self._client, bucket), key

    def list(self, url: str) -> list[str]:
        """Return the ``s3://`` URLs of the objects under a prefix (folders excluded)."""
        store, prefix = self._bucket(url)
        try:
            keys = [key for key in store.list(prefix) if not key.endswith("/")]
        except StorageError as exc:
            raise InvalidRequestError(f"{url}: cannot list the source ({exc})") from exc
        return [f"s3://{store.bucket}/{key}" for key in keys]

    def read(self, url: str, max_bytes: int) -> Upload:
        """Return one object's bytes.

        Raises:
            InvalidRequestError: missing or unreadable.
            TooLargeError: larger than ``max_bytes``.
        """
        store, key = self._bucket(url)
        try:
            if store.size(key) > max_bytes:
                raise TooLargeError(
                    f"{url} is larger than {max_bytes} bytes"
                    " (TTSBATCH_API_MAX_REQUEST_BYTES): split it"
                )
            data = store.read(key)
        except StorageError as exc:
            raise InvalidRequestError(f"{url}: cannot read the source ({exc})") from exc
        return Upload(key.rsplit("/", 1)[-1], data)
