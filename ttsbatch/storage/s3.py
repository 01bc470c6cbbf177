"""The store on S3 or any S3-compatible server (SeaweedFS, MinIO, R2, GCS's S3 API).

Mirrors :class:`ttsbatch.storage.local.LocalStore`: keys are ``/``-separated
paths below a prefix, a reader sees a whole object or none, ``if_absent`` is a
conditional put, and every botocore error leaves as a :class:`StorageError`
that names the object and says what to do.

Docs relied on:

* Conditional writes (``If-None-Match: *`` -> 412 PreconditionFailed; 409
  ConditionalRequestConflict for a concurrent one, "retry on 409"):
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
* Multipart uploads (parts of 5 MiB or more but the last, at most 10,000 parts;
  abort frees the parts): https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html
* CompletedPart carries the part's ChecksumCRC32 when the upload was created
  with that algorithm: https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompletedPart.html
* Retry modes (``standard``: 3 attempts, broader retryable errors):
  https://docs.aws.amazon.com/boto3/latest/guide/retries.html
* Client config (``retries``, ``s3.addressing_style``, ``signature_version``):
  https://docs.aws.amazon.com/botocore/latest/reference/config.html
* ``list_objects_v2`` returns keys in UTF-8 binary order on AWS; SeaweedFS lists
  folder by folder instead (``a/b`` before ``a-b``), so :meth:`S3Store.list` sorts.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import posixpath
import shutil
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypedDict, cast

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ttsbatch.errors import (
    ConfigError,
    ObjectNotFoundError,
    StorageError,
    StoreAccessError,
    TransientStorageError,
)
from ttsbatch.storage import ObjectPart, Part, Stored, Writer, check_part_size, check_range
from ttsbatch.storage.files import temp_beside
from ttsbatch.storage.readahead import read_ahead

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType, ChecksumAlgorithmType
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MiB = 1024 * 1024
#: Multipart part size: memory held by one open_write is about this much.
DEFAULT_PART_SIZE = 8 * MiB
#: Parts of one object uploading at once (s3transfer's default concurrency is 10).
UPLOADS_IN_FLIGHT = 2
#: S3's smallest part (all but the last); SeaweedFS enforces it too.
MIN_PART_SIZE = 5 * MiB
#: Region used when neither AWS_REGION nor AWS_DEFAULT_REGION nor a profile sets one.
DEFAULT_REGION = "us-east-1"
#: delete_objects takes at most 1000 keys per request.
_DELETE_BATCH = 1000
#: Attempts at a conditional put that meets a concurrent one (409).
_CONFLICT_ATTEMPTS = 3
_COPY_CHUNK = 1 * MiB

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_BAD_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
)
_DENIED = frozenset({"403", "AccessDenied", "Forbidden"})


def create_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    max_attempts: int | None = None,
) -> S3Client:
    """Return an S3 client configured from arguments, then the standard AWS variables.

    boto3 itself reads ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` and the shared config
    files. On top of that: ``AWS_REGION`` is honoured (botocore reads only
    ``AWS_DEFAULT_REGION``), the region defaults to ``us-east-1``, addressing is
    path-style whenever an endpoint is set (S3-compatible servers rarely have
    wildcard DNS), retries use botocore's ``standard`` mode and presigned URLs
    are SigV4.
    """
    session = boto3.session.Session(
        aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key
    )
    region_name = region or os.environ.get("AWS_REGION") or session.region_name or DEFAULT_REGION
    custom_endpoint = (
        endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    config = Config(
        retries=(
            {"mode": "standard"}
            if max_attempts is None
            else {"mode": "standard", "total_max_attempts": max_attempts}
        ),
        signature_version="s3v4",
        s3={"addressing_style": "path"} if custom_endpoint else None,
    )
    return session.client("s3", endpoint_url=endpoint_url, region_name=region_name, config=config)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Store:
    """Objects under ``s3://bucket/prefix``; the client is passed in (see :func:`create_client`).

    Args:
        client: a boto3 S3 client (thread-safe; one per process is enough).
        bucket: the bucket name.
        prefix: a key prefix; ``"t"`` and ``"t/"`` both mean keys under ``t/``.
        part_size: multipart part size of :meth:`open_write`; S3 wants at least
            5 MiB (:data:`MIN_PART_SIZE`) for every part but the last.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "",
        *,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if not bucket:
            raise ConfigError("no S3 bucket given: use s3://bucket/prefix")
        if part_size < 1:
            raise ConfigError(f"S3 part size must be positive, not {part_size}")
        prefix = prefix.strip("/")
        if ".." in prefix.split("/"):
            raise ConfigError(f"S3 prefix {prefix!r} must not contain '..'")
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.part_size = part_size
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"

    @classmethod
    def from_url(
        cls, url: str, *, client: S3Client | None = None, part_size: int = DEFAULT_PART_SIZE
    ) -> S3Store:
        """Return the store for ``s3://bucket/prefix``, with a client from the environment.

        Raises:
            ConfigError: if ``url`` is not an ``s3://`` URL with a bucket.
        """
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError(f"invalid S3 store URL {url!r}: use s3://bucket/prefix")
        return cls(client or create_client(), parts.netloc, parts.path, part_size=part_size)

    # -- the Store protocol -------------------------------------------------

    def exists(self, key: str) -> bool:
        """Return whether an object is stored at ``key``."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return False
            raise _translate(self, exc, key) from exc
        except BotoCoreError as exc:
            raise _translate(self, exc, key) from exc
        return True

    def read(self, key: str) -> bytes:
        """Return the whole object at ``key``."""
        with self.open_read(key) as handle:
            return handle.read()

    def write(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Put ``data`` at ``key``; with ``if_absent``, only if nothing is there (412 -> False)."""
        full_key = self._key(key)
        attempt = 0
        while True:
            attempt += 1
            try:
                if if_absent:
                    self.client.put_object(
                        Bucket=self.bucket, Key=full_key, Body=data, IfNoneMatch="*"
                    )
                else:
                    self.client.put_object(Bucket=self.bucket, Key=full_key, Body=data)
            except ClientError as exc:
                code = _error_code(exc)
                if if_absent and code == "PreconditionFailed":
                    return False
                if (
                    if_absent
                    and code == "ConditionalRequestConflict"
                    and attempt < _CONFLICT_ATTEMPTS
                ):
                    # Another conditional put of this key is in flight; AWS says retry.
                    time.sleep(0.05 * attempt)
                    continue
                raise _translate(self, exc, key) from exc
            except BotoCoreError as exc:
                raise _translate(self, exc, key) from exc
            return True

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        """Stream the object at ``key`` (a buffered reader over the response body)."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            raise _translate(self, exc, key) from exc
        with io.BufferedReader(_BodyReader(self, key, response["Body"]), _COPY_CHUNK) as reader:
            yield reader

    @contextlib.contextmanager
    def open_range(self, key: str, start: int, end: int) -> Iterator[BinaryIO]:
        """Stream bytes ``start`` to ``end`` of ``key``: one GET with ``Range: bytes=start-(end-1)``.

        S3 answers a range that starts at or past the object's end with 416
        InvalidRange ("Range" in the GetObject API reference,
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, and
        RFC 9110 section 14.1.2): that is an empty read here, as on a local store.
        """
        check_range(key, start, end)
        body = self._get_range(key, start, end) if start < end else None
        if body is None:
            yield io.BytesIO()
            return
        with io.BufferedReader(_BodyReader(self, key, body), _COPY_CHUNK) as reader:
            yield reader

    def _get_range(self, key: str, start: int, end: int) -> StreamingBody | None:
        """Return the body of a ranged GET, or None if the range starts past the end."""
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end - 1}"
            )
        except ClientError as exc:
            if _error_code(exc) == "InvalidRange":
                return None
            raise _translate(self, exc, key) from exc
        except BotoCoreError as exc:
            raise _translate(self, exc, key) from exc
        return response["Body"]

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Return bytes ``start`` to ``end`` of ``key`` (one ranged GET)."""
        with self.open_range(key, start, end) as handle:
            return handle.read()

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[Writer]:
        """Stream into ``key`` in parts of ``part_size``; the object appears on clean exit.

        An object smaller than one part goes up in a single ``put_object``. If the
        block raises, the multipart upload is aborted and nothing appears.
        """
        writer = _MultipartWriter(self, key, self._key(key))
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.finish()

    def compose(self, key: str, parts: Sequence[Part]) -> None:
        """Upload ``key`` as the concatenation of ``parts``, fetching objects a few ahead.

        (S3's server-side UploadPartCopy cannot help: chunk objects are far
        smaller than its 5 MiB minimum part.)
        """
        objects = read_ahead(self.read, [p.key for p in parts if isinstance(p, ObjectPart)])
        with self.open_write(key) as sink:
            for part in parts:
                if isinstance(part, ObjectPart):
                    data = next(objects)
                    check_part_size(part, len(data))
                    sink.write(data)
                else:
                    sink.write(part)

    def size(self, key: str) -> int:
        """Return the size in bytes of the object at ``key``."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            raise _translate(self, exc, key) from exc
        return head["ContentLength"]

    def list(self, prefix: str) -> Iterator[str]:
        """Yield keys under ``prefix`` (relative to the store's prefix), sorted."""
        full_prefix = self._list_prefix(prefix)
        keys: builtins.list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full_prefix
            )
            for page in pages:
                keys.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", ()))
        except (ClientError, BotoCoreError) as exc:
            raise _translate(self, exc, prefix) from exc
        # Servers differ in order (SeaweedFS lists folder by folder): sort like LocalStore.
        yield from sorted(keys)

    def scan(self, prefix: str) -> Iterator[Stored]:
        """Yield objects under ``prefix`` with size and LastModified, a page (1000) at a time."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._list_prefix(prefix)
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix) :]
                    yield Stored(key, item["Size"], item["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as exc:
            raise _translate(self, exc, prefix) from exc

    def delete(self, keys: Iterable[str]) -> None:
        """Delete ``keys`` in batches of 1000; missing keys are ignored."""
        batch: builtins.list[str] = []
        for key in keys:
            batch.append(self._key(key))
            if len(batch) == _DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def download(self, key: str, path: Path) -> None:
        """Stream the object at ``key`` into ``path`` through a temp file and a rename."""
        with self.open_read(key) as source, temp_beside(path, key=key) as (target, tmp):
            shutil.copyfileobj(source, target, _COPY_CHUNK)
            target.flush()
            tmp.replace(path)

    # -- S3 only ----------------------------------------------------------------

    def presigned_url(self, key: str, expires: int = 3600) -> str:
        """Return a URL that GETs ``key`` without credentials for ``expires`` seconds."""
        try:
            return self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(self, exc, key) from exc

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (for ``ttsbatch dev`` and tests)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) not in {*_NOT_FOUND, "NoSuchBucket"}:
                raise _translate(self, exc, None) from exc
        except BotoCoreError as exc:
            raise _translate(self, exc, None) from exc
        else:
            return
        region = self.client.meta.region_name
        try:
            if region and region != "us-east-1":
                # us-east-1 is the one region that refuses an explicit LocationConstraint.
                self.client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={
                        "LocationConstraint": cast("BucketLocationConstraintType", region)
                    },
                )
            else:
                self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":  # lost a harmless race
                raise _translate(self, exc, None) from exc
        except BotoCoreError as exc:
            raise _translate(self, exc, None) from exc

    # -- internals --------------------------------------------------------------

    def _key(self, key: str) -> str:
        """Return the full S3 key of ``key``, refusing keys that leave the prefix.

        Keys are normalised like a path (``a//b``, ``a/./b`` -> ``a/b``), as the
        local store's files are and as SeaweedFS does itself.
        """
        normal = posixpath.normpath(key) if key else "."
        if key.startswith("/") or normal == ".." or normal.startswith("../"):
            raise StorageError(f"key {key!r} escapes the store root", key=key)
        if normal == ".":
            raise StorageError(f"key {key!r} names no object", key=key)
        return self.prefix + normal

    def _list_prefix(self, prefix: str) -> str:
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise StorageError(f"prefix {prefix!r} escapes the store root", key=prefix)
        return self.prefix + prefix

    def _delete_batch(self, full_keys: builtins.list[str]) -> None:
        try:
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in full_keys], "Quiet": True},
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(self, exc, full_keys[0][len(self.prefix) :]) from exc
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            key = first.get("Key", "")[len(self.prefix) :]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise StorageError(
                f"{self.url}/{key}: could not delete: {first.get('Code')}: {first.get('Message')}{more}",
                key=key,
            )


def _translate(store: S3Store, exc: Exception, key: str | None) -> StorageError:
    """Return the StorageError for a botocore error about ``key``, saying what to do.

    Its class says what the caller does next: a missing bucket or object, or
    refused credentials, will not pass by retrying; anything else might.
    """
    where = f"{store.url}/{key}" if key else store.url
    kind: type[StorageError] = TransientStorageError
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code == "NoSuchBucket":
            kind = StoreAccessError
            text = f"bucket {store.bucket} does not exist: create it or set TTSBATCH_STORE"
        elif code in _NOT_FOUND:
            kind = ObjectNotFoundError
            text = "no such object"
        elif code in _BAD_CREDENTIALS:
            kind = StoreAccessError
            text = (
                f"the S3 server rejected the credentials ({code}):"
                " check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        elif code in _DENIED:
            kind = StoreAccessError
            text = (
                "access denied: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, their"
                f" permissions, and that bucket {store.bucket} exists"
            )
        elif code in {"NoSuchUpload", "UploadCancelled"}:
            text = f"the multipart upload was aborted or expired ({code}): write again"
        else:
            message = exc.response.get("Error", {}).get("Message", "")
            text = f"{code}: {message}" if message else code or str(exc)
    elif isinstance(exc, NoCredentialsError | PartialCredentialsError):
        kind = StoreAccessError
        text = f"no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({exc})"
    elif isinstance(exc, BotoConnectionError):
        endpoint = store.client.meta.endpoint_url
        text = (
            f"cannot reach the S3 endpoint {endpoint}: check AWS_ENDPOINT_URL"
            " and that the server is running"
        )
    elif isinstance(exc, HTTPClientError):
        text = f"the connection to {store.client.meta.endpoint_url} failed: {exc}"
    else:
        text = str(exc)
    return kind(f"{where}: {text}", key=key)


class _BodyReader(io.RawIOBase):
    """A raw stream over a botocore ``StreamingBody`` that raises StorageError."""

    def __init__(self, store: S3Store, key: str, body: StreamingBody) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except BotoCoreError as exc:
            raise _translate(self._store, exc, self._key) from exc
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        # RawIOBase's default reads 8 KiB at a time; the body reads at once.
        try:
            return self._body.read()
        except BotoCoreError as exc:
            raise _translate(self._store, exc, self._key) from exc

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _ChecksumArgs(TypedDict, total=False):
    """The checksum argument of the multipart calls: none, or CRC32 on both."""

    ChecksumAlgorithm: ChecksumAlgorithmType


class _MultipartWriter:
    """The sink of :meth:`S3Store.open_write`: buffers one part, uploads full parts.

    Up to :data:`UPLOADS_IN_FLIGHT` parts upload at once in threads, so the
    caller keeps producing while S3 answers (boto3's low-level clients are
    thread-safe: "Multithreading or multiprocessing with clients" in the boto3
    guide). Memory is bounded by that many parts plus the one being filled.
    """

    def __init__(self, store: S3Store, key: str, full_key: str) -> None:
        self._store = store
        self._client = store.client
        self._key = key
        self._full_key = full_key
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._in_flight: deque[Future[CompletedPartTypeDef]] = deque()
        self._pool: ThreadPoolExecutor | None = None
        # As s3transfer does (TransferManager._add_operation_defaults): with default
        # checksums on, create the upload with CRC32 so that the parts' checksums,
        # which botocore adds, are accepted. (The stubs lack this attribute.)
        calculation = getattr(self._client.meta.config, "request_checksum_calculation", None)
        self._checksum: _ChecksumArgs = (
            {"ChecksumAlgorithm": "CRC32"} if calculation == "when_supported" else {}
        )

    def write(self, data: bytes, /) -> int:
        """Append ``data``; every full part starts uploading as soon as it is complete."""
        self._buffer += data
        size = self._store.part_size
        while len(self._buffer) >= size:
            self._submit_part(bytes(memoryview(self._buffer)[:size]))
            del self._buffer[:size]
        return len(data)

    def finish(self) -> None:
        """Publish the object: one put if no part was uploaded, else complete the upload."""
        if self._upload_id is None:
            try:
                self._client.put_object(
                    Bucket=self._store.bucket, Key=self._full_key, Body=bytes(self._buffer)
                )
            except (ClientError, BotoCoreError) as exc:
                raise _translate(self._store, exc, self._key) from exc
            return
        try:
            if self._buffer:
                self._submit_part(bytes(self._buffer))
                self._buffer.clear()
            while self._in_flight:
                self._parts.append(self._in_flight.popleft().result())
            self._client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self._full_key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except BaseException as exc:
            self.abort()
            if isinstance(exc, ClientError | BotoCoreError):
                raise _translate(self._store, exc, self._key) from exc
            raise
        finally:
            self._close_pool()

    def abort(self) -> None:
        """Drop the upload and its parts, if one was started."""
        self._buffer.clear()
        for future in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        self._close_pool()  # waits for parts already uploading, so none lands after the abort
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        # Best effort while another error propagates; a bucket lifecycle rule
        # (AbortIncompleteMultipartUpload) reaps whatever this misses.
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(
                Bucket=self._store.bucket, Key=self._full_key, UploadId=upload_id
            )

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _submit_part(self, data: bytes) -> None:
        if self._upload_id is None:
            try:
                created = self._client.create_multipart_upload(
                    Bucket=self._store.bucket, Key=self._full_key, **self._checksum
                )
            except (ClientError, BotoCoreError) as exc:
                raise _translate(self._store, exc, self._key) from exc
            self._upload_id = created["UploadId"]
            self._pool = ThreadPoolExecutor(UPLOADS_IN_FLIGHT, thread_name_prefix="s3-part")
        assert self._pool is not None  # noqa: S101 - created with the upload, just above
        if len(self._in_flight) >= UPLOADS_IN_FLIGHT:
            self._parts.append(self._in_flight.popleft().result())
        number = len(self._parts) + len(self._in_flight) + 1
        self._in_flight.append(self._pool.submit(self._upload_part, self._upload_id, number, data))

    def _upload_part(self, upload_id: str, number: int, data: bytes) -> CompletedPartTypeDef:
        try:
            response = self._client.upload_part(
                Bucket=self._store.bucket,
                Key=self._full_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                **self._checksum,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(self._store, exc, self._key) from exc
        part: CompletedPartTypeDef = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumCRC32" in response:
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        return part
