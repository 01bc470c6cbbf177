"""Benchmark the local pipeline against the raw engine, and stitch memory.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_local.py [BOOK] [--jobs N]

1. Throughput: ``ttsbatch synth``'s whole pipeline (ingest, split, synthesise,
   store, stitch, timeline, subtitles) on BOOK against the raw espeak engine
   alone on the same chunks with the same number of processes — the limit on
   this machine.
2. Stitch memory: peak RSS of a process that finalizes the job (streams every
   chunk into the WAV and writes the timeline), for the book and for a job four
   times as long; it must stay flat.

BOOK defaults to ../shared/corpus/pride-and-prejudice.txt when present.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
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
from ttsbatch.local import run_local  # noqa: E402
from ttsbatch.models import AudioFormat, EngineSpec, JobOptions, JobStatus, Manifest  # noqa: E402
from ttsbatch.reporting import Progress  # noqa: E402
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


FINALIZE = """
import resource, sys, time
from ttsbatch import keys
from ttsbatch.models import Manifest
from ttsbatch.storage.local import LocalStore
from worker.finalize import finalize_job
store = LocalStore(__import__("pathlib").Path(sys.argv[1]))
manifest = Manifest.model_validate_json(store.read(keys.manifest_key(sys.argv[2])))
started = time.perf_counter()
finalize_job(store, manifest, keep_chunks=True)
elapsed = time.perf_counter() - started
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def finalize_in_child(root: Path, job_id: str) -> tuple[float, int]:
    """Finalize a stored job in a fresh process; return (seconds, peak RSS KiB)."""
    out = subprocess.run(
        [sys.executable, "-c", FINALIZE, str(root), job_id],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.split()
    return float(out[0]), int(out[1])


def scaled_job(root: Path, source_job: str, factor: int, book: Path) -> str:
    """Make a job ``factor`` times the book by reusing its stored chunks."""
    store = LocalStore(root)
    doc = ingest_file(book)
    big = doc.model_copy(update={"text": "\n\n".join([doc.text] * factor), "chapters": ()})
    # Raw PCM: four times a long book passes the 4 GiB limit of WAV.
    options = JobOptions(
        engine=EngineSpec(engine="espeak"), max_chars=400, audio_format=AudioFormat.PCM
    )
    manifest = write_plan(store, plan_job([big], options, job_id=f"x{factor}"), [big])
    plan = manifest.documents[0]
    small = sorted(k for k in store.list(f"jobs/{source_job}/chunks/") if k.endswith(".json"))
    for chunk in plan.chunks:
        src = small[chunk.index % len(small)].removesuffix(".json")
        for ext in ("json", "pcm"):
            dst = root / (keys.chunk_json_key if ext == "json" else keys.chunk_pcm_key)(
                manifest.job_id, plan.doc, chunk.index
            )
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(root / f"{src}.{ext}", dst)
    # The records' chunk indexes must match the plan's: rewrite the JSON index.
    for chunk in plan.chunks:
        key = keys.chunk_json_key(manifest.job_id, plan.doc, chunk.index)
        data = store.read(key).decode()
        head, _, tail = data.partition('"index":')
        rest = tail[tail.index(",") :]
        (root / key).unlink()
        store.write(key, f'{head}"index":{chunk.index}{rest}'.encode())
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "book", nargs="?", type=Path, default=ROOT.parent / "shared/corpus/pride-and-prejudice.txt"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    book: Path = args.book
    print(f"book: {book.name}, {book.stat().st_size / 1e3:.0f} kB, {args.jobs} processes")

    work = Path(tempfile.mkdtemp(prefix="ttsbatch-bench-"))
    try:
        document = ingest_file(book)
        options = JobOptions(engine=EngineSpec(engine="espeak"), max_chars=400)
        plan = plan_job([document], options)
        texts = [document.text[c.char_start : c.char_end] for c in plan.documents[0].chunks]
        raw_seconds, raw_samples = raw_engine(texts, args.jobs)
        audio = raw_samples / 22050
        print(
            f"raw engine:    {raw_seconds:7.1f} s  {len(texts)} chunks, {audio / 3600:.2f} h audio, "
            f"{audio / raw_seconds:.0f}x real time"
        )

        store = LocalStore(work / "store")
        clock = PhaseClock()
        started = time.perf_counter()
        manifest = run_local(
            [ingest_file(book)],
            options,
            store=store,
            settings=Settings(),
            jobs=args.jobs,
            progress=clock,
            keep_chunks=True,
        )
        finished = time.perf_counter()
        pipe_seconds = finished - started
        synth_seconds = clock.stitching - clock.synthesis
        print(
            f"full pipeline: {pipe_seconds:7.1f} s  (ingest+split+synth+store+stitch)  "
            f"efficiency {raw_seconds / pipe_seconds:.2f} of the raw engine"
        )
        print(
            f"  of which:    {clock.synthesis - started:7.1f} s ingest+plan, "
            f"{synth_seconds:.1f} s synthesis+store ({raw_seconds / synth_seconds:.2f} of raw), "
            f"{finished - clock.stitching:.1f} s stitch"
        )

        for factor in (1, 4):
            job = (
                manifest.job_id
                if factor == 1
                else scaled_job(work / "store", manifest.job_id, factor, book)
            )
            seconds, rss_kib = finalize_in_child(work / "store", job)
            size = sum(
                p.stat().st_size
                for p in (work / "store" / "jobs" / job / "out").iterdir()
                if p.suffix in {".wav", ".pcm"}
            )
            print(
                f"stitch {factor}x: {size / 1e6:8.0f} MB audio in {seconds:5.1f} s "
                f"({size / 1e6 / seconds:.0f} MB/s), peak RSS {rss_kib / 1024:.0f} MiB"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
