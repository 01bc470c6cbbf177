"""The player's routes: documents and chapters while a job runs and once it is finished.

No worker runs here: a test stores a chunk's PCM and record and counts it in
Redis as a worker would (:func:`store_chunk`), and finishes the job with the
workers' own finalize.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from ttsbatch import keys
from ttsbatch.manifests import read_manifest
from ttsbatch.messages import chunk_id
from ttsbatch.models import ChunkRecord, JobStatus, Manifest, TimingSource, WordTiming
from ttsbatch.storage import Store
from worker.finalize import finalize_job

from .conftest import AUTH_A, AUTH_B

RATE = 22050
BOOK = """A Title Page

CHAPTER I. The Start

It was a dark night. The wind blew hard. Nobody came.

CHAPTER II. The Middle

Morning came at last. The birds sang. Then it rained again.

CHAPTER III. The End

All was well. They went home.
"""


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
    app.state.services.state.client.close()


def submit(client: TestClient, **options: Any) -> Manifest:
    """Submit the book (planned at once); return its manifest."""
    body = {"input": BOOK, "name": "book", "max_chars": 40, **options}
    job = client.post("/v1/jobs", json=body, headers=AUTH_A).json()
    store: Store = client.app.state.services.store  # type: ignore[attr-defined]
    return read_manifest(store, job["id"])


def store_chunk(app: FastAPI, manifest: Manifest, position: int) -> None:
    """Do what a worker does for one chunk: its PCM, then its record, then count it."""
    services = app.state.services
    plan = manifest.documents[0]
    chunk = plan.chunks[position]
    text = BOOK_TEXT(services.store, manifest)[chunk.char_start : chunk.char_end]
    words = []
    for match in re.finditer(r"\S+", text):
        words.append(
            WordTiming(
                text=match.group(),
                char_start=match.start(),
                char_end=match.end(),
                start=match.start() * 100,
                end=match.end() * 100,
            )
        )
    samples = len(text) * 100 + 37 * position  # distinct lengths, odd rounding
    pcm = bytes((chunk.index * 7 + i) % 251 for i in range(samples * 2))
    services.store.write(keys.chunk_pcm_key(manifest.job_id, plan.doc, chunk.index), pcm)
    record = ChunkRecord(
        index=chunk.index,
        sample_rate=RATE,
        samples=samples,
        pcm_sha256=hashlib.sha256(pcm).hexdigest(),
        timing=TimingSource.PROVIDER,
        words=tuple(words),
        engine="espeak",
    )
    services.store.write(
        keys.chunk_json_key(manifest.job_id, plan.doc, chunk.index),
        record.model_dump_json(by_alias=True).encode(),
    )
    services.state.mark_done(
        manifest.job_id,
        chunk_id(plan.doc, chunk.index),
        chars=len(text),
        audio_seconds=samples / RATE,
        synthesized=True,
        claimant=f"test-{position}",
    )


def BOOK_TEXT(store: Store, manifest: Manifest) -> str:  # noqa: N802 - reads like the constant
    doc = manifest.documents[0].doc
    return store.read(keys.output_key(manifest.job_id, doc, "source.txt")).decode()


def finish(app: FastAPI, manifest: Manifest) -> Manifest:
    """Stitch the job as its finalize task does and mark it succeeded."""
    services = app.state.services
    done = finalize_job(services.store, manifest)
    services.state.finish(manifest.job_id, JobStatus.SUCCEEDED)
    return done


def chapters_url(manifest: Manifest) -> str:
    return f"/v1/jobs/{manifest.job_id}/documents/{manifest.documents[0].doc}/chapters"


def test_a_running_jobs_chapter_is_ready_once_its_chunks_are_stored(
    client: TestClient, app: FastAPI
) -> None:
    manifest = submit(client)
    listed = client.get(f"/v1/jobs/{manifest.job_id}/documents", headers=AUTH_A).json()
    (document,) = listed["documents"]
    assert document["name"] == "book" and document["status"] == "running"
    assert document["audio"] is None and document["duration"] is None
    titles = [c["title"] for c in document["chapters"]]
    assert titles == [
        "book",
        "CHAPTER I. The Start",
        "CHAPTER II. The Middle",
        "CHAPTER III. The End",
    ]
    assert not any(c["ready"] for c in document["chapters"])
    assert document["chapters"][1]["url"] == f"{chapters_url(manifest)}/1"

    answer = client.get(f"{chapters_url(manifest)}/1", headers=AUTH_A)
    assert answer.status_code == 409 and "not ready" in answer.json()["detail"]
    assert client.get(f"{chapters_url(manifest)}/1/audio", headers=AUTH_A).status_code == 409

    plan = manifest.documents[0]
    text = BOOK_TEXT(app.state.services.store, manifest)
    # Store chapter I's chunks (and only those).
    first = [
        i for i, c in enumerate(plan.chunks) if "dark night" in text[c.char_start : c.char_end]
    ]
    heading = first[0] - 1
    for position in range(heading, heading + 3):
        store_chunk(app, manifest, position)
    listed = client.get(f"/v1/jobs/{manifest.job_id}/documents", headers=AUTH_A).json()
    ready = [c["ready"] for c in listed["documents"][0]["chapters"]]
    assert ready == [False, True, False, False]
    chapter = client.get(f"{chapters_url(manifest)}/1", headers=AUTH_A).json()
    assert chapter["final"] is False and chapter["start"] == 0.0
    assert chapter["audio"] == f"{chapters_url(manifest)}/1/audio"
    assert chapter["text"].startswith("CHAPTER I. The Start") and "Nobody came." in chapter["text"]
    for start, end, char_start, char_end in chapter["words"]:
        assert 0 <= start <= end <= chapter["end"]
        assert chapter["text"][char_start:char_end].strip() == chapter["text"][char_start:char_end]
    assert [chapter["text"][w[2] : w[3]] for w in chapter["words"]][:3] == ["CHAPTER", "I.", "The"]


def test_a_chapter_plays_before_the_job_ends_and_its_times_are_the_finished_ones(
    client: TestClient, app: FastAPI
) -> None:
    manifest = submit(client)
    plan = manifest.documents[0]
    for position in range(len(plan.chunks)):
        store_chunk(app, manifest, position)
    previews = [
        client.get(f"{chapters_url(manifest)}/{i}", headers=AUTH_A).json() for i in range(4)
    ]
    wavs = [
        client.get(f"{chapters_url(manifest)}/{i}/audio", headers=AUTH_A).content for i in range(4)
    ]
    done = finish(app, manifest)
    store = app.state.services.store
    stitched = store.read(done.outputs[plan.doc]["audio"])
    listed = client.get(f"/v1/jobs/{manifest.job_id}/documents", headers=AUTH_A).json()
    (document,) = listed["documents"]
    assert document["status"] == "succeeded" and all(c["ready"] for c in document["chapters"])
    assert document["audio"] == f"/v1/jobs/{manifest.job_id}/files/book.wav"
    assert document["duration"] == pytest.approx((len(stitched) - 44) / 2 / RATE, abs=1e-6)
    for index, (preview, wav) in enumerate(zip(previews, wavs, strict=True)):
        final = client.get(f"{chapters_url(manifest)}/{index}", headers=AUTH_A).json()
        assert final["final"] is True and final["audio"] == document["audio"]
        assert final["text"] == preview["text"]
        assert final["end"] - final["start"] == pytest.approx(preview["end"], abs=2e-6)
        # Preview times plus the chapter's start are the finished timeline's, to the microsecond.
        assert len(final["words"]) == len(preview["words"]) > 0
        for (s, e, cs, ce), (fs, fe, fcs, fce) in zip(
            preview["words"], final["words"], strict=True
        ):
            assert (cs, ce) == (fcs, fce)
            assert s + final["start"] == pytest.approx(fs, abs=2e-6)
            assert e + final["start"] == pytest.approx(fe, abs=2e-6)
        # The preview's bytes are the stitched file's for the chapter, and so is the
        # chapter cut from the finished file.
        start, end = round(final["start"] * RATE), round(final["end"] * RATE)
        assert wav[44:] == stitched[44 + start * 2 : 44 + end * 2]
        again = client.get(f"{chapters_url(manifest)}/{index}/audio", headers=AUTH_A)
        assert again.content == wav


def test_chapter_audio_answers_ranges_with_206_and_bad_ones_with_416(
    client: TestClient, app: FastAPI
) -> None:
    manifest = submit(client)
    for position in range(len(manifest.documents[0].chunks)):
        store_chunk(app, manifest, position)
    url = f"{chapters_url(manifest)}/2/audio"
    whole = client.get(url, headers=AUTH_A)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "audio/wav"
    size = len(whole.content)
    assert whole.content[:4] == b"RIFF" and int(whole.headers["content-length"]) == size
    for header, (start, end) in {
        "bytes=0-99": (0, 100),
        "bytes=40-": (40, size),
        "bytes=-1000": (size - 1000, size),
        f"bytes=100-{size + 50}": (100, size),
    }.items():
        part = client.get(url, headers={**AUTH_A, "Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert part.content == whole.content[start:end]
    refused = client.get(url, headers={**AUTH_A, "Range": f"bytes={size}-"})
    assert refused.status_code == 416 and refused.headers["content-range"] == f"bytes */{size}"
    several = client.get(url, headers={**AUTH_A, "Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == whole.content


def test_a_finished_file_is_streamed_with_ranges_and_its_media_type(
    client: TestClient, app: FastAPI
) -> None:
    manifest = submit(client)
    for position in range(len(manifest.documents[0].chunks)):
        store_chunk(app, manifest, position)
    finish(app, manifest)
    base = f"/v1/jobs/{manifest.job_id}/files"
    wav = client.get(f"{base}/book.wav", headers=AUTH_A)
    assert wav.headers["content-type"] == "audio/wav" and wav.headers["accept-ranges"] == "bytes"
    part = client.get(f"{base}/book.wav", headers={**AUTH_A, "Range": "bytes=44-1043"})
    assert part.status_code == 206 and part.content == wav.content[44:1044]
    size = len(wav.content)
    assert part.headers["content-range"] == f"bytes 44-1043/{size}"
    assert (
        client.get(f"{base}/book.wav", headers={**AUTH_A, "Range": "bytes=-0"}).status_code == 416
    )
    types = {
        "book.timestamps.json": "application/json",
        "book.vtt": "text/vtt; charset=utf-8",
        "book.srt": "application/x-subrip",
        "book.source.txt": "text/plain; charset=utf-8",
    }
    for name, media in types.items():
        assert client.get(f"{base}/{name}", headers=AUTH_A).headers["content-type"] == media
    assert client.get(f"{base}/book.wav", headers=AUTH_B).status_code == 404


def test_another_tenants_job_and_unknown_documents_or_chapters_are_404(
    client: TestClient, app: FastAPI
) -> None:
    manifest = submit(client)
    for position in range(len(manifest.documents[0].chunks)):
        store_chunk(app, manifest, position)
    job = manifest.job_id
    for url in (
        f"/v1/jobs/{job}/documents",
        f"{chapters_url(manifest)}/0",
        f"{chapters_url(manifest)}/0/audio",
    ):
        assert client.get(url, headers=AUTH_A).status_code == 200, url
        answer = client.get(url, headers=AUTH_B)
        assert answer.status_code == 404 and answer.json()["error"] == "not_found", url
    assert (
        client.get(f"/v1/jobs/{job}/documents/nope/chapters/0", headers=AUTH_A).status_code == 404
    )
    assert client.get(f"{chapters_url(manifest)}/4", headers=AUTH_A).status_code == 404
    assert client.get(f"{chapters_url(manifest)}/4/audio", headers=AUTH_A).status_code == 404


def test_a_document_without_chapters_is_one_chapter_titled_by_it(client: TestClient) -> None:
    job = client.post(
        "/v1/jobs", json={"input": "Just one line. And another.", "name": "note"}, headers=AUTH_A
    ).json()
    (document,) = client.get(f"/v1/jobs/{job['id']}/documents", headers=AUTH_A).json()["documents"]
    assert [(c["index"], c["title"]) for c in document["chapters"]] == [(0, "note")]


def test_a_finished_encoded_chapter_points_into_the_audiobook(
    client: TestClient, app: FastAPI
) -> None:
    manifest = submit(client, audio_format="m4b")
    for position in range(len(manifest.documents[0].chunks)):
        store_chunk(app, manifest, position)
    preview = client.get(f"{chapters_url(manifest)}/2", headers=AUTH_A).json()
    finish(app, manifest)
    chapter = client.get(f"{chapters_url(manifest)}/2", headers=AUTH_A).json()
    assert chapter["final"] and chapter["audio"] == f"/v1/jobs/{manifest.job_id}/files/book.m4b"
    assert chapter["start"] > 0 and chapter["words"][0][0] >= chapter["start"]
    assert chapter["end"] - chapter["start"] == pytest.approx(preview["end"], abs=2e-6)
    # Its chunks are gone and the audiobook is encoded: no WAV of the chapter any more.
    answer = client.get(f"{chapters_url(manifest)}/2/audio", headers=AUTH_A)
    assert answer.status_code == 409 and "play its audio" in answer.json()["detail"]
    audio = client.get(chapter["audio"], headers={**AUTH_A, "Range": "bytes=0-7"})
    assert audio.status_code == 206 and audio.headers["content-type"] == "audio/mp4"
    (document,) = client.get(f"/v1/jobs/{manifest.job_id}/documents", headers=AUTH_A).json()[
        "documents"
    ]
    last = client.get(f"{chapters_url(manifest)}/3", headers=AUTH_A).json()
    assert document["duration"] == pytest.approx(last["end"], abs=1e-6)


def test_a_finished_raw_pcm_chapter_plays_as_its_wav_cut_from_the_file(
    client: TestClient, app: FastAPI
) -> None:
    """No browser plays raw PCM: a finished PCM chapter points at its WAV, times on it."""
    manifest = submit(client, audio_format="pcm")
    for position in range(len(manifest.documents[0].chunks)):
        store_chunk(app, manifest, position)
    preview = client.get(f"{chapters_url(manifest)}/2", headers=AUTH_A).json()
    finish(app, manifest)
    chapter = client.get(f"{chapters_url(manifest)}/2", headers=AUTH_A).json()
    assert chapter["final"] and chapter["audio"].endswith("/chapters/2/audio")
    assert chapter["start"] == 0.0 and chapter["end"] == pytest.approx(preview["end"], abs=2e-6)
    assert len(chapter["words"]) == len(preview["words"])
    for final, early in zip(chapter["words"], preview["words"], strict=True):
        assert final == pytest.approx(early, abs=2e-6)
    audio = client.get(chapter["audio"], headers={**AUTH_A, "Range": "bytes=0-11"})
    assert audio.status_code == 206 and audio.content[:4] == b"RIFF"


def test_a_job_redis_forgot_is_read_from_the_store(client: TestClient, app: FastAPI) -> None:
    manifest = submit(client)
    for position in range(len(manifest.documents[0].chunks)):
        store_chunk(app, manifest, position)
    state = app.state.services.state
    state.client.delete(*state.names.all(manifest.job_id))
    listed = client.get(f"/v1/jobs/{manifest.job_id}/documents", headers=AUTH_A).json()
    assert all(c["ready"] for c in listed["documents"][0]["chapters"])
    assert client.get(f"{chapters_url(manifest)}/3/audio", headers=AUTH_A).status_code == 200


def test_a_chapter_asked_for_as_the_stitch_ends_is_read_from_the_finished_file(
    client: TestClient, app: FastAPI
) -> None:
    manifest = submit(client)
    for position in range(len(manifest.documents[0].chunks)):
        store_chunk(app, manifest, position)
    url = f"{chapters_url(manifest)}/1"
    preview = client.get(url, headers=AUTH_A).json()
    wav = client.get(f"{url}/audio", headers=AUTH_A).content
    state = app.state.services.state
    assert state.status(manifest.job_id) is JobStatus.STITCHING
    # The stitch wrote the outputs and removed the chunks; Redis has not heard yet.
    finalize_job(app.state.services.store, manifest)
    assert state.status(manifest.job_id) is JobStatus.STITCHING
    assert client.get(f"{url}/audio", headers=AUTH_A).content == wav
    final = client.get(url, headers=AUTH_A).json()
    assert final["final"] is True and final["text"] == preview["text"]
