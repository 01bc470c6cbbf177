"""The store contract, run on both stores (local folder and S3 on SeaweedFS), then S3 specifics."""

from __future__ import annotations

import errno
import os
import random
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from ttsbatch.dev.services import SeaweedFS, free_port
from ttsbatch.errors import (
    ConfigError,
    ObjectNotFoundError,
    StorageError,
    StoreAccessError,
    TransientStorageError,
)
from ttsbatch.storage import ObjectPart, Store, open_store
from ttsbatch.storage.s3 import MIN_PART_SIZE, S3Store, create_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
#: Credentials for a SeaweedFS started without keys (it takes any) and for one with keys.
ANY_KEY = "ttsbatch-test"
RIGHT_KEY, WRONG_KEY = "right-key", "wrong-key"


@pytest.fixture(params=["local_store", "s3_store"])
def store(request: pytest.FixtureRequest) -> Store:
    """Each contract test runs once per store."""
    result: Store = request.getfixturevalue(request.param)
    return result


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def uploads_in_progress(store: Store) -> list[Any]:
    """Unfinished multipart uploads of an S3 store's bucket (none exist for a local one)."""
    if not isinstance(store, S3Store):
        return []
    return list(store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []))


# -- the contract ------------------------------------------------------------


def test_a_written_object_reads_back_whole_with_its_size(store: Store) -> None:
    data = payload(1000)
    assert store.write("jobs/j1/manifest.json", data) is True
    assert store.exists("jobs/j1/manifest.json")
    assert store.read("jobs/j1/manifest.json") == data
    assert store.size("jobs/j1/manifest.json") == 1000


def test_an_empty_object_is_an_object(store: Store) -> None:
    store.write("empty", b"")
    assert store.exists("empty")
    assert store.read("empty") == b""
    assert store.size("empty") == 0


def test_writing_again_replaces_the_object(store: Store) -> None:
    store.write("k", b"first")
    assert store.write("k", b"second") is True
    assert store.read("k") == b"second"


def test_a_missing_key_does_not_exist_and_reading_it_raises_object_not_found(
    store: Store, tmp_path: Path
) -> None:
    assert not store.exists("nope/missing.bin")
    for attempt in (
        lambda: store.read("nope/missing.bin"),
        lambda: store.size("nope/missing.bin"),
        lambda: store.download("nope/missing.bin", tmp_path / "out.bin"),
    ):
        with pytest.raises(ObjectNotFoundError) as caught:
            attempt()
        assert caught.value.key == "nope/missing.bin"
        assert "nope/missing.bin" in str(caught.value)
    with pytest.raises(ObjectNotFoundError), store.open_read("nope/missing.bin"):
        pass
    assert not (tmp_path / "out.bin").exists()


def test_a_conditional_write_to_a_taken_key_returns_false_and_keeps_the_content(
    store: Store,
) -> None:
    assert store.write("out/doc.wav", b"first", if_absent=True) is True
    assert store.write("out/doc.wav", b"second", if_absent=True) is False
    assert store.read("out/doc.wav") == b"first"


def test_of_racing_conditional_writers_exactly_one_wins(store: Store) -> None:
    writers = 8
    barrier = threading.Barrier(writers)
    results: dict[int, bool] = {}

    def write(n: int) -> None:
        barrier.wait()
        results[n] = store.write("final.marker", f"writer {n}".encode(), if_absent=True)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, won in results.items() if won]
    assert len(results) == writers
    assert len(winners) == 1
    assert store.read("final.marker") == f"writer {winners[0]}".encode()


def test_open_write_streams_an_object_of_several_parts(store: Store) -> None:
    data = payload(12 * MiB + 12345, seed=1)
    with store.open_write("out/book.wav") as sink:
        for start in range(0, len(data), 700_001):  # writes that straddle part borders
            sink.write(data[start : start + 700_001])
    assert store.size("out/book.wav") == len(data)
    assert store.read("out/book.wav") == data
    assert uploads_in_progress(store) == []


def test_open_write_of_a_small_object_stores_it(store: Store) -> None:
    with store.open_write("small.txt") as sink:
        sink.write(b"hello ")
        sink.write(b"world")
    assert store.read("small.txt") == b"hello world"


def test_open_write_shows_nothing_until_the_block_exits(store: Store) -> None:
    with store.open_write("out/book.wav") as sink:
        sink.write(payload(6 * MiB))
        assert not store.exists("out/book.wav")
    assert store.exists("out/book.wav")


