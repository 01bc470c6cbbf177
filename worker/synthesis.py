"""Synthesise one chunk into the store, idempotently.

The chunk's JSON record is written after its PCM, so an existing record means
the chunk is complete: it is never synthesised again (architecture.md).
"""

from __future__ import annotations

import hashlib

from ttsbatch import keys
from ttsbatch.errors import RetryableEngineError
from ttsbatch.models import ChunkRecord
from ttsbatch.storage import Store
from worker.engines import Engine, StopCheck

# Fewer samples than this per spoken character means the engine returned
# (nearly) nothing: a failed request, not a result. Speech runs at roughly
# 12-20 characters per second, i.e. >1000 samples per character at 22 kHz.
MIN_SAMPLES_PER_CHAR_AT_1KHZ = 2


def load_record(store: Store, job_id: str, doc: str, index: int) -> ChunkRecord | None:
    """Return the stored record of a chunk, or None if it is not done yet."""
    key = keys.chunk_json_key(job_id, doc, index)
    if not store.exists(key):
        return None
    return ChunkRecord.model_validate_json(store.read(key))


def synthesize_chunk(
    store: Store,
    engine: Engine,
    *,
    job_id: str,
    doc: str,
    index: int,
    text: str,
    should_stop: StopCheck | None = None,
) -> tuple[ChunkRecord, bool]:
    """Make sure chunk ``index`` of ``doc`` is in the store.

    Returns:
        The chunk's record, and whether this call synthesised it (False when
        it was already stored).

    Raises:
        ttsbatch.errors.EngineError: as classified by the engine; an implausibly
            short result is a :class:`RetryableEngineError`.
        ttsbatch.errors.StorageError: if the store fails.
    """
    existing = load_record(store, job_id, doc, index)
    if existing is not None:
        return existing, False
    record, pcm = synthesize_record(engine, index=index, text=text, should_stop=should_stop)
    store.write(keys.chunk_pcm_key(job_id, doc, index), pcm)
    store.write(
        keys.chunk_json_key(job_id, doc, index), record.model_dump_json(by_alias=True).encode()
    )
    return record, True


def synthesize_record(
    engine: Engine, *, index: int, text: str, should_stop: StopCheck | None = None
) -> tuple[ChunkRecord, bytes]:
    """Synthesise chunk ``index`` and return its record and PCM, storing nothing.

    Raises:
        ttsbatch.errors.EngineError: as classified by the engine; an implausibly
            short result is a :class:`RetryableEngineError`.
    """
    result = engine.synthesize(text, should_stop=should_stop)
    spoken = sum(ch.isalnum() for ch in text)
    minimum = spoken * MIN_SAMPLES_PER_CHAR_AT_1KHZ * result.sample_rate // 1000
    if result.samples == 0 or result.samples < minimum:
        raise RetryableEngineError(
            f"{engine.name} returned {result.samples} samples for {spoken} characters: too short to be speech",
            chunk_index=index,
        )
    record = ChunkRecord(
        index=index,
        sample_rate=result.sample_rate,
        samples=result.samples,
        pcm_sha256=hashlib.sha256(result.pcm).hexdigest(),
        timing=result.timing,
        words=result.words,
        engine=engine.name,
    )
    return record, result.pcm
