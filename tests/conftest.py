"""Fixtures shared by every test package: stores and real services.

Integration tests use real services (style.md). Each service fixture uses the
one configured in the environment when it answers, and otherwise starts its own
for the session (:mod:`ttsbatch.dev.services`); it never skips.

* Redis: ``redis_url`` (session: the server), ``redis_db_url`` (per test: an
  empty database of its own, flushed afterwards). Configure with ``REDIS_URL``.
* S3: ``s3_endpoint`` (session), ``s3_client`` (session), ``s3_store`` (per test:
  a fresh bucket, removed afterwards). Configure with ``TTSBATCH_TEST_S3_ENDPOINT``.
* ``local_store``: a store in the test's ``tmp_path``.

Add fixtures under their own heading below.
"""

from __future__ import annotations

import itertools
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from ttsbatch.dev.services import RedisServer, SeaweedFS, redis_reachable
from ttsbatch.storage.local import LocalStore
from ttsbatch.storage.s3 import MIN_PART_SIZE, S3Store, create_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# -- Redis --------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Redis server: ``REDIS_URL`` if it answers PING, else a throwaway one."""
    configured = os.environ.get("REDIS_URL")
    if configured and redis_reachable(configured):
        yield configured
        return
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


class _RedisDatabases:
    """Hands out database numbers of one server, round robin, skipping busy ones."""

    def __init__(self, url: str) -> None:
        self.url = url
        client = redis.Redis.from_url(url)
        try:
            base = int(client.connection_pool.connection_kwargs.get("db") or 0)
            try:
                databases = client.config_get("databases").get("databases")
            except redis.ResponseError:  # CONFIG is disabled on some managed servers
                databases = None
            count = int(databases) if databases else 16
        finally:
            client.close()
        # The configured database is left alone: it may be someone's data.
        self._cycle = itertools.cycle([db for db in range(count) if db != base])
        self._count = count - 1

    def url_of(self, db: int) -> str:
        parts = urllib.parse.urlsplit(self.url)
        query = urllib.parse.urlencode(
            [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "db"]
        )
        return parts._replace(path=f"/{db}", query=query).geturl()

    def acquire(self) -> str:
        """Return the URL of an empty database (only empty ones: never flush others' data)."""
        for db in itertools.islice(self._cycle, self._count):
            client = redis.Redis.from_url(self.url_of(db))
            try:
                if client.dbsize() == 0:
                    return self.url_of(db)
            finally:
                client.close()
        raise RuntimeError(f"no empty Redis database left at {self.url}")


@pytest.fixture(scope="session")
def _redis_databases(redis_url: str) -> _RedisDatabases:
    return _RedisDatabases(redis_url)


@pytest.fixture
def redis_db_url(_redis_databases: _RedisDatabases) -> Iterator[str]:
    """URL of an empty Redis database for this test alone; flushed after it."""
    url = _redis_databases.acquire()
    yield url
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# -- S3 -------------------------------------------------------------------------

#: Any key works on a SeaweedFS started without keys; boto3 still wants some.
_DUMMY_KEY = "ttsbatch-test"


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of an S3 server: ``TTSBATCH_TEST_S3_ENDPOINT``, else a SeaweedFS for the session."""
    configured = os.environ.get("TTSBATCH_TEST_S3_ENDPOINT")
    if configured:
        yield configured
        return
    with SeaweedFS(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server.endpoint_url


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> S3Client:
    """A client of ``s3_endpoint``; keys are passed explicitly, the environment is untouched."""
    use_env_keys = "TTSBATCH_TEST_S3_ENDPOINT" in os.environ and "AWS_ACCESS_KEY_ID" in os.environ
    key = None if use_env_keys else _DUMMY_KEY
    return create_client(
        endpoint_url=s3_endpoint, region="us-east-1", access_key_id=key, secret_access_key=key
    )


def remove_bucket(client: S3Client, bucket: str) -> None:
    """Delete a test bucket with its objects and unfinished uploads."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", ()):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
    for listing in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [item["Key"] for item in listing.get("Contents", ())]
        if keys:
            client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
            )
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def s3_store(s3_client: S3Client) -> Iterator[S3Store]:
    """An S3Store on a fresh bucket, prefix ``t/``, removed after the test.

    Its parts are 5 MiB (S3's minimum) so that multipart paths run on small objects.
    """
    store = S3Store(s3_client, f"ttsbatch-{uuid.uuid4().hex[:16]}", "t/", part_size=MIN_PART_SIZE)
    store.ensure_bucket()
    yield store
    remove_bucket(s3_client, store.bucket)


# -- local store ----------------------------------------------------------------


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    """A LocalStore rooted in the test's own folder."""
    return LocalStore(tmp_path / "store")


@pytest.fixture(autouse=True)
def own_chunk_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test has a chunk cache of its own (``ttsbatch synth`` keeps one by default):
    no test finds another's chunks, and none writes to the user's ~/.cache."""
    folder = tmp_path / "chunk-cache"
    monkeypatch.setenv("TTSBATCH_CACHE", str(folder))
    monkeypatch.delenv("TTSBATCH_CACHE_DIR", raising=False)
    return folder