@pytest.mark.parametrize("size", [100, 11 * MiB], ids=["under-one-part", "several-parts"])
def test_open_write_leaves_nothing_when_the_block_raises(store: Store, size: int) -> None:
    store.write("out/other.wav", b"untouched")
    with (
        pytest.raises(RuntimeError, match="encoder broke"),
        store.open_write("out/book.wav") as sink,
    ):
        sink.write(payload(size))
        raise RuntimeError("encoder broke")
    assert not store.exists("out/book.wav")
    assert list(store.list("out/")) == ["out/other.wav"]
    assert uploads_in_progress(store) == []


def test_open_write_replaces_an_existing_object_only_on_success(store: Store) -> None:
    store.write("out/book.wav", b"old")
    with pytest.raises(RuntimeError), store.open_write("out/book.wav") as sink:
        sink.write(b"new")
        raise RuntimeError
    assert store.read("out/book.wav") == b"old"
    with store.open_write("out/book.wav") as sink:
        sink.write(b"new")
    assert store.read("out/book.wav") == b"new"


def test_compose_concatenates_literal_bytes_and_stored_objects(store: Store) -> None:
    first, second = payload(3 * MiB + 5, seed=1), payload(100, seed=2)
    store.write("parts/a", first)
    store.write("parts/b", second)
    store.compose(
        "whole",
        [b"head", ObjectPart("parts/a", len(first)), b"\x00" * 7, ObjectPart("parts/b", 100)],
    )
    assert store.read("whole") == b"head" + first + b"\x00" * 7 + second
    store.compose("again", [ObjectPart("parts/b", 100)] * 3)
    assert store.read("again") == second * 3


def test_compose_refuses_an_object_of_the_wrong_size_and_writes_nothing(store: Store) -> None:
    store.write("parts/a", b"12345")
    with pytest.raises(StorageError, match=r"parts/a holds 5 bytes, expected 6"):
        store.compose("whole", [b"x", ObjectPart("parts/a", 6)])
    assert not store.exists("whole")
    assert uploads_in_progress(store) == []


def test_compose_of_a_missing_object_names_it_and_writes_nothing(store: Store) -> None:
    with pytest.raises(StorageError, match="parts/none"):
        store.compose("whole", [b"x", ObjectPart("parts/none", 1)])
    assert not store.exists("whole")


def test_open_read_streams_the_object_in_pieces(store: Store) -> None:
    data = payload(3 * MiB + 7, seed=2)
    store.write("chunks/d/000001.pcm", data)
    pieces = []
    with store.open_read("chunks/d/000001.pcm") as handle:
        while piece := handle.read(1 * MiB):
            pieces.append(piece)
    assert [len(piece) for piece in pieces] == [MiB, MiB, MiB, 7]
    assert b"".join(pieces) == data


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 10), (5, 6), (1000, 2_500_000), (2_999_990, 3_000_000), (7, 7), (2_999_999, 3_000_000)],
)
def test_a_range_reads_exactly_those_bytes(store: Store, start: int, end: int) -> None:
    data = payload(3_000_000, seed=3)
    store.write("out/book.wav", data)
    assert store.read_range("out/book.wav", start, end) == data[start:end]
    with store.open_range("out/book.wav", start, end) as stream:
        pieces = []
        while piece := stream.read(65536):
            assert len(piece) <= 65536
            pieces.append(piece)
    assert b"".join(pieces) == data[start:end]


def test_a_range_past_the_end_reads_what_is_there(store: Store) -> None:
    store.write("out/book.wav", b"0123456789")
    assert store.read_range("out/book.wav", 8, 20) == b"89"
    assert store.read_range("out/book.wav", 10, 20) == b""
    assert store.read_range("out/book.wav", 30, 40) == b""


def test_a_range_of_a_missing_object_raises_object_not_found(store: Store) -> None:
    with pytest.raises(ObjectNotFoundError, match="nothing/here"):
        store.read_range("nothing/here", 0, 10)


def test_a_reversed_range_is_refused(store: Store) -> None:
    store.write("out/book.wav", b"0123456789")
    with pytest.raises(StorageError, match="no range"):
        store.read_range("out/book.wav", 5, 4)


def test_list_yields_keys_under_a_prefix_in_lexicographic_order(store: Store) -> None:
    # SeaweedFS lists folder by folder ("d/a/b" before "d/a-b"): the store sorts.
    keys = ["d/a/b", "d/a-b", "d/a b", "d/a0", "d/a/c", "d/é", "d/z", "e/x", "top"]
    for key in keys:
        store.write(key, key.encode())
    assert list(store.list("d/")) == sorted(k for k in keys if k.startswith("d/"))
    assert list(store.list("")) == sorted(keys)
    assert list(store.list("absent/")) == []


