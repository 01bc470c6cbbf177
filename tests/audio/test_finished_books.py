"""Finished audiobooks: what players' tools (ffprobe, ffmpeg, mutagen) find in what ttsbatch encodes.

Real espeak-ng speech through the local executor, checked with tools the
project did not write; and the same bytes from finalize over stored chunks.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import mutagen
import numpy as np
import pytest
from mutagen.id3 import ID3

from scheduler.ingest import ingest_bytes
from scheduler.planning import plan_job, write_plan
from tests.images import jpeg
from ttsbatch import keys
from ttsbatch.audio.mastering import Meter, measure_file
from ttsbatch.executors.assembly import open_assembly
from ttsbatch.executors.local import run_local
from ttsbatch.models import (
    AudioFormat,
    BookInfo,
    ChunkRecord,
    Cover,
    Document,
    EngineSpec,
    JobOptions,
    Manifest,
    TimingSource,
)
from ttsbatch.settings import Settings
from ttsbatch.storage.local import LocalStore
from worker.finalize import finalize_job

pytestmark = pytest.mark.skipif(
    shutil.which("ffprobe") is None, reason="ffprobe/ffmpeg (Debian's ffmpeg) not installed"
)

ENCODED = [AudioFormat.M4B, AudioFormat.MP3, AudioFormat.OPUS, AudioFormat.FLAC]
SENTENCES = (
    "The keeper climbed the stair at dusk, counting every step aloud. "
    "He trimmed the wick, polished the great lens, and watched the light go round. "
    "Far out, a ship answered with three short blasts of her horn! "
)
TEXT = "\n\n".join(
    f"# Chapter {n}\n\n" + SENTENCES * 2 + "\n\n" + SENTENCES for n in ("One", "Two", "Three")
)


COVER = Cover(media_type="image/jpeg", data=jpeg())


def tool(command: str) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg or ffprobe (``command`` split on spaces); fail the test if it fails."""
    return subprocess.run(command.split(" "), check=True, capture_output=True)


def probe(path: Path) -> dict[str, Any]:
    """What ffprobe finds: chapters, format (with tags) and streams."""
    out = tool(
        f"ffprobe -v error -print_format json -show_chapters -show_format -show_streams {path}"
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def decode(path: Path, rate: int = 22050) -> np.ndarray:
    """The audio as ffmpeg decodes it, as floats of s16 mono at ``rate``."""
    raw = tool(f"ffmpeg -v error -i {path} -f s16le -ac 1 -ar {rate} -").stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float64)


def ebur128(path: Path) -> tuple[float, float]:
    """Integrated loudness and true peak as ffmpeg's own ebur128 filter reports them."""
    log = tool(f"ffmpeg -hide_banner -nostats -i {path} -af ebur128=peak=true -f null -")
    summary = log.stderr.decode()[log.stderr.decode().rindex("Summary:") :]
    lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))  # type: ignore[union-attr]
    return lufs, peak


def document(cover: Cover | None = COVER) -> Document:
    doc = ingest_bytes(TEXT.encode(), "keeper.md")
    return doc.model_copy(
        update={
            "cover": cover,
            "info": BookInfo(title="The Keeper", author="A. Writer", year="1901"),
        }
    )


def synth(tmp_path: Path, fmt: AudioFormat, **options: Any) -> tuple[Manifest, LocalStore]:
    store = LocalStore(tmp_path / fmt.value)
    manifest = run_local(
        [document()],
        JobOptions(engine=EngineSpec(engine="espeak"), audio_format=fmt, **options),
        store=store,
        settings=Settings(),
        jobs=2,
    )
    return manifest, store


