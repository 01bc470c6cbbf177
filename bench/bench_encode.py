"""Benchmark finished audiobooks: ``synth --format m4b`` against WAV then ffmpeg, and memory.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_encode.py [BOOK] [--hours 1] [--whole] [--skip-memory]

1. Speed, back to back on the same text: what a user would otherwise do,
   ``ttsbatch synth BOOK`` (WAV) followed by ``ffmpeg -i book.wav -c:a aac -b:a
   64k book.m4b`` (FFmpeg's default AAC coder), against ``ttsbatch synth BOOK
   --format m4b`` (mastered to -18 LUFS, chapters, tags). The ratio must stay
   at or under 0.8. By default on the first ``--hours`` of the book (cut at a
   paragraph); ``--whole`` adds the whole book (about half an hour for
   *Pride and Prejudice*, most of it ffmpeg's default AAC coder).
2. Memory: the hour's job and one four times as long, stored as workers store
   chunks, finished into M4B by ``finalize`` (spool, measure, master, encode)
   and by the local ``assembly``, each in a fresh process; peak RSS must stay
   flat.

BOOK defaults to ../shared/corpus/pride-and-prejudice.txt; needs ``ffmpeg`` on PATH.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_local import stitch_in_child, stored_job  # noqa: E402
from scheduler.ingest import ingest_file  # noqa: E402
from ttsbatch.executors.local import run_local  # noqa: E402
from ttsbatch.models import AudioFormat, EngineSpec, JobOptions  # noqa: E402
from ttsbatch.settings import Settings  # noqa: E402
from ttsbatch.storage.local import LocalStore  # noqa: E402

TTSBATCH = Path(sys.executable).parent / "ttsbatch"
#: espeak-ng at its default rate speaks about 1 150 characters of English prose a minute.
CHARS_PER_HOUR = 69_000


def cut(book: Path, hours: float, folder: Path) -> Path:
    """Return the first ``hours`` of ``book`` (by characters, cut at a paragraph) as a file."""
    text = book.read_text(encoding="cp1252", errors="replace")
    end = text.find("\n\n", int(hours * CHARS_PER_HOUR))
    out = folder / f"{book.stem}-{hours:g}h.txt"
    out.write_text(text[: end if end > 0 else len(text)], encoding="utf-8")
    return out


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout)


def speed(book: Path, work: Path) -> None:
    """Time WAV + ffmpeg against --format m4b on ``book``, back to back."""
    wav_dir, m4b_dir = work / "wav", work / "m4b"
    for folder in (wav_dir, m4b_dir):
        shutil.rmtree(folder, ignore_errors=True)
    # --no-cache: both arms synthesise every chunk (the chunk cache is measured elsewhere).
    synth_wav = timed([str(TTSBATCH), "synth", str(book), "--no-cache", "-o", str(wav_dir)])
    wav = wav_dir / f"{book.stem}.wav"
    ffmpeg = timed(
        ["ffmpeg", "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "64k", str(work / "ffmpeg.m4b")]
    )
    ours = timed(
        [str(TTSBATCH), "synth", str(book), "--no-cache", "--format", "m4b", "-o", str(m4b_dir)]
    )
    hours = duration(wav) / 3600
    baseline = synth_wav + ffmpeg
    print(
        f"{book.name}: {hours:.2f} h of audio. synth to WAV {synth_wav:.1f} s + ffmpeg AAC "
        f"{ffmpeg:.1f} s = {baseline:.1f} s; synth --format m4b {ours:.1f} s; "
        f"ratio {ours / baseline:.2f} (must be <= 0.8)"
    )


def memory(book: Path, work: Path) -> None:
    """Peak RSS of finishing a job of the book, and of one four times as long, into M4B."""
    root = work / "store"
    shutil.rmtree(root, ignore_errors=True)
    local = run_local(
        [ingest_file(book)],
        JobOptions(engine=EngineSpec(engine="espeak"), max_chars=400),
        store=LocalStore(root),
        settings=Settings(),
        keep_chunks=True,
    )
    for factor in (1, 4):
        job = stored_job(root, local, factor, book, audio_format=AudioFormat.M4B)
        for how in ("assembly", "finalize"):
            seconds, rss_kib = stitch_in_child(root, job, how)
            print(f"{how:8s} {factor}x: M4B in {seconds:6.1f} s, peak RSS {rss_kib / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "book", nargs="?", type=Path, default=ROOT.parent / "shared/corpus/pride-and-prejudice.txt"
    )
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--whole", action="store_true", help="also time the whole book")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ttsbatch-bench-encode-"))
    try:
        part = cut(args.book, args.hours, work)
        speed(part, work)
        if args.whole:
            speed(args.book, work)
        if not args.skip_memory:
            memory(part, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
