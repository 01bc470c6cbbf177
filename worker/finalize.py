"""Finalize: stitch a job's stored chunks into its outputs, in bounded memory.

For each document: the audio streamed chunk by chunk into the store (WAV or raw
PCM), or spooled to a local file while its loudness is measured and then
mastered and encoded there (M4B, MP3, Opus, FLAC: :mod:`ttsbatch.audio.finishing`,
the same code the local executor ends with); the timestamps JSON, SRT and
WebVTT subtitles. Then the manifest is rewritten as ``succeeded`` and, unless
kept, the chunk objects are removed. Running it twice writes the same bytes
again: it is safe to repeat.

The spool holds one document's raw audio (about 160 MB per hour at 22.05 kHz)
in the worker's temporary folder (``TMPDIR``); memory stays flat.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ttsbatch import keys
from ttsbatch.audio import stitching
from ttsbatch.audio.finishing import (
    AUDIO,
    READ_ALONG,
    epub_time,
    finish_document,
    finish_read_along,
)
from ttsbatch.audio.mastering import Meter
from ttsbatch.audio.readalong import SourceMap, Spoken
from ttsbatch.audio.stitching import SAMPLE_WIDTH, Placement
from ttsbatch.audio.texts import ChunkTexts, document_head
from ttsbatch.audio.timeline import JSON_END, json_start
from ttsbatch.audio.wav import wav_header
from ttsbatch.errors import JobError, ObjectNotFoundError
from ttsbatch.manifests import read_cover, write_manifest
from ttsbatch.models import (
    AudioFormat,
    AudioReport,
    ChunkRecord,
    DocumentPlan,
    JobStatus,
    Manifest,
    TimingSource,
    Usage,
)
from ttsbatch.storage import ObjectPart, Part, Store, upload_file
from ttsbatch.storage.readahead import read_ahead
from ttsbatch.usage import UsageCounter


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
    store: Store, job_id: str, plan: DocumentPlan, counter: UsageCounter
) -> tuple[list[int], list[int], set[TimingSource]]:
    """Read every chunk record once, keeping only sample counts, rates and timing kinds;
    count what the chunks cost into ``counter``."""
    samples: list[int] = []
    rates: list[int] = []
    kinds: set[TimingSource] = set()
    for chunk, record in zip(plan.chunks, _records(store, job_id, plan), strict=True):
        samples.append(record.samples)
        rates.append(record.sample_rate)
        kinds.add(record.timing)
        counter.add(chunk.char_end - chunk.char_start, record)
    return samples, rates, kinds


def finalize_document(
    store: Store, manifest: Manifest, plan: DocumentPlan, counter: UsageCounter | None = None
) -> tuple[dict[str, str], AudioReport | None]:
    """Write one document's outputs; return them as ``{kind: key}``, and the audio's report.

    Memory stays flat as the book grows: audio is copied block by block, and
    the timeline and subtitles are written chunk by chunk.
    """
    job_id = manifest.job_id
    samples, rates, kinds = _scan(store, job_id, plan, counter or UsageCounter())
    rate = stitching.common_sample_rate(rates, job_id=job_id)
    placements = stitching.layout(
        plan.chunks, samples, sample_rate=rate, pauses=manifest.options.pauses
    )

    fmt = manifest.options.audio_format
    outputs = keys.document_outputs(job_id, plan.doc, fmt.value, cover=plan.cover)
    options = manifest.options
    spoken = Spoken(options.read_along_unit) if options.read_along else None
    # The audio is copied (in the kernel, or by S3 uploads) or encoded while this
    # thread writes the timeline and subtitles: two cores are free once synthesis ends.
    audio: Future[tuple[AudioReport, dict[str, str]] | None]
    with (
        tempfile.TemporaryDirectory(prefix="ttsbatch-finalize-") as temporary,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="stitch") as pool,
    ):
        folder = Path(temporary)
        if fmt.encoded:
            audio = pool.submit(_encode, store, manifest, plan, (placements, rate), folder)
        else:
            header = wav_header(stitching.total_samples(placements), rate)
            parts = _audio_parts(job_id, plan, placements)
            if fmt is AudioFormat.WAV:
                parts.insert(0, header)
            audio = pool.submit(store.compose, outputs["audio"], parts)
        _write_timeline(
            store,
            manifest,
            plan,
            placements=placements,
            rate=rate,
            kinds=kinds,
            outputs=outputs,
            spoken=spoken,
        )
        written = audio.result()
        if spoken is not None:
            outputs[READ_ALONG] = _read_along(
                store, manifest, plan, (placements, rate), folder=folder, spoken=spoken
            )
    if written is None:
        return outputs, None
    report, audio_keys = written
    return {**outputs, **audio_keys}, report


def _encode(
    store: Store,
    manifest: Manifest,
    plan: DocumentPlan,
    layout: tuple[Sequence[Placement], int],
    folder: Path,
) -> tuple[AudioReport, dict[str, str]]:
    """Spool the document's audio to ``folder``, measuring it; master, encode, upload.

    ``layout`` is its chunks' placements and its sample rate.
    """
    placements, rate = layout
    options = manifest.options
    meter = Meter(rate) if options.loudness_target() else None
    spool = _spool(store, manifest.job_id, plan, placements, folder=folder, meter=meter)
    report, files = finish_document(
        spool,
        folder,
        plan=plan,
        options=options,
        placements=placements,
        rate=rate,
        measured=meter.result() if meter is not None else None,
        cover=read_cover(store, manifest.job_id, plan),
    )
    written: dict[str, str] = {}
    for kind, path in files.items():
        written[kind] = keys.audio_key(manifest.job_id, plan.doc, kind, options.audio_format)
        upload_file(store, path, written[kind])
    return report, written


def _spool(
    store: Store,
    job_id: str,
    plan: DocumentPlan,
    placements: Sequence[Placement],
    *,
    folder: Path,
    meter: Meter | None = None,
) -> Path:
    """Copy the document's audio from its stored chunks into ``folder/audio.pcm`` (once)."""
    spool = folder / "audio.pcm"
    if spool.exists():
        return spool
    with spool.open("wb") as sink:
        for data in _pcm(store, _audio_parts(job_id, plan, placements)):
            sink.write(data)
            if meter is not None:
                meter.feed(data)
    return spool