@pytest.fixture(scope="module")
def books(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[AudioFormat, tuple[Manifest, LocalStore]]:
    folder = tmp_path_factory.mktemp("books")
    return {fmt: synth(folder, fmt) for fmt in ENCODED}


def audio_of(book: tuple[Manifest, LocalStore]) -> Path:
    manifest, store = book
    return store.path(manifest.outputs["keeper"]["audio"])


def timeline(book: tuple[Manifest, LocalStore]) -> dict[str, Any]:
    manifest, store = book
    return json.loads(store.read(manifest.outputs["keeper"]["timestamps"]))  # type: ignore[no-any-return]


@pytest.mark.parametrize("fmt", ENCODED, ids=str)
def test_players_tools_find_the_chapters_at_the_timelines_times_with_tags_and_cover(
    books: dict[AudioFormat, tuple[Manifest, LocalStore]], fmt: AudioFormat
) -> None:
    book = books[fmt]
    info = probe(audio_of(book))
    chapters = timeline(book)["chapters"]
    assert [c["tags"]["title"] for c in info["chapters"]] == [
        "Chapter One",
        "Chapter Two",
        "Chapter Three",
    ]
    for found, expected in zip(info["chapters"], chapters, strict=True):
        assert abs(float(found["start_time"]) - expected["start"]) <= 0.001
    tags = {k.lower(): v for k, v in info["format"].get("tags", {}).items()}
    for stream in info["streams"]:  # Ogg keeps its comments on the audio stream
        if stream["codec_type"] == "audio":
            tags.update({k.lower(): v for k, v in stream.get("tags", {}).items()})
    assert tags["title"] == "The Keeper"
    assert tags["artist"] == "A. Writer"
    assert [s for s in info["streams"] if s["disposition"]["attached_pic"] == 1], "no cover"
    # A container may count the encoder's last frame whole: two AAC frames at most.
    duration = float(info["format"]["duration"])
    assert abs(duration - timeline(book)["duration"]) <= 2048 / 22050, fmt


def test_mutagen_reads_what_was_written(
    books: dict[AudioFormat, tuple[Manifest, LocalStore]],
) -> None:
    m4b = mutagen.File(audio_of(books[AudioFormat.M4B]))
    assert [c.title for c in m4b.chapters] == ["Chapter One", "Chapter Two", "Chapter Three"]
    assert m4b.tags["©nam"] == ["The Keeper"] and m4b.tags["covr"]
    id3 = ID3(audio_of(books[AudioFormat.MP3]))
    assert len(id3.getall("CHAP")) == 3 and id3.getall("CTOC") and id3.getall("APIC")
    for fmt in (AudioFormat.FLAC, AudioFormat.OPUS):
        tags = mutagen.File(audio_of(books[fmt])).tags
        assert tags["CHAPTER002NAME"] == ["Chapter Two"]
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", tags["CHAPTER002"][0])


def test_the_m4b_is_mastered_to_the_audiobook_preset_as_ffmpeg_measures_it(
    books: dict[AudioFormat, tuple[Manifest, LocalStore]],
) -> None:
    manifest, _ = books[AudioFormat.M4B]
    lufs, peak = ebur128(audio_of(books[AudioFormat.M4B]))
    assert abs(lufs - -18.0) <= 1.0
    assert peak <= -3.0
    report = manifest.audio["keeper"].loudness
    assert report is not None
    assert abs(report.output_lufs - lufs) <= 0.5
    assert report.input_lufs < -19 and report.gain_db > 0


def test_every_format_decodes_onto_the_same_timeline(
    books: dict[AudioFormat, tuple[Manifest, LocalStore]],
) -> None:
    """Encoder priming and padding do not shift the audio: lossy decodes line up with FLAC's."""
    lossless = decode(audio_of(books[AudioFormat.FLAC]))
    for fmt in (AudioFormat.M4B, AudioFormat.MP3, AudioFormat.OPUS):
        decoded = decode(audio_of(books[fmt]))
        n = min(len(lossless), len(decoded))
        a, b = lossless[:n], decoded[:n]
        lags = range(-40, 41)
        best = max(
            lags,
            key=lambda lag: float(
                np.dot(a[max(lag, 0) : n + min(lag, 0)], b[max(-lag, 0) : n - max(lag, 0)])
            ),
        )
        assert abs(best) <= 1, f"{fmt}: decoded audio is {best} samples off the timeline"


def test_loudness_off_keeps_the_stitched_samples_exactly(tmp_path: Path) -> None:
    flac, flac_store = synth(tmp_path, AudioFormat.FLAC, loudness="off")
    pcm, pcm_store = synth(tmp_path, AudioFormat.PCM)
    stitched = np.frombuffer(pcm_store.read(pcm.outputs["keeper"]["audio"]), dtype="<i2")
    decoded = decode(flac_store.path(flac.outputs["keeper"]["audio"]))
    assert np.array_equal(decoded, stitched.astype(np.float64))
    assert flac.audio["keeper"].loudness is None


def test_split_chapters_writes_a_file_per_chapter_with_the_books_tags(tmp_path: Path) -> None:
    manifest, store = synth(tmp_path, AudioFormat.MP3, split_chapters=True)
    outputs = manifest.outputs["keeper"]
    parts = sorted(kind for kind in outputs if kind.isdigit())
    assert parts == ["001", "002", "003"]
    chapters = json.loads(store.read(outputs["timestamps"]))["chapters"]
    for kind, chapter in zip(parts, chapters, strict=True):
        info = probe(store.path(outputs[kind]))
        tags = info["format"]["tags"]
        assert tags["title"] == chapter["title"]
        assert tags["album"] == "The Keeper" and tags["artist"] == "A. Writer"
        assert tags["track"] == f"{int(kind)}/3"
        assert abs(float(info["format"]["duration"]) - (chapter["end"] - chapter["start"])) < 0.06
        assert store.path(outputs[kind]).name == f"keeper.{kind}.mp3"


def tone_chunk(manifest: Manifest, n: int, rate: int = 22050) -> tuple[ChunkRecord, bytes]:
    """A chunk of speech-like sound: a tone whose level changes from chunk to chunk."""
    span = manifest.documents[0].chunks[n]
    t = np.arange(rate * 2) / rate
    level = 0.1 + 0.8 * ((n * 7) % 10) / 10
    wave = (
        level * np.sin(2 * math.pi * (180 + 40 * n) * t) * (0.5 + 0.5 * np.sin(2 * math.pi * 3 * t))
    )
    pcm = (wave * 32767).astype("<i2").tobytes()
    record = ChunkRecord(
        index=span.index,
        sample_rate=rate,
        samples=len(pcm) // 2,
        pcm_sha256=hashlib.sha256(pcm).hexdigest(),
        timing=TimingSource.NONE,
        engine="test",
    )
    return record, pcm


@pytest.mark.parametrize("fmt", ENCODED, ids=str)
def test_the_local_assembly_and_the_workers_finalize_write_the_same_bytes(
    tmp_path: Path, fmt: AudioFormat
) -> None:
    options = JobOptions(audio_format=fmt, max_chars=120, split_chapters=True)
    results = []
    for way in ("assembly", "finalize"):
        store = LocalStore(tmp_path / way)
        doc = document()
        manifest = write_plan(store, plan_job([doc], options), [doc])
        plan = manifest.documents[0]
        if way == "assembly":
            assembly = open_assembly(store, manifest, plan, doc.text)
            for n in range(len(plan.chunks)):
                assembly.add(*tone_chunk(manifest, n))
            outputs, report = assembly.finish(), assembly.report
        else:
            for n in range(len(plan.chunks)):
                record, pcm = tone_chunk(manifest, n)
                store.write(keys.chunk_pcm_key(manifest.job_id, plan.doc, n), pcm)
                store.write(
                    keys.chunk_json_key(manifest.job_id, plan.doc, n),
                    record.model_dump_json(by_alias=True).encode(),
                )
            done = finalize_job(store, manifest)
            outputs, report = done.outputs[plan.doc], done.audio[plan.doc]
        results.append(({kind: store.read(key) for kind, key in outputs.items()}, report))
    (local, local_report), (workers, workers_report) = results
    assert local.keys() == workers.keys() and {"audio", "001", "cover"} <= local.keys()
    assert local == workers
    assert local_report == workers_report


def test_the_meter_does_not_depend_on_how_the_audio_arrives(tmp_path: Path) -> None:
    manifest, store = synth(tmp_path, AudioFormat.PCM)
    path = store.path(manifest.outputs["keeper"]["audio"])
    whole = measure_file(path, 22050)
    pieces = Meter(22050)
    data = path.read_bytes()
    at = 0
    for size in (1, 999, 4096 * 2, 77_777, 3):
        pieces.feed(data[at : at + size])
        at += size
    pieces.feed(data[at:])
    assert pieces.result() == whole
    wav = tmp_path / "keeper.wav"
    tool(f"ffmpeg -v error -f s16le -ar 22050 -ac 1 -i {path} {wav}")
    assert abs(ebur128(wav)[0] - whole.lufs) <= 0.1
