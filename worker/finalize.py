"""Finalize: stitch a job's stored chunks into its outputs, in bounded memory.

For each document: the audio (WAV or raw PCM) streamed chunk by chunk into the
store, the timestamps JSON, SRT and WebVTT subtitles. Then the manifest is
rewritten as ``succeeded`` and, unless kept, the chunk objects are removed.
Running it twice writes the same bytes again: it is safe to repeat.
"""

from __future__ import annotations

from collections.abc import Iterator

from ttsbatch import keys
from ttsbatch.errors import JobError
from ttsbatch.models import AudioFormat, ChunkRecord, DocumentPlan, JobStatus, Manifest, SourceInfo
from ttsbatch.storage import Store
from worker import stitching, subtitles
from worker.timeline import build_timestamps
from worker.wav import wav_header

READ_BLOCK = 1 << 20


def _records(store: Store, job_id: str, plan: DocumentPlan) -> list[ChunkRecord]:
    records: list[ChunkRecord] = []
    for chunk in plan.chunks:
        key = keys.chunk_json_key(job_id, plan.doc, chunk.index)
        if not store.exists(key):
            raise JobError(
                f"{plan.name}: chunk {chunk.index} is missing; cannot stitch", job_id=job_id
            )
        records.append(ChunkRecord.model_validate_json(store.read(key)))
    return records


def finalize_document(store: Store, manifest: Manifest, plan: DocumentPlan) -> dict[str, str]:
    """Write one document's outputs; return them as ``{kind: key}``."""
    job_id = manifest.job_id
    records = _records(store, job_id, plan)
    rate = stitching.common_sample_rate((r.sample_rate for r in records), job_id=job_id)
    placements = stitching.layout(
        plan.chunks, [r.samples for r in records], sample_rate=rate, pauses=manifest.options.pauses
    )

    def read_chunk(index: int) -> Iterator[bytes]:
        with store.open_read(keys.chunk_pcm_key(job_id, plan.doc, index)) as handle:
            while block := handle.read(READ_BLOCK):
                yield block

    fmt = manifest.options.audio_format
    audio_key = keys.output_key(job_id, plan.doc, fmt.value)
    with store.open_write(audio_key) as sink:
        if fmt is AudioFormat.WAV:
            sink.write(wav_header(stitching.total_samples(placements), rate))
        for piece in stitching.stream(placements, read_chunk):
            sink.write(piece)

    text_key = keys.output_key(job_id, plan.doc, "source.txt")
    text = store.read(text_key).decode()
    timestamps = build_timestamps(
        chunks=plan.chunks,
        records=records,
        placements=placements,
        chapters=plan.chapters,
        sample_rate=rate,
        source=SourceInfo(
            name=plan.source_name, sha256=plan.source_sha256, text_file=f"{plan.name}.source.txt"
        ),
    )
    outputs = {"audio": audio_key, "source": text_key}
    rendered = {
        "timestamps.json": timestamps.model_dump_json(by_alias=True, indent=1),
        "srt": subtitles.to_srt(cues := subtitles.build_cues(timestamps, plan.chunks, text)),
        "vtt": subtitles.to_vtt(cues),
    }
    for suffix, body in rendered.items():
        key = keys.output_key(job_id, plan.doc, suffix)
        store.write(key, body.encode())
        outputs[suffix.removesuffix(".json")] = key
    return outputs


def finalize_job(store: Store, manifest: Manifest, *, keep_chunks: bool = False) -> Manifest:
    """Stitch every document, mark the job succeeded, and clean up chunks.

    Returns:
        The manifest as written, with its outputs.
    """
    outputs = {plan.doc: finalize_document(store, manifest, plan) for plan in manifest.documents}
    done = manifest.model_copy(
        update={"status": JobStatus.SUCCEEDED, "outputs": outputs, "error": None}
    )
    store.write(
        keys.manifest_key(manifest.job_id), done.model_dump_json(by_alias=True, indent=1).encode()
    )
    if not keep_chunks:
        for plan in manifest.documents:
            store.delete(list(store.list(keys.chunk_prefix(manifest.job_id, plan.doc))))
    return done
