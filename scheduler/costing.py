"""What a job would cost before anything is sent: characters, cache hits, time and money.

A dry run plans the job as a real run would (the same split, the same chunk
texts), asks the job's chunk cache which chunks it holds, and prices the
rest from the settings' table. Its billed characters are what the real run
then sends, unless the cache changes in between or chunks are retried.

Durations are estimates: speech runs at about 17 characters a second
(espeak-ng's default rate on *Pride and Prejudice*, pauses included;
providers' voices are close), espeak-ng synthesises about 1 000x real time
per core, and a provider :data:`PROVIDER_SPEED` times real time per request,
with the deployment's concurrency in flight.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Final

from scheduler.splitting import split
from ttsbatch.cache import ChunkCache, chunk_address
from ttsbatch.models import Document, Estimate, JobOptions, Manifest, chars_for
from ttsbatch.settings import Settings

#: Characters of speech per second of audio, pauses included (espeak-ng, English prose).
CHARS_PER_SECOND: Final = 17.0
#: Seconds of audio one espeak-ng process makes per second.
ESPEAK_SPEED: Final = 1000.0
#: Seconds of audio one provider request streams per second (Together's Kokoro and Orpheus
#: stream at 20-50x real time; the lower end, for an estimate that is not too hopeful).
PROVIDER_SPEED: Final = 20.0


def estimate(
    manifest: Manifest, texts: Mapping[str, str], settings: Settings, cache: ChunkCache | None
) -> Estimate:
    """Return what running ``manifest`` would cost, asking ``cache`` for each chunk."""
    engine = manifest.options.engine
    chars = chunks = cached_chunks = cached_chars = 0
    for plan in manifest.documents:
        text = texts[plan.doc]
        for chunk in plan.chunks:
            spoken = text[chunk.char_start : chunk.char_end]
            chunks += 1
            chars += len(spoken)
            if cache is not None and cache.holds(chunk_address(engine, spoken)):
                cached_chunks += 1
                cached_chars += len(spoken)
    billed = chars - cached_chars
    if engine.engine.in_process:
        speed = ESPEAK_SPEED * (os.cpu_count() or 1)
    else:
        speed = PROVIDER_SPEED * settings.provider.concurrency
    price = settings.price_of(engine.engine, engine.model)
    return Estimate(
        engine=engine.engine.value,
        model=engine.model,
        chars=chars,
        chunks=chunks,
        cached_chunks=cached_chunks,
        cached_chars=cached_chars,
        billed_chars=billed,
        audio_seconds=round(chars / CHARS_PER_SECOND, 1),
        wall_seconds=round(billed / CHARS_PER_SECOND / speed, 1),
        price_per_million=price,
        cost=None if price is None else round(billed * price / 1e6, 6),
    )


def preview(documents: Sequence[Document], options: JobOptions, seconds: float) -> list[Document]:
    """Cut each document to its first chunks, enough for about ``seconds`` of audio.

    The cut falls at the end of a chunk of the full plan, and chunks never
    cross a paragraph, so the preview's chunks are the full job's first ones,
    text for text: the full job takes them from the cache.
    """
    budget = seconds * CHARS_PER_SECOND
    cut: list[Document] = []
    for document in documents:
        end, spoken = 0, 0
        for chunk in split(document.text, max_chars=options.max_chars, chapters=document.chapters):
            if spoken >= budget:
                break
            end, spoken = chunk.char_end, spoken + chunk.char_end - chunk.char_start
        chapters = tuple(
            chapter.model_copy(update={"char_end": min(chapter.char_end, end)})
            for chapter in document.chapters
            if chapter.char_start < end
        )
        cut.append(document.model_copy(update={"text": document.text[:end], "chapters": chapters}))
    return cut


def over_budget(
    found: Estimate, *, max_cost: float | None, max_billed_chars: int | None
) -> str | None:
    """Say why a job over its cap must not start, with the estimate; ``None`` if within it."""
    if max_billed_chars is not None and found.billed_chars > max_billed_chars:
        return (
            f"refused before anything was sent: {found.billed_chars:,} characters would be"
            f" billed ({found.cached_chars:,} more come from the cache), over the cap of"
            f" {max_billed_chars:,}"
        )
    price = found.price_per_million
    if max_cost is not None and price and found.billed_chars > chars_for(max_cost, price):
        return (
            f"refused before anything was sent: it would cost ${found.cost:.4f}"
            f" ({found.billed_chars:,} characters at ${found.price_per_million}/M"
            f" for {found.engine}), over the cap of ${max_cost:.4f}"
        )
    if max_cost is not None and found.cost is None and found.billed_chars:
        return (
            f"refused before anything was sent: no price is known for {found.engine}"
            f" {found.model or ''} (set TTSBATCH_PRICES), so a cost cap cannot be kept"
        )
    return None
