"""The chunk cache: nothing is paid twice, on the local executor and on a worker.

Runs against the imitation provider, whose request log (the SHA-256 of every
text it was sent) shows what was paid for.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler import retention
from scheduler.ingest import ingest_bytes
from tests.ttsbatch.cached import put_chunk
from ttsbatch.cache import (
    ChunkCache,
    LocalChunkCache,
    UseLog,
    chunk_address,
    scan_entries,
    tenant_scope,
)
from ttsbatch.dev.fakeprovider import FakeProviderConfig, RunningProvider, run_in_thread
from ttsbatch.executors.local import run_local
from ttsbatch.executors.outputs import download_outputs
from ttsbatch.keys import CACHE_PREFIX, RedisKeys
from ttsbatch.models import Document, EngineSpec, JobOptions, Manifest
from ttsbatch.settings import CacheSettings, Settings, TogetherSettings
from ttsbatch.state import JobState
from ttsbatch.storage.local import LocalStore
from ttsbatch.storage.s3 import S3Store
from worker.synthesis import synthesize_chunk

KEY = "test-key"
ENGINE = EngineSpec(engine="together", model="hexgrad/Kokoro-82M", voice="af_heart")
OPTIONS = JobOptions(engine=ENGINE, max_chars=80)
PARAGRAPHS = [
    f"Paragraph {n} begins here. It has a second sentence, somewhat longer than the first."
    f" And a third one closes paragraph {n}."
    for n in range(1, 9)
]


def book(paragraphs: list[str]) -> Document:
    text = "# One\n\n" + "\n\n".join(paragraphs[:4]) + "\n\n# Two\n\n" + "\n\n".join(paragraphs[4:])
    return ingest_bytes(text.encode(), "book.md")


@pytest.fixture
def provider() -> Iterator[RunningProvider]:
    with run_in_thread(FakeProviderConfig()) as running:
        yield running


def sent(provider: RunningProvider) -> list[str]:
    """The SHA-256 of each text the provider was asked to speak, in order."""
    return [entry["text_sha256"] for entry in provider.state.log()]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def run(
    tmp_path: Path,
    name: str,
    document: Document,
    provider: RunningProvider,
    cache: ChunkCache | None,
) -> tuple[Manifest, dict[str, bytes]]:
    store = LocalStore(tmp_path / name / ".store")
    settings = Settings(together=TogetherSettings(base_url=provider.api_url, api_key=KEY))
    manifest = run_local([document], OPTIONS, store=store, settings=settings, jobs=4, cache=cache)
    files = download_outputs(store, manifest, tmp_path / name)
    return manifest, {path.name: path.read_bytes() for path in files}


def test_the_address_covers_what_changes_the_audio() -> None:
    base = chunk_address(ENGINE, "Hello there.")
    assert base == chunk_address(ENGINE.model_copy(), "Hello there.")
    assert base != chunk_address(ENGINE, "Hello there!")
    assert base != chunk_address(ENGINE.model_copy(update={"voice": "af_bella"}), "Hello there.")
    assert base != chunk_address(ENGINE.model_copy(update={"language": "en"}), "Hello there.")
    assert tenant_scope("a", shared=False) != tenant_scope("b", shared=False)
    assert tenant_scope("a", shared=True) == tenant_scope("b", shared=True) == "shared"


def test_the_same_text_again_is_not_sent_and_the_files_are_the_same(
    tmp_path: Path, provider: RunningProvider
) -> None:
    cache = LocalChunkCache(LocalStore(tmp_path / "cache"))
    first, first_files = run(tmp_path, "first", book(PARAGRAPHS), provider, cache)
    asked = len(sent(provider))
    assert first.usage is not None and first.usage.chunks_sent == asked > 8
    second, second_files = run(tmp_path, "second", book(PARAGRAPHS), provider, cache)
    assert len(sent(provider)) == asked  # nothing more
    assert second_files == first_files
    usage = second.usage
    assert usage is not None
    assert (usage.chunks_sent, usage.chars_sent) == (0, 0)
    total = first.usage.chars_sent + first.usage.chars_cached  # a repeated sentence, once sent
    assert (
        usage.chars_cached
        == total
        == sum(c.char_end - c.char_start for c in first.documents[0].chunks)
    )
    assert usage.cost == 0.0 and first.usage.cost == round(first.usage.chars_sent * 4 / 1e6, 6)


def test_an_edited_sentence_costs_only_its_chunk_and_the_result_is_a_fresh_render(
    tmp_path: Path, provider: RunningProvider
) -> None:
    cache = LocalChunkCache(LocalStore(tmp_path / "cache"))
    run(tmp_path, "before", book(PARAGRAPHS), provider, cache)
    provider.state.reset()
    edited = list(PARAGRAPHS)
    edited[5] = edited[5].replace(
        "somewhat longer than the first", "a good deal longer than the first one was"
    )
    after, after_files = run(tmp_path, "after", book(edited), provider, cache)
    document = book(edited)
    changed = {
        sha(document.text[chunk.char_start : chunk.char_end])
        for chunk in after.documents[0].chunks
        if "a good deal longer" in document.text[chunk.char_start : chunk.char_end]
    }
    assert set(sent(provider)) == changed and len(sent(provider)) == len(changed) == 1
    assert after.usage is not None and after.usage.chunks_sent == 1
    fresh_manifest, fresh_files = run(tmp_path, "fresh", document, provider, None)
    assert after_files == fresh_files  # sample-exact: the same bytes as a render from nothing
    assert fresh_manifest.usage is not None and fresh_manifest.usage.chunks_cached == 0


def test_a_damaged_entry_is_synthesised_again_never_stitched(
    tmp_path: Path, provider: RunningProvider
) -> None:
    cache = LocalChunkCache(LocalStore(tmp_path / "cache"))
    _, expected = run(tmp_path, "first", book(PARAGRAPHS), provider, cache)
    entries = sorted(cache.entries(), key=lambda entry: entry.address)
    cut = cache.store.path(f"cache/local/{entries[0].address[:2]}/{entries[0].address}.pcm")
    cut.write_bytes(cut.read_bytes()[:-100])  # a truncated audio file
    gone = cache.store.path(f"cache/local/{entries[1].address[:2]}/{entries[1].address}.pcm")
    gone.unlink()  # a half-written entry: its record without its audio
    provider.state.reset()
    manifest, files = run(tmp_path, "second", book(PARAGRAPHS), provider, cache)
    assert len(sent(provider)) == 2
    assert files == expected
    assert manifest.usage is not None and manifest.usage.chunks_sent == 2


def test_the_local_cache_forgets_the_least_recently_used_first(tmp_path: Path) -> None:
    cache = LocalChunkCache(LocalStore(tmp_path / "cache"))
    for n in range(5):
        put_chunk(cache, n)
        stamp = time.time() - 100 + n
        for path in (tmp_path / "cache").rglob(f"{chunk_address(ENGINE, f'text {n}')}.*"):
            os.utime(path, (stamp, stamp))
    assert cache.get(chunk_address(ENGINE, "text 0"), 3) is not None  # used now: the newest
    size = next(iter(cache.entries())).size
    removed, freed = cache.prune(3 * size)
    assert (removed, freed) == (2, 2 * size)
    kept = {entry.address for entry in cache.entries()}
    assert kept == {chunk_address(ENGINE, f"text {n}") for n in (0, 3, 4)}
    assert cache.prune(10**9, max_age=50) == (2, 2 * size)  # texts 3 and 4 are 96-97 s old


def test_a_worker_takes_a_cached_chunk_into_the_job_and_keeps_what_it_makes(
    tmp_path: Path, provider: RunningProvider
) -> None:
    from worker.engines.factory import create_engine  # noqa: PLC0415

    store = LocalStore(tmp_path / "store")
    cache = ChunkCache(store, tenant_scope("tenant-a", shared=False))
    settings = Settings(together=TogetherSettings(base_url=provider.api_url, api_key=KEY))
    engine = create_engine(ENGINE, settings)
    text = "A sentence to speak twice."
    made, synthesized = synthesize_chunk(
        store, engine, job_id="j1", doc="d", index=3, text=text, cache=cache, engine_spec=ENGINE
    )
    assert synthesized and not made.cached
    taken, synthesized = synthesize_chunk(
        store, engine, job_id="j2", doc="d", index=7, text=text, cache=cache, engine_spec=ENGINE
    )
    assert not synthesized and taken.cached and taken.index == 7
    assert taken.pcm_sha256 == made.pcm_sha256
    assert len(sent(provider)) == 1
    other = ChunkCache(store, tenant_scope("tenant-b", shared=False))
    synthesize_chunk(
        store, engine, job_id="j3", doc="d", index=0, text=text, cache=other, engine_spec=ENGINE
    )
    assert len(sent(provider)) == 2  # another tenant's cache does not answer for this one


def test_the_store_cache_keeps_its_budget_by_last_use_noted_in_redis(
    s3_store: S3Store, redis_db_url: str
) -> None:
    """An object store cannot touch a hit's time: workers note it in Redis, and the beat's
    prune (every scope together) takes the later of the two."""
    state = JobState.from_url(redis_db_url)
    uses = UseLog(state.client, RedisKeys(state.namespace))
    tenants = [ChunkCache(s3_store, scope, uses) for scope in ("a-one", "a-two")]
    now = time.time()
    for n in range(4):
        put_chunk(tenants[n % 2], n)
        uses.note(tenants[n % 2].scope, chunk_address(ENGINE, f"text {n}"), now=now + 10 * n)
    assert tenants[0].get(chunk_address(ENGINE, "text 0"), 1) is not None  # a hit, noted now:
    assert uses.last([f"a-one/{chunk_address(ENGINE, 'text 0')}"])[0] == pytest.approx(now, abs=5)
    uses.note("a-one", chunk_address(ENGINE, "text 0"), now=now + 100)  # (S3 times are seconds)
    entries = scan_entries(s3_store, CACHE_PREFIX, uses)
    assert len(entries) == 4 and {entry.scope for entry in entries} == {"a-one", "a-two"}
    size = entries[0].size
    budget = CacheSettings(store_max_bytes=2 * size)
    assert retention.prune_cache(s3_store, state, budget) == (2, 2 * size)
    left = {(entry.scope, entry.address) for entry in scan_entries(s3_store, CACHE_PREFIX)}
    assert ("a-one", chunk_address(ENGINE, "text 0")) in left  # the oldest, but used last
    assert ("a-two", chunk_address(ENGINE, "text 3")) in left  # the newest
    assert state.client.zcard(RedisKeys(state.namespace).cache_used) == 2  # the removed forgotten
    aged = CacheSettings(store_max_bytes=10**9, max_age_days=1)
    assert retention.prune_cache(s3_store, state, aged) == (0, 0)
