"""Benchmark the player's chapter resource on a Moby-Dick-sized book, through the real API.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_chapters.py [BOOK] [--rounds 3]

The book (default ../shared/corpus/moby-dick.epub: 139 chapters, about
214 000 words) is submitted to a real API app (a throwaway Redis, a local
store; the app plans the job as the beat would; no worker runs). Every chunk
then gets a stored record as a worker would write it: sample counts at 70 ms a
character, each word of the chunk (ttsbatch's own word spans) timed in
proportion (no PCM is needed for these resources). Two phases, each through
the app's HTTP stack (Starlette's TestClient):

* running (every chunk stored but the last, so the job runs and its last
  chapter is not ready): every ready chapter's resource (``…/chapters/{i}``)
  is built from its chunk records (cold: the records read; warm: kept per
  process);
* finished: the timestamps file is written by the stitch's own writers
  (``ttsbatch.audio.texts``), the manifest says succeeded, and every chapter's
  resource is read from it: the first request parses the file (cold), the rest
  take their words from the parsed arrays (warm).

Prints latencies (median, 95th percentile, maximum) per phase, the
timestamps file's size, and the process's resident memory before and after it
is parsed.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi import FastAPI  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from scheduler.api import create_app  # noqa: E402
from scheduler.api.services import Services  # noqa: E402
from scheduler.intake import Planner  # noqa: E402
from ttsbatch import keys  # noqa: E402
from ttsbatch.audio import stitching  # noqa: E402
from ttsbatch.audio.texts import ChunkTexts, document_head  # noqa: E402
from ttsbatch.audio.timeline import JSON_END, json_start  # noqa: E402
from ttsbatch.audio.words import word_spans  # noqa: E402
from ttsbatch.dev.services import RedisServer  # noqa: E402
from ttsbatch.manifests import read_manifest, write_manifest  # noqa: E402
from ttsbatch.messages import ALL_QUEUES, chunk_id  # noqa: E402
from ttsbatch.models import (  # noqa: E402
    ChunkRecord,
    JobStatus,
    Manifest,
    TimingSource,
    WordTiming,
)
from ttsbatch.roster import Roster  # noqa: E402
from ttsbatch.settings import ApiSettings, Settings  # noqa: E402
from ttsbatch.storage.local import LocalStore  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient on httpx rather than httpx2
    from starlette.testclient import TestClient

KEY = "bench-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
RATE = 24_000
SECONDS_PER_CHAR = 0.07


def rss_mib() -> float:
    """The process's resident memory (MiB), from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / (1 << 20)


def record_of(index: int, text: str) -> ChunkRecord:
    """A worker's record of a chunk: 70 ms a character, words timed in proportion."""
    samples = round(len(text) * SECONDS_PER_CHAR * RATE)
    per_char = samples / max(len(text), 1)
    words = tuple(
        WordTiming(
            text=text[a:b],
            char_start=a,
            char_end=b,
            start=round(a * per_char),
            end=round(b * per_char),
        )
        for a, b in word_spans(text)
    )
    return ChunkRecord(
        index=index,
        sample_rate=RATE,
        samples=samples,
        pcm_sha256="0" * 64,
        timing=TimingSource.PROVIDER,
        words=words,
        engine="together",
    )


def timed(client: TestClient, url: str) -> float:
    started = time.perf_counter()
    answer = client.get(url, headers=AUTH)
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed


