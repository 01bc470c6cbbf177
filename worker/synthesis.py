"""Synthesise one chunk into the store, idempotently.

The chunk's JSON record is written after its PCM, so an existing record means
the chunk is complete: it is never synthesised again (architecture.md).
"""

from __future__ import annotations

import hashlib

from ttsbatch import keys
from ttsbatch.cache import ChunkCache, chunk_address
from ttsbatch.errors import RetryableEngineError
from ttsbatch.models import ChunkRecord, EngineSpec
from ttsbatch.storage import Store
from ttsbatch.usage import Spend
from worker.engines import Engine, StopCheck
from worker.limits import NotSentError

#: Less audio than this per spoken character is a failed or truncated answer,
#: not speech: speech runs at 12-20 characters a second (50-80 ms each), and
#: espeak-ng at its fastest (450 wpm) still takes about 25 ms. One check, here,
#: for every engine.
MIN_SECONDS_PER_CHAR = 0.01


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
    retries: int = 0,
    cache: ChunkCache | None = None,
    engine_spec: EngineSpec | None = None,
    spend: Spend | None = None,
) -> tuple[ChunkRecord, bool]:
    """Make sure chunk ``index`` of ``doc`` is in the store.

    ``retries`` (the failed attempts before this one) is recorded for billing.
    A chunk found in ``cache`` (by ``engine_spec`` and ``text``) is copied from
    it instead of synthesised; one synthesised is kept there. ``spend`` takes
    the chunk's characters from the job's allowance before it is sent.

    Returns:
        The chunk's record, and whether this call synthesised it (False when
        it was already stored).

    Raises:
        ttsbatch.errors.EngineError: as classified by the engine; an implausibly
            short result is a :class:`RetryableEngineError`.
        ttsbatch.errors.StorageError: if the store fails.
        ttsbatch.errors.BudgetError: sending it would pass the job's cap; nothing was sent.
    """
    existing = load_record(store, job_id, doc, index)
    if existing is not None:
        return existing, False
    address = chunk_address(engine_spec, text) if cache and engine_spec else None
    found = cache.get(address, index) if cache and address else None
    if found is not None:
        record, pcm = found
    else:
        record, pcm = synthesize_record(
            engine, index=index, text=text, should_stop=should_stop, retries=retries, spend=spend
        )
    store.write(keys.chunk_pcm_key(job_id, doc, index), pcm)
    store.write(
        keys.chunk_json_key(job_id, doc, index), record.model_dump_json(by_alias=True).encode()
    )
    if found is None and cache and address:
        cache.put(address, record, pcm)
    return record, found is None


def synthesize_record(
    engine: Engine,
    *,
    index: int,
    text: str,
    should_stop: StopCheck | None = None,
    retries: int = 0,
    spend: Spend | None = None,
) -> tuple[ChunkRecord, bytes]:
    """Synthesise chunk ``index`` and return its record and PCM, storing nothing.

    Every attempt at a chunk on either executor comes through here, so this is
    where ``spend`` takes its characters from the job's allowance, before the
    request: a job at its cap stops between requests, never inside one.

    Raises:
        ttsbatch.errors.EngineError: as classified by the engine; an implausibly
            short result is a :class:`RetryableEngineError`.
        ttsbatch.errors.BudgetError: sending it would pass the job's cap; nothing was sent.
    """
    if spend is not None:
        spend.take(len(text))
    try:
        result = engine.synthesize(text, should_stop=should_stop)
    except NotSentError:
        if spend is not None:
            spend.give_back(len(text))  # no provider slot was taken: nothing was sent
        raise
    check_plausible(result.samples, result.sample_rate, text, engine=engine.name, index=index)
    record = ChunkRecord(
        index=index,
        sample_rate=result.sample_rate,
        samples=result.samples,
        pcm_sha256=hashlib.sha256(result.pcm).hexdigest(),
        timing=result.timing,
        words=result.words,
        engine=engine.name,
        retries=retries,
    )
    return record, result.pcm


def check_plausible(samples: int, sample_rate: int, text: str, *, engine: str, index: int) -> None:
    """Refuse audio too short to be the speech of ``text`` (a retryable failure).

    Raises:
        RetryableEngineError: for no audio, or less than ``MIN_SECONDS_PER_CHAR``
            per spoken character; text with nothing to speak is not checked.
    """
    spoken = sum(ch.isalnum() for ch in text)
    if not spoken:
        return
    seconds = samples / sample_rate
    if seconds < spoken * MIN_SECONDS_PER_CHAR:
        raise RetryableEngineError(
            f"{engine} returned {seconds:.3f} s of audio for {spoken} spoken characters:"
            " too short to be speech (a failed or truncated answer)",
            chunk_index=index,
        )
