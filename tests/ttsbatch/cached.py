"""Cache entries for tests that prune, list or clear a chunk cache."""

from __future__ import annotations

import hashlib

from ttsbatch.cache import ChunkCache, chunk_address
from ttsbatch.models import ChunkRecord, EngineSpec, TimingSource

ENGINE = EngineSpec(engine="together", model="hexgrad/Kokoro-82M", voice="af_heart")


def put_chunk(cache: ChunkCache, n: int, engine: EngineSpec = ENGINE) -> str:
    """Keep a 1 000-sample chunk of the text ``text {n}``; return its address."""
    pcm = bytes([n, 0]) * 1000
    record = ChunkRecord(
        index=0,
        sample_rate=24000,
        samples=1000,
        pcm_sha256=hashlib.sha256(pcm).hexdigest(),
        timing=TimingSource.NONE,
        engine=engine.engine.value,
    )
    address = chunk_address(engine, f"text {n}")
    cache.put(address, record, pcm)
    return address