def summary(name: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(
        f"{name}: n={len(ms)} median {statistics.median(ms):.1f} ms,"
        f" p95 {p95:.1f} ms, max {ms[-1]:.1f} ms"
    )


def store_records(services: Services, manifest: Manifest, text: str, chunks: slice) -> int:
    """Store some chunks' records and count them done, as workers would (no PCM); their words."""
    (plan,) = manifest.documents
    words = 0
    for chunk in plan.chunks[chunks]:
        record = record_of(chunk.index, text[chunk.char_start : chunk.char_end])
        words += len(record.words)
        services.store.write(
            keys.chunk_json_key(manifest.job_id, plan.doc, chunk.index),
            record.model_dump_json(by_alias=True).encode(),
        )
        services.state.mark_done(
            manifest.job_id,
            chunk_id(plan.doc, chunk.index),
            chars=chunk.char_end - chunk.char_start,
            audio_seconds=record.samples / RATE,
            synthesized=True,
            claimant="bench",
        )
    return words


def read_records(services: Services, manifest: Manifest) -> Iterator[ChunkRecord]:
    """The chunk records, read back one at a time."""
    (plan,) = manifest.documents
    for chunk in plan.chunks:
        key = keys.chunk_json_key(manifest.job_id, plan.doc, chunk.index)
        yield ChunkRecord.model_validate_json(services.store.read(key))


def finish(services: Services, manifest: Manifest, text: str) -> int:
    """Write the timestamps file with the stitch's writers, mark the job succeeded; its size."""
    (plan,) = manifest.documents
    store, job_id = services.store, manifest.job_id
    placements = stitching.layout(
        plan.chunks,
        [r.samples for r in read_records(services, manifest)],
        sample_rate=RATE,
        pauses=manifest.options.pauses,
    )
    outputs = keys.document_outputs(job_id, plan.doc, "wav")
    with store.open_write(outputs["timestamps"]) as sink:
        sink.write(json_start(document_head(plan, placements, RATE, [TimingSource.PROVIDER])))
        texts = ChunkTexts(text, RATE, words=sink, srt=io.BytesIO(), vtt=io.BytesIO())
        records = read_records(services, manifest)
        for chunk, place, record in zip(plan.chunks, placements, records, strict=True):
            texts.add(chunk, place, record)
        sink.write(JSON_END)
    done = manifest.model_copy(
        update={"status": JobStatus.SUCCEEDED, "outputs": {plan.doc: outputs}}
    )
    write_manifest(store, done)
    services.state.finish(job_id, JobStatus.SUCCEEDED)
    return store.size(outputs["timestamps"])


def planning_app(folder: Path, redis_url: str) -> tuple[LocalStore, Settings, FastAPI]:
    """An API app on a store in ``folder`` that plans jobs in process, as the beat would,
    with a worker announced (none runs: the bench writes the chunk records itself)."""
    store = LocalStore(folder / "store")
    settings = Settings(store=store.url, redis_url=redis_url, api=ApiSettings(keys=SecretStr(KEY)))
    Roster.from_url(redis_url).announce("bench@host", ALL_QUEUES, ttl=3600)
    app = create_app(settings, store=store)
    services = app.state.services
    planner = Planner(
        store=store,
        state=services.state,
        producer=services.producer,
        max_chars=settings.api.max_chars_per_job,
    )
    app.state.services = dataclasses.replace(services, plan=planner)
    return store, settings, app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "book", nargs="?", type=Path, default=ROOT.parent / "shared/corpus/moby-dick.epub"
    )
    parser.add_argument("--rounds", type=int, default=3, help="warm passes over every chapter")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder) / "redis") as redis:
        store, _, app = planning_app(Path(folder), redis.url)
        services = app.state.services
        with TestClient(app) as client:
            started = time.perf_counter()
            files = {"files": (args.book.name, args.book.read_bytes())}
            answer = client.post("/v1/jobs", files=files, data={"engine": "espeak"}, headers=AUTH)
            answer.raise_for_status()
            job_id = answer.json()["id"]
            manifest = read_manifest(store, job_id)
            (plan,) = manifest.documents
            print(
                f"planned {args.book.name}: {len(plan.chunks)} chunks in {time.perf_counter() - started:.1f} s"
            )
            text = store.read(keys.output_key(job_id, plan.doc, "source.txt")).decode()
            # All but the last chunk: the job is still running, its last chapter not ready.
            words = store_records(services, manifest, text, slice(None, -1))
            base = f"/v1/jobs/{job_id}/documents"
            listed = client.get(base, headers=AUTH).json()["documents"][0]["chapters"]
            urls = [chapter["url"] for chapter in listed if chapter["ready"]]
            print(f"{len(listed)} chapters ({len(urls)} ready), {words} words stored")
            summary("running: documents list", [timed(client, base) for _ in range(10)])
            summary("running: chapter, cold (records read)", [timed(client, u) for u in urls])
            summary(
                "running: chapter, warm",
                [timed(client, u) for _ in range(args.rounds) for u in urls],
            )

            store_records(services, manifest, text, slice(-1, None))
            urls = [chapter["url"] for chapter in listed]
            size = finish(services, manifest, text)
            print(f"timestamps file: {size / 1e6:.1f} MB")
            before = rss_mib()
            summary("finished: first chapter, cold (file parsed)", [timed(client, urls[0])])
            after = rss_mib()
            print(f"resident memory: {before:.0f} MiB before the parse, {after:.0f} MiB after")
            summary(
                "finished: chapter, warm",
                [timed(client, u) for _ in range(args.rounds) for u in urls],
            )
            summary("finished: documents list", [timed(client, base) for _ in range(10)])


if __name__ == "__main__":
    main()
