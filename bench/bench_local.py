"""Benchmark the local pipeline against the raw engine, and stitch memory.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_local.py [BOOK] [--jobs N]

1. Throughput: ``ttsbatch synth``'s whole pipeline (ingest, split, synthesise,
   assemble audio, timeline and subtitles in order, publish) on BOOK against
   the raw espeak engine alone on the same chunks with the same number of
   processes — the limit on this machine.
2. Stitch memory and speed, for the book and for a job four times as long, in
   a fresh process each: ``assembly`` adds every chunk in order as the local
   executor does (audio, words, subtitles, journal), ``finalize`` stitches
   stored chunk objects as a worker does. Peak memory must stay flat.

BOOK defaults to ../shared/corpus/pride-and-prejudice.txt when present.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scheduler.ingest import ingest_file  # noqa: E402
from scheduler.planning import plan_job, write_plan  # noqa: E402
from ttsbatch import keys  # noqa: E402
from ttsbatch.audio import stitching  # noqa: E402
from ttsbatch.audio.stitching import SAMPLE_WIDTH  # noqa: E402
from ttsbatch.audio.wav import HEADER_SIZE  # noqa: E402
from ttsbatch.executors.local import run_local  # noqa: E402
from ttsbatch.executors.reporting import Progress  # noqa: E402
from ttsbatch.models import (  # noqa: E402
    AudioFormat,
    ChunkRecord,
    EngineSpec,
    JobOptions,
    JobStatus,
    Manifest,
)
from ttsbatch.settings import Settings  # noqa: E402
from ttsbatch.storage.local import LocalStore  # noqa: E402

_engine = None


def _init() -> None:
    global _engine  # noqa: PLW0603 - one engine per pool process
    from worker.engines.espeak import EspeakEngine  # noqa: PLC0415

    _engine = EspeakEngine("en-us")


def _speak(text: str) -> int:
    assert _engine is not None
    return _engine.synthesize(text).samples


def raw_engine(texts: list[str], jobs: int) -> tuple[float, int]:
    """Synthesise every chunk with the bare engine; return (seconds, samples)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init) as pool:
        list(pool.map(_speak, texts[: jobs * 2]))  # warm up every process
        started = time.perf_counter()
        samples = sum(pool.map(_speak, texts, chunksize=4))
        return time.perf_counter() - started, samples


