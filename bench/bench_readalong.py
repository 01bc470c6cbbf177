"""What a read-along book costs on top of a finished run: mapping the EPUB, building the book.

Usage::

    ttsbatch synth BOOK.epub -o OUT/ --format mp3      # once (a whole book takes minutes)
    python bench/bench_readalong.py BOOK.epub OUT/ [--unit word]

From the run's outputs (its timestamps JSON and MP3), it maps the EPUB's text
to its XHTML as planning does (:func:`scheduler.ingest.anchoring.source_map`),
feeds the timeline's words to a :class:`~ttsbatch.audio.readalong.Spoken` as
finishing does, and builds the EPUB (:func:`~ttsbatch.audio.readalong.build_book`)
into a temporary folder. It prints each step's time, the number of units, the
book's size against its audio's, and the peak RSS of this process (which also
holds the timeline's words as models: the executors never do).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from scheduler.ingest import ingest_file
from scheduler.ingest.anchoring import source_map
from scheduler.splitting import split
from ttsbatch.audio.readalong import Audio, Front, Spoken, build_book
from ttsbatch.models import Chapter, JobOptions, TimedChunk, TimedWord


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("book", type=Path, help="the EPUB the run spoke")
    parser.add_argument("outputs", type=Path, help="the folder the run wrote (--format mp3)")
    parser.add_argument("--unit", choices=["sentence", "word"], default="sentence")
    args = parser.parse_args()
    name = args.book.stem
    started = time.perf_counter()
    document = ingest_file(args.book)
    ingested = time.perf_counter()
    assert document.epub is not None
    mapped = source_map(document.epub, document.text, args.book.name)
    mapping = time.perf_counter()
    timeline = json.loads((args.outputs / f"{name}.timestamps.json").read_text())
    chapters = [
        Chapter(**{key: c[key] for key in ("index", "title", "char_start", "char_end")})
        for c in timeline["chapters"]
    ]
    chunks = split(document.text, max_chars=JobOptions().max_chars, chapters=chapters)
    words = [TimedWord(**word) for word in timeline["words"]]
    loaded = time.perf_counter()
    spoken = Spoken(args.unit)
    position = 0
    for chunk, timed in zip(chunks, timeline["chunks"], strict=True):
        mine = []
        while position < len(words) and words[position].char_start < chunk.char_end:
            mine.append(words[position])
            position += 1
        spoken.add(chunk, TimedChunk(**timed), mine)
    collected = time.perf_counter()
    audio = args.outputs / f"{name}.mp3"
    front = Front(
        title=name, language="en", identifier="urn:bench", modified="2026-01-01T00:00:00Z"
    )
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"{name}.epub"
        build_book(
            out,
            text=document.text,
            chapters=document.chapters,
            spoken=spoken,
            front=front,
            audio=Audio(audio, "audio/mpeg", "mp3"),
            cover=None,
            source=(document.epub, mapped),
        )
        built = time.perf_counter()
        size = out.stat().st_size
    print(
        f"ingest {ingested - started:.2f} s; map {mapping - ingested:.2f} s"
        f" ({sum(len(d.segments) for d in mapped.documents)} segments,"
        f" {mapped.unmatched} paragraphs unmatched); units {collected - loaded:.2f} s"
        f" ({len(spoken.units)} {args.unit}s); build {built - collected:.2f} s;"
        f" EPUB {size / 1e6:.1f} MB, its audio {audio.stat().st_size / 1e6:.1f} MB;"
        f" peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
