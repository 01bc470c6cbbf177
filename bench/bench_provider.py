"""Benchmark a provider job on one machine against the official SDK loop.

Not a test: run it by hand and read the numbers (needs the bench extra:
``pip install -e '.[bench]'`` for the official ``together`` SDK).

    .venv/bin/python bench/bench_provider.py [--jobs 16] [--ttfb 0.15] [--rtf 0.02] [--rounds 1]

The imitation provider runs in its own process, answering after ``--ttfb``
seconds and streaming audio at ``1 / --rtf`` times real time (50x by default).
The text is chapter 1 of *Moby-Dick* ("CHAPTER 1. Loomings.", from
../shared/corpus/moby-dick.epub when present; otherwise generated text of
about the same length), split into the chunks ``ttsbatch synth`` makes. In one
run, against that one provider:

1. baseline: the official Together SDK as its documentation shows it, one
   request per chunk, one after another (``client.audio.speech.create(...,
   stream=True, response_format="raw", response_encoding="pcm_s16le")``,
   iterating the stream and decoding each event's base64 audio);
2. ``ttsbatch synth --engine together`` run as a user runs it (the CLI, in a
   fresh process, ingest to published outputs), with its default concurrency
   and with ``-j JOBS``.

Prints wall times, the ratio baseline / ours, the most requests the provider
saw in flight, and how long each run took to send its first request.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scheduler.ingest import ingest_file  # noqa: E402
from scheduler.planning import plan_job  # noqa: E402
from ttsbatch.dev.fakeprovider import expected_audio  # noqa: E402
from ttsbatch.models import EngineSpec, JobOptions  # noqa: E402
from worker.engines.factory import default_max_chars  # noqa: E402

BOOK = ROOT.parent / "shared/corpus/moby-dick.epub"
CHAPTER = "CHAPTER 1. Loomings."
MODEL = "canopylabs/orpheus-3b-0.1-ft"
VOICE = "tara"
KEY = "bench-key"
SENTENCE = (
    "Whenever it is a damp, drizzly November in my soul, I account it high time to get to sea "
    "as soon as I can, and there is nothing surprising in this. "
)


def chapter_text(book: Path) -> tuple[str, str]:
    """Return chapter 1 of the book, or generated text of its length; and where it came from."""
    if book.exists():
        try:
            doc = ingest_file(book)
        except Exception as exc:  # noqa: BLE001 - a bench falls back rather than stops
            print(f"(could not ingest {book.name}: {type(exc).__name__}: {exc}; generated text)")
        else:
            for chapter in doc.chapters:
                if chapter.title.strip() == CHAPTER:
                    text = doc.text[chapter.char_start : chapter.char_end]
                    return text, f"{book.name}, {CHAPTER}"
            print(f"({book.name} has no chapter {CHAPTER!r}; generated text)")
    paragraphs = [SENTENCE * 5] * 16  # about 12 000 characters, like the chapter
    return "\n\n".join(paragraphs), "generated text"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def provider(ttfb: float, rtf: float) -> Iterator[str]:
    """Serve the imitation provider in a subprocess; yield its base URL (no ``/v1``)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    options = [f"ttfb={ttfb}", f"rtf={rtf}", f"api_key={KEY}"]
    server = subprocess.Popen(
        [sys.executable, "-m", "ttsbatch.dev.fakeprovider", "--port", str(port), *options],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/_stats", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the imitation provider did not start") from None
                time.sleep(0.05)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def provider_log(base: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return the provider's request log and stats, then clear them."""
    log = httpx.get(f"{base}/_log").json()
    stats = httpx.get(f"{base}/_stats").json()
    httpx.delete(f"{base}/_log")
    return log, stats


# The baseline as a user runs it: a script of its own. It prints the seconds of
# its loop (after imports and the client) and writes the audio for the check.
SDK_SCRIPT = """
import base64, json, sys, time
from together import Together

base, chunks, out = sys.argv[1:4]
texts = json.loads(open(chunks, encoding="utf-8").read())
client = Together(api_key=sys.argv[4], base_url=base)  # SDK 3.x: the host alone, paths carry /v1
started = time.perf_counter()
with open(out, "wb") as audio:
    for text in texts:
        stream = client.audio.speech.create(
            model=sys.argv[5], input=text, voice=sys.argv[6], stream=True,
            response_format="raw", response_encoding="pcm_s16le",
        )
        for event in stream:  # audio in b64, delta or audio, whichever the server sends
            data = getattr(event, "b64", None) or getattr(event, "delta", None) or getattr(event, "audio", None)
            if isinstance(data, str):
                audio.write(base64.b64decode(data))
print(time.perf_counter() - started)
"""


def sdk_loop(base: str, texts: list[str], tmp: Path) -> tuple[float, float, bytes]:
    """The baseline: the official SDK, one streamed request per chunk, in order.

    Returns:
        The script's wall time, its loop's time, and the audio it wrote.
    """
    chunks, out = tmp / "chunks.json", tmp / "sdk.pcm"
    chunks.write_text(json.dumps(texts), encoding="utf-8")
    argv = [sys.executable, "-c", SDK_SCRIPT, base, str(chunks), str(out), KEY, MODEL, VOICE]
    started = time.perf_counter()
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the SDK loop failed ({done.returncode}):\n{done.stderr}")
    return wall, float(done.stdout.split()[-1]), out.read_bytes()


def ttsbatch_cli(base: str, book: Path, out: Path, jobs: int | None) -> tuple[float, float]:
    """``ttsbatch synth --engine together`` in a fresh process; (seconds, epoch started)."""
    argv = [str(Path(sys.executable).parent / "ttsbatch"), "synth", str(book), "-o", str(out)]
    argv += ["--engine", "together", "--base-url", base, "--model", MODEL, "--voice", VOICE]
    if jobs is not None:
        argv += ["--jobs", str(jobs)]
    env = {**os.environ, "TOGETHER_API_KEY": KEY}
    env.pop("TTSBATCH_PROVIDER_CONCURRENCY", None)  # the documented default
    wall = time.time()
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ttsbatch synth failed ({done.returncode}):\n{done.stderr}")
    return time.perf_counter() - started, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, default=BOOK)
    parser.add_argument("--jobs", type=int, default=16, help="requests in flight for -j")
    parser.add_argument("--ttfb", type=float, default=0.15, help="provider: seconds to first byte")
    parser.add_argument("--rtf", type=float, default=0.02, help="provider: real-time factor")
    parser.add_argument("--rounds", type=int, default=1, help="repeat each timing (median)")
    args = parser.parse_args()

    text, origin = chapter_text(args.book)
    with tempfile.TemporaryDirectory(prefix="bench-provider-") as tmp:
        book = Path(tmp) / "loomings.txt"
        book.write_text(text, encoding="utf-8")
        options = JobOptions(
            engine=EngineSpec(engine="together", model=MODEL, voice=VOICE),
            max_chars=default_max_chars("together"),
        )
        doc = ingest_file(book)
        plan = plan_job([doc], options).documents[0]
        texts = [doc.text[c.char_start : c.char_end] for c in plan.chunks]
        print(
            f"{origin}: {len(text)} characters, {len(texts)} chunks of at most "
            f"{options.max_chars}; provider: {args.ttfb * 1000:.0f} ms to first byte, "
            f"audio at {1 / args.rtf:.0f}x real time"
        )
        times: dict[str, list[float]] = {"sdk": [], "loop": [], "default": [], "jobs": []}
        expected = b"".join(expected_audio(t)[0] for t in texts)
        with provider(args.ttfb, args.rtf) as base:
            for round_ in range(args.rounds):
                wall, loop, audio = sdk_loop(base, texts, Path(tmp))
                log, stats = provider_log(base)
                assert len(log) == len(texts), (len(log), len(texts))
                assert audio == expected, "the SDK loop did not get the provider's audio"
                times["sdk"].append(wall)
                times["loop"].append(loop)
                print(
                    f"  SDK loop, own process: {wall:6.2f} s  ({loop:.2f} s in its loop after the"
                    f" imports; {len(audio) / 48_000:.0f} s of audio, {stats['max_in_flight']} in"
                    " flight)"
                )
                for name, jobs in (("default", None), ("jobs", args.jobs)):
                    out = Path(tmp) / f"out-{name}-{round_}"
                    seconds, started = ttsbatch_cli(base, book, out, jobs)
                    log, stats = provider_log(base)
                    assert len(log) == len(texts), (len(log), len(texts))
                    first = min(entry["received"] for entry in log) - started
                    times[name].append(seconds)
                    label = "ttsbatch synth" + (f" -j {jobs}:" if jobs else " (default):")
                    print(
                        f"  {label:<22} {seconds:6.2f} s  ({stats['max_in_flight']} in flight at"
                        f" most; first request {first:.2f} s after the start)"
                    )
        sdk, loop = statistics.median(times["sdk"]), statistics.median(times["loop"])
        rounds = f"median of {args.rounds} rounds" if args.rounds > 1 else "one round"
        print(f"baseline / ours, each from the start of its own process ({rounds}):")
        for name, label in (("default", "default"), ("jobs", f"-j {args.jobs}")):
            ours = statistics.median(times[name])
            print(
                f"  ttsbatch synth {label:<8} {sdk:.2f} s / {ours:.2f} s = {sdk / ours:4.1f}x"
                f"  (the SDK's loop alone: {loop / ours:.1f}x)"
            )


if __name__ == "__main__":
    main()