# Run in a fresh process each: prints seconds and peak RSS (KiB). Not ru_maxrss:
# Linux carries it over from the parent across fork and exec, so it would
# report the bench's own size; VmHWM is the child's own peak.
CHILD = """
import sys, time
from pathlib import Path
from ttsbatch import keys
from ttsbatch.models import ChunkRecord, Manifest
from ttsbatch.storage.local import LocalStore
store = LocalStore(Path(sys.argv[1]))
manifest = Manifest.model_validate_json(store.read(keys.manifest_key(sys.argv[2])))
started = time.perf_counter()
if sys.argv[3] == "finalize":
    from worker.finalize import finalize_job
    finalize_job(store, manifest, keep_chunks=True)
else:
    from ttsbatch.executors.assembly import discard, open_assembly
    plan = manifest.documents[0]
    text = store.read(keys.output_key(manifest.job_id, plan.doc, "source.txt")).decode()
    assembly = open_assembly(store, manifest, plan, text)
    for chunk in plan.chunks:
        json_key = keys.chunk_json_key(manifest.job_id, plan.doc, chunk.index)
        pcm_key = keys.chunk_pcm_key(manifest.job_id, plan.doc, chunk.index)
        assembly.add(ChunkRecord.model_validate_json(store.read(json_key)), store.read(pcm_key))
    assembly.finish()
    discard(store, manifest.job_id, plan, keep_journal=False)
elapsed = time.perf_counter() - started
print(elapsed, open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""


def stitch_in_child(root: Path, job_id: str, how: str) -> tuple[float, int]:
    """Stitch a stored job in a fresh process, by ``finalize`` or ``assembly``.

    Returns:
        Seconds taken and the process's peak RSS in KiB.
    """
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), job_id, how],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.split()
    return float(out[0]), int(out[1])


def stored_job(
    root: Path,
    local: Manifest,
    factor: int,
    book: Path,
    *,
    audio_format: AudioFormat = AudioFormat.PCM,
) -> str:
    """Store a job of ``factor`` times the book the way workers do, for finalize to stitch.

    The local executor stores no chunk objects (it assembles the audio as
    chunks arrive), so chunk ``j`` of the new job is cut from the local run's
    WAV (chunk ``j mod n``'s samples) once, then hard-linked.
    """
    store = LocalStore(root)
    source = local.documents[0]
    journal = root / keys.assembly_key(local.job_id, source.doc, "records.jsonl")
    records = [ChunkRecord.model_validate_json(line) for line in journal.read_bytes().splitlines()]
    placements = stitching.layout(
        source.chunks,
        [r.samples for r in records],
        sample_rate=records[0].sample_rate,
        pauses=local.options.pauses,
    )
    doc = ingest_file(book)
    big = doc.model_copy(update={"text": "\n\n".join([doc.text] * factor), "chapters": ()})
    # Raw PCM by default: four times a long book passes the 4 GiB limit of WAV.
    options = JobOptions(
        engine=EngineSpec(engine="espeak"), max_chars=400, audio_format=audio_format
    )
    job_id = f"x{factor}-{audio_format.value}"
    manifest = write_plan(store, plan_job([big], options, job_id=job_id), [big])
    plan = manifest.documents[0]
    first = factor > 1
    with (root / keys.output_key(local.job_id, source.doc, "wav")).open("rb") as wav:
        for chunk in plan.chunks:
            n = chunk.index % len(records)
            pcm = root / keys.chunk_pcm_key(manifest.job_id, plan.doc, chunk.index)
            pcm.parent.mkdir(parents=True, exist_ok=True)
            if first:  # the 1x job of this format was stored first: link its chunks
                os.link(root / keys.chunk_pcm_key(f"x1-{audio_format.value}", source.doc, n), pcm)
            else:
                wav.seek(HEADER_SIZE + placements[n].start * SAMPLE_WIDTH)
                pcm.write_bytes(wav.read(records[n].samples * SAMPLE_WIDTH))
            record = records[n].model_copy(update={"index": chunk.index})
            store.write(
                keys.chunk_json_key(manifest.job_id, plan.doc, chunk.index),
                record.model_dump_json(by_alias=True).encode(),
            )
    return manifest.job_id


class PhaseClock(Progress):
    """Notes when synthesis starts and when stitching starts."""

    def __init__(self) -> None:
        self.synthesis = self.stitching = 0.0

    def start(self, manifest: Manifest, done: int, total: int) -> None:
        self.synthesis = time.perf_counter()

    def stage(self, status: JobStatus) -> None:
        if status is JobStatus.STITCHING:
            self.stitching = time.perf_counter()


def throughput(
    book: Path, options: JobOptions, texts: list[str], store: LocalStore, jobs: int
) -> tuple[float, Manifest]:
    """Time the raw engine, then the whole pipeline, back to back; print both.

    Returns:
        The pipeline's efficiency (raw seconds / pipeline seconds) and its manifest.
    """
    raw_seconds, raw_samples = raw_engine(texts, jobs)
    audio = raw_samples / 22050
    print(
        f"raw engine:    {raw_seconds:7.1f} s  {len(texts)} chunks, {audio / 3600:.2f} h audio, "
        f"{audio / raw_seconds:.0f}x real time"
    )
    clock = PhaseClock()
    started = time.perf_counter()
    manifest = run_local(
        [ingest_file(book)],
        options,
        store=store,
        settings=Settings(),
        jobs=jobs,
        progress=clock,
        keep_chunks=True,
    )
    finished = time.perf_counter()
    pipe_seconds = finished - started
    synth_seconds = clock.stitching - clock.synthesis
    print(
        f"full pipeline: {pipe_seconds:7.1f} s  (ingest+split+synth+assemble+publish)  "
        f"efficiency {raw_seconds / pipe_seconds:.2f} of the raw engine"
    )
    print(
        f"  of which:    {clock.synthesis - started:7.1f} s ingest+plan, "
        f"{synth_seconds:.1f} s synthesis+assembly ({raw_seconds / synth_seconds:.2f} of raw), "
        f"{finished - clock.stitching:.1f} s to finish"
    )
    return raw_seconds / pipe_seconds, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "book", nargs="?", type=Path, default=ROOT.parent / "shared/corpus/pride-and-prejudice.txt"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time raw engine and pipeline this many times (the machine's speed drifts)",
    )
    parser.add_argument("--skip-stitch", action="store_true", help="only the throughput")
    args = parser.parse_args()
    book: Path = args.book
    print(f"book: {book.name}, {book.stat().st_size / 1e3:.0f} kB, {args.jobs} processes")

    work = Path(tempfile.mkdtemp(prefix="ttsbatch-bench-"))
    try:
        document = ingest_file(book)
        options = JobOptions(engine=EngineSpec(engine="espeak"), max_chars=400)
        plan = plan_job([document], options)
        texts = [document.text[c.char_start : c.char_end] for c in plan.documents[0].chunks]
        ratios: list[float] = []
        store_root = work / "store"
        for _ in range(args.rounds):
            shutil.rmtree(store_root, ignore_errors=True)  # each round starts from nothing
            ratio, manifest = throughput(book, options, texts, LocalStore(store_root), args.jobs)
            ratios.append(ratio)
        if args.rounds > 1:
            print(
                f"efficiency over {args.rounds} rounds: median {statistics.median(ratios):.2f}, "
                f"range {min(ratios):.2f}-{max(ratios):.2f}"
            )
        if args.skip_stitch:
            return

        for factor in (1, 4):
            job = stored_job(store_root, manifest, factor, book)
            for how in ("assembly", "finalize"):
                seconds, rss_kib = stitch_in_child(store_root, job, how)
                size = sum(
                    p.stat().st_size
                    for p in (store_root / "jobs" / job / "out").iterdir()
                    if p.suffix in {".wav", ".pcm"}
                )
                print(
                    f"{how:8s} {factor}x: {size / 1e6:6.0f} MB audio in {seconds:5.1f} s "
                    f"({size / 1e6 / seconds:.0f} MB/s), peak RSS {rss_kib / 1024:.0f} MiB"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
