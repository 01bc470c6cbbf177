"""Finalize: stitch a job's stored chunks into its outputs, in bounded memory.

For each document: the audio (WAV or raw PCM) streamed chunk by chunk into the
store, the timestamps JSON, SRT and WebVTT subtitles. Then the manifest is
rewritten as ``succeeded`` and, unless kept, the chunk objects are removed.
Running it twice writes the same bytes again: it is safe to repeat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from ttsbatch import keys
from ttsbatch.audio import stitching
from ttsbatch.audio.stitching import SAMPLE_WIDTH, Placement
from ttsbatch.audio.texts import ChunkTexts, document_head
from ttsbatch.audio.timeline import JSON_END, json_start
from ttsbatch.audio.wav import wav_header
from ttsbatch.errors import JobError, ObjectNotFoundError
from ttsbatch.manifests import write_manifest
from ttsbatch.models import (
    AudioFormat,
    ChunkRecord,
    DocumentPlan,
    JobStatus,
    Manifest,
    TimingSource,
)
from ttsbatch.storage import ObjectPart, Part, Store
from ttsbatch.storage.readahead import read_ahead


def _load(store: Store, job_id: str, plan: DocumentPlan, index: int) -> ChunkRecord:
    key = keys.chunk_json_key(job_id, plan.doc, index)
    try:
        return ChunkRecord.model_validate_json(store.read(key))
    except ObjectNotFoundError:
        raise JobError(
            f"{plan.name}: chunk {index} is missing; cannot stitch", job_id=job_id
        ) from None


def _records(store: Store, job_id: str, plan: DocumentPlan) -> Iterator[ChunkRecord]:
    """Yield the document's chunk records in order, read ahead."""
    return read_ahead(lambda i: _load(store, job_id, plan, i), [c.index for c in plan.chunks])


def _scan(
    store: Store, job_id: str, plan: DocumentPlan
) -> tuple[list[int], list[int], set[TimingSource]]:
    """Read every chunk record once, keeping only sample counts, rates and timing kinds."""
    samples: list[int] = []
    rates: list[int] = []
    kinds: set[TimingSource] = set()
    for record in _records(store, job_id, plan):
        samples.append(record.samples)
        rates.append(record.sample_rate)
        kinds.add(record.timing)
    return samples, rates, kinds


def finalize_document(store: Store, manifest: Manifest, plan: DocumentPlan) -> dict[str, str]:
    """Write one document's outputs; return them as ``{kind: key}``.

    Memory stays flat as the book grows: audio is copied block by block, and
    the timeline and subtitles are written chunk by chunk.
    """
    job_id = manifest.job_id
    samples, rates, kinds = _scan(store, job_id, plan)
    rate = stitching.common_sample_rate(rates, job_id=job_id)
    placements = stitching.layout(
        plan.chunks, samples, sample_rate=rate, pauses=manifest.options.pauses
    )

    fmt = manifest.options.audio_format
    outputs = keys.document_outputs(job_id, plan.doc, fmt.value)
    header = (
        wav_header(stitching.total_samples(placements), rate) if fmt is AudioFormat.WAV else b""
    )
    # The audio is copied (in the kernel, or by S3 uploads) while this thread
    # writes the timeline and subtitles: two cores are free once synthesis ends.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stitch") as pool:
        audio = pool.submit(
            store.compose, outputs["audio"], _audio_parts(job_id, plan, placements, header)
        )
        _write_timeline(
            store, manifest, plan, placements=placements, rate=rate, kinds=kinds, outputs=outputs
        )
        audio.result()
    return outputs


def _audio_parts(
    job_id: str, plan: DocumentPlan, placements: Sequence[Placement], header: bytes
) -> list[Part]:
    """The document's audio as parts: the header, then each chunk followed by its pause."""
    parts: list[Part] = [header] if header else []
    for place in placements:
        key = keys.chunk_pcm_key(job_id, plan.doc, place.index)
        parts.append(ObjectPart(key, place.samples * SAMPLE_WIDTH))
        if place.gap:
            parts.append(stitching.silence(place.gap))
    return parts


def _write_timeline(
    store: Store,
    manifest: Manifest,
    plan: DocumentPlan,
    *,
    placements: Sequence[Placement],
    rate: int,
    kinds: set[TimingSource],
    outputs: dict[str, str],
) -> None:
    """Write the timestamps JSON, SRT and WebVTT, reading the chunk records once more."""
    text = store.read(outputs["source"]).decode()
    records = _records(store, manifest.job_id, plan)
    with (
        store.open_write(outputs["timestamps"]) as json_sink,
        store.open_write(outputs["srt"]) as srt_sink,
        store.open_write(outputs["vtt"]) as vtt_sink,
    ):
        json_sink.write(json_start(document_head(plan, placements, rate, kinds)))
        texts = ChunkTexts(text, rate, words=json_sink, srt=srt_sink, vtt=vtt_sink)
        for chunk, place, record in zip(plan.chunks, placements, records, strict=True):
            texts.add(chunk, place, record)
        json_sink.write(JSON_END)


def finalize_job(store: Store, manifest: Manifest, *, keep_chunks: bool = False) -> Manifest:
    """Stitch every document, mark the job succeeded, and clean up chunks.

    Returns:
        The manifest as written, with its outputs.
    """
    outputs = {plan.doc: finalize_document(store, manifest, plan) for plan in manifest.documents}
    done = write_succeeded(store, manifest, outputs)
    if not keep_chunks:
        for plan in manifest.documents:
            store.delete(list(store.list(keys.chunk_prefix(manifest.job_id, plan.doc))))
    return done


def write_succeeded(
    store: Store, manifest: Manifest, outputs: dict[str, dict[str, str]]
) -> Manifest:
    """Rewrite the manifest as ``succeeded`` with each document's outputs; return it."""
    done = manifest.model_copy(
        update={"status": JobStatus.SUCCEEDED, "outputs": outputs, "error": None}
    )
    write_manifest(store, done)
    return done