def test_list_takes_a_prefix_of_file_names(store: Store) -> None:
    for n in (1, 2, 10, 11):
        store.write(f"chunks/d/{n:06d}.pcm", b"x")
    assert list(store.list("chunks/d/00001")) == ["chunks/d/000010.pcm", "chunks/d/000011.pcm"]


def test_delete_removes_keys_and_ignores_missing_ones(store: Store) -> None:
    for key in ("a/1", "a/2", "a/3"):
        store.write(key, b"x")
    store.delete(["a/1", "a/3", "a/never-written"])
    assert list(store.list("a/")) == ["a/2"]
    store.delete([])
    store.delete(iter(["a/2"]))
    assert list(store.list("")) == []


def test_download_writes_the_object_to_a_new_file(store: Store, tmp_path: Path) -> None:
    data = payload(2 * MiB + 3, seed=3)
    store.write("out/doc.wav", data)
    target = tmp_path / "downloads" / "nested" / "doc.wav"
    store.download("out/doc.wav", target)
    assert target.read_bytes() == data
    store.write("out/doc.wav", b"newer")
    store.download("out/doc.wav", target)
    assert target.read_bytes() == b"newer"
    assert sorted(p.name for p in target.parent.iterdir()) == ["doc.wav"]


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd"])
def test_a_key_escaping_the_root_is_refused(store: Store, key: str) -> None:
    with pytest.raises(StorageError, match="escapes the store root"):
        store.write(key, b"x")
    with pytest.raises(StorageError, match="escapes the store root"):
        store.read(key)


# -- S3 specifics ------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["refuses", "absent"])
def test_a_local_compose_copies_plainly_where_the_kernel_cannot(
    local_store: Store, monkeypatch: pytest.MonkeyPatch, kernel: str
) -> None:
    def refuse(*_: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    if kernel == "refuses":
        monkeypatch.setattr(os, "copy_file_range", refuse)
    else:
        monkeypatch.delattr(os, "copy_file_range")
    data = payload(9 * MiB, seed=3)  # more than one copy block
    local_store.write("parts/a", data)
    local_store.compose("whole", [b"h", ObjectPart("parts/a", len(data))])
    assert local_store.read("whole") == b"h" + data


def test_an_s3_store_keeps_its_keys_under_its_prefix(s3_store: S3Store) -> None:
    s3_store.write("jobs/j1/manifest.json", b"{}")
    s3_store.client.put_object(Bucket=s3_store.bucket, Key="elsewhere/x", Body=b"x")
    keys = s3_store.client.list_objects_v2(Bucket=s3_store.bucket)["Contents"]
    assert sorted(item["Key"] for item in keys) == ["elsewhere/x", "t/jobs/j1/manifest.json"]
    assert list(s3_store.list("")) == ["jobs/j1/manifest.json"]
    assert s3_store.url == f"s3://{s3_store.bucket}/t"


def test_open_write_uploads_full_parts_while_the_block_runs(s3_store: S3Store) -> None:
    client, bucket = s3_store.client, s3_store.bucket
    with s3_store.open_write("out/book.wav") as sink:
        sink.write(payload(2 * MIN_PART_SIZE + 1))
        (upload,) = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
        deadline = time.monotonic() + 30  # parts upload in background threads
        sizes: list[int] = []
        while sizes != [MIN_PART_SIZE, MIN_PART_SIZE] and time.monotonic() < deadline:
            parts = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            sizes = [part["Size"] for part in parts.get("Parts", [])]
        assert sizes == [MIN_PART_SIZE, MIN_PART_SIZE]
    head = client.head_object(Bucket=bucket, Key="t/out/book.wav")
    assert head["ETag"].endswith('-3"')  # a multipart object of three parts


def test_open_write_puts_an_object_under_one_part_in_a_single_request(s3_store: S3Store) -> None:
    with s3_store.open_write("small.bin") as sink:
        sink.write(payload(MIN_PART_SIZE - 1))
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key="t/small.bin")
    assert "-" not in head["ETag"]


def test_delete_sends_at_most_1000_keys_per_request(s3_store: S3Store) -> None:
    s3_store.write("keep", b"x")
    s3_store.write("k/0001", b"x")
    sizes: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Delete"]["Objects"]))

    events = s3_store.client.meta.events
    events.register("provide-client-params.s3.DeleteObjects", count)
    try:
        s3_store.delete(f"k/{n:04d}" for n in range(2500))
    finally:
        events.unregister("provide-client-params.s3.DeleteObjects", count)
    assert sizes == [1000, 1000, 500]
    assert list(s3_store.list("")) == ["keep"]


