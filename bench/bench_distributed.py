"""Benchmark the distributed engine: scheduling efficiency, stitch memory, a killed worker.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_distributed.py [--chunks 1000] [--hours 10]
    .venv/bin/python bench/bench_distributed.py --kill     # only the killed-worker run

Everything runs on loopback: a throwaway Redis, SeaweedFS (S3), the imitation
provider in its own process, and ``ttsbatch worker`` processes.

1. Efficiency: wall time of a CHUNKS-chunk job through Celery workers against
   the ideal, the provider's total busy time (sum over requests of arrival to
   end of answer, from its request log) divided by the allowed concurrency
   (TTSBATCH_PROVIDER_CONCURRENCY). Target >= 0.9.
2. Stitch: HOURS of 24 kHz s16le audio as 10-second chunk objects on S3,
   stitched by ``worker.finalize.finalize_job`` in a separate process whose
   resident memory is sampled every 50 ms: peak RSS (flat, well under 200 MB)
   and throughput in MB/s of WAV written.
3. Kill (``--kill``, alone): chapter 1 of *Moby-Dick* (../shared/corpus, else
   generated text of its length) through two workers with the deployment's
   default time bounds, on an imitation provider with ``--kill-fault-rate``
   faults and at most ``--kill-limit`` requests in flight; once a third of the
   chunks are stored one worker is SIGKILLed. Prints the seconds from the kill
   to the job's end (what the chunks the dead worker held cost) and checks the
   outputs byte for byte against the local executor's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scheduler.dispatch import create_producer  # noqa: E402
from scheduler.ingest import ingest_file, ingest_text  # noqa: E402
from ttsbatch import keys  # noqa: E402
from ttsbatch.dev.fakeprovider import FakeProviderConfig, run_in_thread  # noqa: E402
from ttsbatch.dev.services import RedisServer, SeaweedFS, free_port  # noqa: E402
from ttsbatch.dev.stack import queues_for, stop_process, worker_command  # noqa: E402
from ttsbatch.executors.distributed import Cluster, follow, run_distributed, submit  # noqa: E402
from ttsbatch.executors.local import run_local  # noqa: E402
from ttsbatch.executors.outputs import download_outputs  # noqa: E402
from ttsbatch.executors.reporting import Progress  # noqa: E402
from ttsbatch.models import (  # noqa: E402
    BreakKind,
    Chapter,
    ChunkRecord,
    ChunkSpan,
    Document,
    DocumentPlan,
    EngineSpec,
    JobOptions,
    Manifest,
    TimingSource,
)
from ttsbatch.settings import Settings, TogetherSettings  # noqa: E402
from ttsbatch.state import JobState  # noqa: E402
from ttsbatch.storage.local import LocalStore  # noqa: E402
from ttsbatch.storage.s3 import S3Store, create_client  # noqa: E402

S3_KEY = "bench"
RATE = 24_000
CHUNK_SECONDS = 10
BOOK = ROOT.parent / "shared/corpus/moby-dick.epub"
CHAPTER = "CHAPTER 1. Loomings."
SENTENCE = (
    "Whenever it is a damp, drizzly November in my soul, I account it high time to get to sea "
    "as soon as I can, and there is nothing surprising in this. "
)
OUTPUTS = ("wav", "timestamps.json", "source.txt", "srt", "vtt")


def s3_store(endpoint: str, bucket: str) -> S3Store:
    client = create_client(
        endpoint_url=endpoint, region="us-east-1", access_key_id=S3_KEY, secret_access_key=S3_KEY
    )
    store = S3Store(client, bucket, "bench")
    store.ensure_bucket()
    return store


def env_for(
    redis_url: str, store: S3Store, endpoint: str, provider_url: str, concurrency: int
) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "TTSBATCH_STORE": store.url,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_KEY,
        "AWS_REGION": "us-east-1",
        "TOGETHER_BASE_URL": provider_url,
        "TOGETHER_API_KEY": "bench",
        "TTSBATCH_PROVIDER_CONCURRENCY": str(concurrency),
        "TTSBATCH_PROVIDER_RPS": "200",
    }


def start_provider(port: int, ttfb: float, log_dir: Path, *options: str) -> subprocess.Popen[bytes]:
    log = (log_dir / "provider.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ttsbatch.dev.fakeprovider",
            "--port",
            str(port),
            f"ttfb={ttfb}",
            *options,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=1):
                return process
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def efficiency(args: argparse.Namespace, work: Path, redis_url: str, endpoint: str) -> None:
    store = s3_store(endpoint, "bench-efficiency")
    port = free_port()
    provider = start_provider(port, args.ttfb, work)
    env = env_for(redis_url, store, endpoint, f"http://127.0.0.1:{port}/v1", args.concurrency)
    workers = []
    for n in range(args.workers):
        log = (work / f"worker-{n}.log").open("ab")
        argv = worker_command(queues=queues_for("together"), concurrency=args.threads)
        workers.append(
            subprocess.Popen(
                [*argv, f"--hostname=b{n}@%h", "--loglevel=warning"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        words = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
        text = " ".join(
            f"Line {i} says {words[i % 8]} and {words[(i // 8) % 8]}." for i in range(args.chunks)
        )
        document = ingest_text(text, "bench")
        document = document.model_copy(
            update={
                "chapters": (
                    Chapter(index=0, title="All", char_start=0, char_end=len(document.text)),
                )
            }
        )
        options = JobOptions(
            engine=EngineSpec(engine="together", model="hexgrad/Kokoro-82M", voice="af_heart"),
            max_chars=40,
        )
        settings = Settings(store=store.url, redis_url=redis_url)
        cluster = Cluster(
            store=store, state=JobState.from_url(redis_url), producer=create_producer(settings)
        )
        time.sleep(3)  # let the workers connect before the clock starts
        started = time.time()
        _, manifest = run_distributed(
            [document], options, settings=settings, cluster=cluster, timeout=3600
        )
        finished = time.time()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_log", timeout=30) as answer:
            log = json.loads(answer.read())
        entries = log if isinstance(log, list) else log.get("entries", log.get("log", []))
        busy = sum(e["finished"] - e["received"] for e in entries if e.get("finished"))
        last_chunk = max(e["finished"] for e in entries if e.get("finished"))
        ideal = busy / args.concurrency
        synth_wall = last_chunk - started
        chunks = len(manifest.documents[0].chunks)
        print(f"efficiency: {chunks} chunks, {len(entries)} requests, provider busy {busy:.1f} s")
        print(f"  ideal (busy / concurrency {args.concurrency}) = {ideal:.2f} s")
        print(f"  wall to last answer = {synth_wall:.2f} s -> efficiency {ideal / synth_wall:.3f}")
        print(
            f"  wall to job succeeded (incl. stitch) = {finished - started:.2f} s -> {ideal / (finished - started):.3f}"
        )
        cluster.close()
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            stop_process(process, 30)
        stop_process(provider, 10)


STITCH_CHILD = """
import sys, time
from ttsbatch import keys
from ttsbatch.models import Manifest
from ttsbatch.storage.s3 import S3Store, create_client
from worker.finalize import finalize_job
endpoint, bucket, job_id = sys.argv[1:4]
client = create_client(endpoint_url=endpoint, region="us-east-1", access_key_id="bench", secret_access_key="bench")
store = S3Store(client, bucket, "bench")
manifest = Manifest.model_validate_json(store.read(keys.manifest_key(job_id)))
print("ready", flush=True)
sys.stdin.readline()
started = time.monotonic()
finalize_job(store, manifest, keep_chunks=True)
print(f"done {time.monotonic() - started:.3f}", flush=True)
"""


def stitch(args: argparse.Namespace, endpoint: str) -> None:
    store = s3_store(endpoint, "bench-stitch")
    job_id = "stitch-bench"
    count = int(args.hours * 3600 / CHUNK_SECONDS)
    samples = RATE * CHUNK_SECONDS
    word = "tick "
    chars = len(word) * 10
    text = word * 10 * count
    spans = tuple(
        ChunkSpan(
            index=i, char_start=i * chars, char_end=(i + 1) * chars - 1, break_after=BreakKind.NONE
        )
        for i in range(count)
    )
    plan = DocumentPlan(
        doc="long",
        name="long",
        source_name="long.txt",
        source_sha256="0",
        chars=len(text),
        chapters=(Chapter(index=0, title="All", char_start=0, char_end=len(text)),),
        chunks=spans,
    )
    manifest = Manifest(
        job_id=job_id,
        created_at="2026-01-01T00:00:00+00:00",
        options=JobOptions(max_chars=100),
        documents=(plan,),
    )
    store.write(keys.output_key(job_id, "long", "source.txt"), text.encode())
    store.write(keys.manifest_key(job_id), manifest.model_dump_json(by_alias=True).encode())

    def upload(index: int) -> None:
        # A distinct, cheap pattern per chunk: a ramp offset by the chunk index.
        pcm = bytes((index + k) & 0xFF for k in range(256)) * (samples * 2 // 256)
        record = ChunkRecord(
            index=index,
            sample_rate=RATE,
            samples=len(pcm) // 2,
            pcm_sha256=hashlib.sha256(pcm).hexdigest(),
            timing=TimingSource.NONE,
            engine="bench",
        )
        store.write(keys.chunk_pcm_key(job_id, "long", index), pcm)
        store.write(
            keys.chunk_json_key(job_id, "long", index),
            record.model_dump_json(by_alias=True).encode(),
        )

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(upload, range(count)))
    total_bytes = count * samples * 2
    print(
        f"stitch: uploaded {count} chunks, {total_bytes / 1e6:.0f} MB in {time.monotonic() - started:.1f} s"
    )

    child = subprocess.Popen(
        [sys.executable, "-c", STITCH_CHILD, endpoint, store.bucket, job_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    proc = psutil.Process(child.pid)
    baseline = proc.memory_info().rss
    child.stdin.write("go\n")
    child.stdin.flush()
    samples_rss: list[int] = []
    while child.poll() is None:
        try:
            samples_rss.append(proc.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out = child.stdout.read()
    seconds = float(out.split("done", 1)[1].split()[0])
    wav = store.size(keys.output_key(job_id, "long", "wav"))
    quarter = len(samples_rss) // 4 or 1
    print(
        f"  {args.hours:g} h of {RATE} Hz audio -> WAV of {wav / 1e6:.0f} MB in {seconds:.1f} s = {wav / 1e6 / seconds:.0f} MB/s"
    )
    print(
        f"  finalize process RSS: {baseline / 2**20:.0f} MB after imports, peak {max(samples_rss) / 2**20:.0f} MB;"
        f" peak in 1st quarter {max(samples_rss[:quarter]) / 2**20:.0f} MB, in last quarter {max(samples_rss[-quarter:]) / 2**20:.0f} MB"
    )


def chapter_one() -> tuple[Document, str]:
    """Chapter 1 of Moby-Dick as one document, or generated text of its length."""
    if BOOK.exists():
        book = ingest_file(BOOK)
        for chapter in book.chapters:
            if chapter.title.strip() == CHAPTER:
                text = book.text[chapter.char_start : chapter.char_end]
                origin = f"{BOOK.name}, {CHAPTER}"
                break
        else:
            raise SystemExit(f"{BOOK} has no chapter {CHAPTER!r}")
    else:
        text, origin = "\n\n".join([SENTENCE * 5] * 16), "generated text"
    document = ingest_text(text, "chapter1")
    whole = Chapter(index=0, title=CHAPTER, char_start=0, char_end=len(document.text))
    return document.model_copy(update={"chapters": (whole,)}), origin


def same_as_local(
    store: S3Store, final: Manifest, document: Document, options: JobOptions, work: Path
) -> bool:
    """Whether the job's outputs equal, byte for byte, the local executor's on a clean provider."""
    out, reference = work / "kill-out", work / "kill-reference"
    download_outputs(store, final, out)
    with run_in_thread(FakeProviderConfig()) as clean:
        local = LocalStore(reference / ".store")
        together = TogetherSettings(base_url=clean.api_url, api_key="bench")
        local_manifest = run_local(
            [document], options, store=local, settings=Settings(together=together), jobs=4
        )
    download_outputs(local, local_manifest, reference)
    return all(
        (out / f"chapter1.{suffix}").read_bytes() == (reference / f"chapter1.{suffix}").read_bytes()
        for suffix in OUTPUTS
    )


def kill(args: argparse.Namespace, work: Path, redis_url: str, endpoint: str) -> None:
    """SIGKILL one of two workers mid-job; print the seconds from the kill to the job's end."""
    store = s3_store(endpoint, "bench-kill")
    document, origin = chapter_one()
    options = JobOptions(
        engine=EngineSpec(engine="together", model="hexgrad/Kokoro-82M", voice="af_heart"),
        max_chars=args.kill_max_chars,
    )
    port = free_port()
    provider = start_provider(
        port,
        args.ttfb,
        work,
        f"rtf={args.kill_rtf}",
        f"fault_rate={args.kill_fault_rate}",
        f"max_concurrency={args.kill_limit}",
        "seed=11",
    )
    env = env_for(redis_url, store, endpoint, f"http://127.0.0.1:{port}/v1", args.kill_limit)
    workers = []
    for n in range(2):
        log = (work / f"kill-worker-{n}.log").open("ab")
        argv = worker_command(queues=queues_for("together"), concurrency=args.threads)
        workers.append(
            subprocess.Popen(
                [*argv, f"--hostname=k{n}@%h", "--loglevel=info"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    settings = Settings(store=store.url, redis_url=redis_url)
    cluster = Cluster(
        store=store, state=JobState.from_url(redis_url), producer=create_producer(settings)
    )
    try:
        time.sleep(3)  # let the workers connect before the clock starts
        started = time.time()
        manifest = submit([document], options, settings=settings, cluster=cluster)
        total = sum(len(plan.chunks) for plan in manifest.documents)
        while True:
            snapshot = cluster.state.snapshot(manifest.job_id)
            if snapshot is not None and snapshot.done >= total // 3:
                break
            time.sleep(0.05)
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait()
        killed = time.time()
        final = follow(cluster, manifest, Progress(), timeout=900)  # as synth --distributed does
        finished = time.time()
        held = total - (snapshot.done if snapshot else 0)
        print(f"kill: {origin}, {total} chunks, provider limit {args.kill_limit},")
        print(
            f"  fault rate {args.kill_fault_rate:g}; one of 2 workers SIGKILLed at {snapshot.done if snapshot else 0} stored"
        )
        print(
            f"  kill -> job succeeded: {finished - killed:.1f} s (whole job {finished - started:.1f} s)"
        )
        after = cluster.state.snapshot(manifest.job_id)
        if after is not None:
            print(
                f"  sent again: {after.resent} chunk(s) by lease expiry,"
                f" {after.stalls} time(s) after a stall; {after.retries} retries"
            )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_log", timeout=30) as answer:
            entries = json.loads(answer.read())
        spoken: dict[str, int] = {}
        for entry in entries:
            if entry.get("status") == 200 and not entry.get("fault") and entry.get("finished"):
                spoken[entry["text_sha256"]] = spoken.get(entry["text_sha256"], 0) + 1
        print(
            f"  provider: {len(entries)} requests; {sum(spoken.values())} whole answers for"
            f" {len(spoken)} chunks ({sum(n > 1 for n in spoken.values())} chunks answered twice)"
        )
        same = same_as_local(store, final, document, options, work)
        print(
            f"  outputs byte-identical to the local executor's: {same}; {held} chunks not stored at the kill"
        )
        cluster.close()
    finally:
        for process in workers:
            if process.poll() is None:
                process.terminate()
        for process in workers:
            stop_process(process, 30)
        stop_process(provider, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--ttfb", type=float, default=0.25, help="provider time to first byte (s)")
    parser.add_argument("--hours", type=float, default=10.0)
    parser.add_argument("--skip-efficiency", action="store_true")
    parser.add_argument("--skip-stitch", action="store_true")
    parser.add_argument("--kill", action="store_true", help="only the killed-worker run")
    parser.add_argument("--kill-fault-rate", type=float, default=0.15)
    parser.add_argument("--kill-limit", type=int, default=4, help="provider concurrency")
    parser.add_argument("--kill-max-chars", type=int, default=280, help="chunk size")
    parser.add_argument("--kill-rtf", type=float, default=0.1, help="provider real-time factor")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ttsbatch-bench-") as tmp:
        work = Path(tmp)
        with RedisServer(work / "redis") as redis_server, SeaweedFS(work / "s3") as s3:
            if args.kill:
                kill(args, work, redis_server.url, s3.endpoint_url)
                return
            if not args.skip_efficiency:
                efficiency(args, work, redis_server.url, s3.endpoint_url)
            if not args.skip_stitch:
                stitch(args, s3.endpoint_url)


if __name__ == "__main__":
    main()