def _read_along(
    store: Store,
    manifest: Manifest,
    plan: DocumentPlan,
    layout: tuple[Sequence[Placement], int],
    *,
    folder: Path,
    spoken: Spoken,
) -> str:
    """Make the document's read-along EPUB beside its audio and upload it; return its key."""
    placements, rate = layout
    fmt = manifest.options.audio_format
    whole = folder / f"{AUDIO}.{fmt.value}"
    book = finish_read_along(
        _spool(store, manifest.job_id, plan, placements, folder=folder),
        folder,
        plan=plan,
        options=manifest.options,
        placements=placements,
        rate=rate,
        text=store.read(keys.output_key(manifest.job_id, plan.doc, "source.txt")).decode(),
        spoken=spoken,
        modified=epub_time(manifest.created_at),
        encoded=whole if whole.exists() else None,
        source=read_along_source(store, manifest.job_id, plan),
        cover=read_cover(store, manifest.job_id, plan),
    )
    key = keys.output_key(manifest.job_id, plan.doc, READ_ALONG)
    upload_file(store, book, key)
    return key


def read_along_source(
    store: Store, job_id: str, plan: DocumentPlan
) -> tuple[bytes, SourceMap] | None:
    """Return the EPUB input planning kept for a read-along book, and its map; ``None``: none."""
    try:
        data = store.read(keys.readalong_source_key(job_id, plan.doc))
    except ObjectNotFoundError:
        return None
    mapped = SourceMap.model_validate_json(store.read(keys.readalong_map_key(job_id, plan.doc)))
    return data, mapped


def _pcm(store: Store, parts: Sequence[Part]) -> Iterator[bytes]:
    """Yield the bytes of ``parts`` in order, stored chunks read ahead."""

    def fetch(part: Part) -> bytes:
        return part if isinstance(part, bytes) else store.read(part.key)

    return read_ahead(fetch, parts)


def _audio_parts(job_id: str, plan: DocumentPlan, placements: Sequence[Placement]) -> list[Part]:
    """The document's audio as parts: each chunk followed by its pause."""
    parts: list[Part] = []
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
    spoken: Spoken | None = None,
) -> None:
    """Write the timestamps JSON, SRT and WebVTT, reading the chunk records once more
    (and collect a read-along book's units into ``spoken``)."""
    text = store.read(outputs["source"]).decode()
    records = _records(store, manifest.job_id, plan)
    with (
        store.open_write(outputs["timestamps"]) as json_sink,
        store.open_write(outputs["srt"]) as srt_sink,
        store.open_write(outputs["vtt"]) as vtt_sink,
    ):
        json_sink.write(json_start(document_head(plan, placements, rate, kinds)))
        texts = ChunkTexts(text, rate, words=json_sink, srt=srt_sink, vtt=vtt_sink, spoken=spoken)
        for chunk, place, record in zip(plan.chunks, placements, records, strict=True):
            texts.add(chunk, place, record)
        json_sink.write(JSON_END)


def finalize_job(
    store: Store,
    manifest: Manifest,
    *,
    keep_chunks: bool = False,
    price_per_million: float | None = None,
) -> Manifest:
    """Stitch every document, mark the job succeeded with what it cost, and clean up chunks.

    Returns:
        The manifest as written, with its outputs.
    """
    outputs: dict[str, dict[str, str]] = {}
    audio: dict[str, AudioReport] = {}
    counter = UsageCounter()
    for plan in manifest.documents:
        outputs[plan.doc], report = finalize_document(store, manifest, plan, counter)
        if report is not None:
            audio[plan.doc] = report
    usage = counter.usage(manifest.options.engine, price_per_million)
    done = write_succeeded(store, manifest, outputs, audio, usage)
    if not keep_chunks:
        for plan in manifest.documents:
            store.delete(list(store.list(keys.chunk_prefix(manifest.job_id, plan.doc))))
    return done


def write_succeeded(
    store: Store,
    manifest: Manifest,
    outputs: dict[str, dict[str, str]],
    audio: dict[str, AudioReport] | None = None,
    usage: Usage | None = None,
) -> Manifest:
    """Rewrite the manifest as ``succeeded`` with each document's outputs; return it."""
    done = manifest.model_copy(
        update={
            "status": JobStatus.SUCCEEDED,
            "outputs": outputs,
            "audio": audio or {},
            "usage": usage,
            "error": None,
        }
    )
    write_manifest(store, done)
    return done