def test_a_presigned_url_fetches_the_object_without_credentials(s3_store: S3Store) -> None:
    s3_store.write("out/doc.srt", b"1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    url = s3_store.presigned_url("out/doc.srt", expires=60)
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own http server
        assert response.read() == b"1\n00:00:00,000 --> 00:00:01,000\nHi\n"


def test_ensure_bucket_leaves_an_existing_bucket_and_its_objects(s3_store: S3Store) -> None:
    s3_store.write("k", b"x")
    s3_store.ensure_bucket()
    assert s3_store.read("k") == b"x"


def test_open_store_builds_an_s3_store_from_the_standard_aws_variables(
    s3_store: S3Store, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ANY_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ANY_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    store = open_store(f"s3://{s3_store.bucket}/t")
    assert isinstance(store, S3Store)
    assert store.url == s3_store.url
    assert store.client.meta.endpoint_url == s3_endpoint
    assert store.client.meta.config.s3 == {"addressing_style": "path"}  # type: ignore[attr-defined]
    store.write("via-env", b"x")
    assert s3_store.read("via-env") == b"x"


def test_the_region_comes_from_aws_region_then_aws_default_region_then_a_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/ttsbatch-test-config")
    assert create_client().meta.region_name == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert create_client().meta.region_name == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert create_client().meta.region_name == "eu-west-3"


def test_a_malformed_s3_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="s3://bucket/prefix"):
        S3Store.from_url("s3:///no-bucket")


def test_a_missing_bucket_says_to_create_it_or_set_ttsbatch_store(s3_client: S3Client) -> None:
    store = S3Store(s3_client, f"ttsbatch-missing-{uuid.uuid4().hex[:12]}", "t/")
    # A configuration error, said once: neither retried nor taken for a missing object.
    with pytest.raises(StoreAccessError, match="does not exist: create it or set TTSBATCH_STORE"):
        store.read("k")
    with pytest.raises(ConfigError, match="does not exist: create it or set TTSBATCH_STORE"):
        list(store.list(""))


def test_an_unreachable_endpoint_names_aws_endpoint_url() -> None:
    client = create_client(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id=ANY_KEY,
        secret_access_key=ANY_KEY,
        max_attempts=1,
    )
    store = S3Store(client, "bucket", "t/")
    with pytest.raises(
        TransientStorageError, match=r"cannot reach the S3 endpoint .* AWS_ENDPOINT_URL"
    ):
        store.read("k")
    with pytest.raises(TransientStorageError, match="AWS_ENDPOINT_URL"):
        store.write("k", b"x")


def test_missing_credentials_name_the_key_variables(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    # Keep boto3's credential chain off the network (instance metadata, containers).
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    store = S3Store(create_client(endpoint_url=s3_endpoint), "bucket", "t/")
    with pytest.raises(StoreAccessError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        store.read("k")


def test_rejected_credentials_name_the_key_variables(tmp_path: Path) -> None:
    with SeaweedFS(tmp_path, access_key_id=RIGHT_KEY, secret_access_key=RIGHT_KEY) as s3:
        good = S3Store(
            create_client(
                endpoint_url=s3.endpoint_url, access_key_id=RIGHT_KEY, secret_access_key=RIGHT_KEY
            ),
            "ttsbatch-auth",
        )
        good.ensure_bucket()
        good.write("k", b"x")
        bad = S3Store(
            create_client(
                endpoint_url=s3.endpoint_url, access_key_id=WRONG_KEY, secret_access_key=WRONG_KEY
            ),
            "ttsbatch-auth",
        )
        with pytest.raises(StoreAccessError, match="AWS_ACCESS_KEY_ID") as caught:
            bad.read("k")
        assert caught.value.key == "k"


def test_a_boto3_client_from_elsewhere_works_with_the_store(s3_store: S3Store) -> None:
    # Clients are passed in: one built by hand, without create_client, must do.
    endpoint = s3_store.client.meta.endpoint_url
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ANY_KEY,
        aws_secret_access_key=ANY_KEY,
    )
    store = S3Store(client, s3_store.bucket, "t", part_size=MIN_PART_SIZE)
    with store.open_write("big") as sink:
        sink.write(payload(6 * MiB))
    assert s3_store.size("big") == 6 * MiB
