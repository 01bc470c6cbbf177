"""Benchmark the chunk cache: what a re-run after an edit bills, against the whole book.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_cache.py [BOOK] [--chapter 30]

``ttsbatch synth BOOK`` with the Together engine against the imitation
provider (answering at once), with a fresh chunk cache; then the same book
with one chapter edited (a word added to the first sentence of each of its
paragraphs) and run again. Prints the characters billed by each run (the
CLI's own summary), the provider's request count, and the edited run's share
of the whole book. BOOK defaults to ../shared/corpus/pride-and-prejudice.txt.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ttsbatch.dev.fakeprovider import FakeProviderConfig, run_in_thread  # noqa: E402

TTSBATCH = Path(sys.executable).parent / "ttsbatch"
KEY = "bench-key"


def edit_chapter(text: str, chapter: int) -> tuple[str, int]:
    """Add a word to the first sentence of each paragraph of chapter ``chapter``."""
    marks = [m.start() for m in re.finditer(r"(?mi)^[ \t]*chapter [ivxlc\d]+", text)]
    start, end = marks[chapter - 1], marks[chapter] if chapter < len(marks) else len(text)
    part, changed = re.subn(r"(\r?\n[ \t]*\r?\n)(\w+) ", r"\1\2 indeed ", text[start:end])
    return text[:start] + part + text[end:], changed


def synth(book: Path, out: Path, url: str, cache: Path) -> tuple[str, float]:
    env = {**os.environ, "TOGETHER_API_KEY": KEY, "TTSBATCH_CACHE": str(cache)}
    argv = [str(TTSBATCH), "synth", str(book), "-o", str(out), "--engine", "together"]
    argv += ["--base-url", url, "--model", "hexgrad/Kokoro-82M", "--voice", "af_heart", "-j", "16"]
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return done.stdout, time.perf_counter() - started


def billed(summary: str) -> tuple[int, int]:
    found = re.search(r"billed: ([\d,]+) characters sent.*?, ([\d,]+) from the cache", summary)
    assert found, summary
    return int(found.group(1).replace(",", "")), int(found.group(2).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "book", nargs="?", type=Path, default=ROOT.parent / "shared/corpus/pride-and-prejudice.txt"
    )
    parser.add_argument("--chapter", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ttsbatch-bench-cache-"))
    text = args.book.read_text(encoding="cp1252")
    original = work / "book.txt"
    original.write_text(text, encoding="utf-8")
    edited_text, changed = edit_chapter(text, args.chapter)
    edited = work / "edited" / "book.txt"
    edited.parent.mkdir()
    edited.write_text(edited_text, encoding="utf-8")
    with run_in_thread(FakeProviderConfig(api_key=KEY)) as provider:
        first, first_s = synth(original, work / "out1", provider.api_url, work / "cache")
        requests = len(provider.state.log())
        second, second_s = synth(edited, work / "out2", provider.api_url, work / "cache")
        again = len(provider.state.log()) - requests
    sent, _ = billed(first)
    resent, cached = billed(second)
    print(
        f"{args.book.name}: first run billed {sent:,} characters in {requests:,} requests ({first_s:.1f} s)"
    )
    print(
        f"chapter {args.chapter} edited ({changed} paragraphs): billed {resent:,} characters in"
        f" {again:,} requests, {cached:,} from the cache ({second_s:.1f} s);"
        f" {100 * resent / sent:.2f} % of the book"
    )


if __name__ == "__main__":
    main()
