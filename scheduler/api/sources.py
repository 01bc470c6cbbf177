"""Inputs of a job become documents: inline text, uploads, and ``s3://`` sources.

Limits are checked here, before anything is planned, with messages that say
what to change.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.api.errors import InvalidRequestError, TooLargeError, UnsupportedError
from scheduler.ingest import ingest_bytes, ingest_text
from scheduler.ingest.formats import SUPPORTED, detect
from ttsbatch.errors import StorageError
from ttsbatch.models import Document
from ttsbatch.settings import ApiSettings
from ttsbatch.storage import Store
from ttsbatch.storage.s3 import S3Store, create_client


@dataclass(frozen=True, slots=True)
class Upload:
    """A file's bytes and name, as uploaded or read from a bucket."""

    filename: str
    data: bytes


def from_upload(upload: Upload) -> Document:
    """Ingest an uploaded file.

    Raises:
        UnsupportedError: the file's format is not one of txt, md, html, epub.
        InputError: the file is empty or malformed.
    """
    if detect(upload.filename, upload.data) is None:
        raise UnsupportedError(
            f"{upload.filename}: not a supported format; upload one of: {SUPPORTED}"
        )
    return ingest_bytes(upload.data, upload.filename)


def from_text(text: str, name: str) -> Document:
    """Ingest inline text."""
    return ingest_text(text, name)


def check_limits(documents: Sequence[Document], limits: ApiSettings) -> None:
    """Refuse a job over the configured size.

    Raises:
        TooLargeError: too many documents or characters, saying the limit.
    """
    if len(documents) > limits.max_documents_per_job:
        raise TooLargeError(
            f"{len(documents)} documents in one job; the limit is"
            f" {limits.max_documents_per_job}: split them over several jobs or use /v1/runs"
        )
    chars = sum(len(document.text) for document in documents)
    if chars > limits.max_chars_per_job:
        raise TooLargeError(
            f"{chars} characters in one job; the limit is {limits.max_chars_per_job}:"
            " split the text over several jobs or use /v1/runs"
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
