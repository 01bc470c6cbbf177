"""Benchmark the provider client's stream decoding.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_sse.py [--seconds 60] [--delta-bytes 9600] [--chunks 20]

1. Decode throughput on one core, in memory: a Together event stream holding
   ``--seconds`` of 24 kHz audio, fed in 64 KiB reads to the same code the
   engine runs (httpx-sse framing, JSON, base64, PCM assembly, word times),
   in MB/s of base64 audio; with the stages timed separately.
2. Cost per chunk over a real socket: the imitation provider in its own
   process serves a ~400-character chunk; the client either only reads the
   bytes off the socket, or runs the whole Together engine (parse, decode,
   word times). Client CPU per chunk and wall time per chunk, both ways.
"""

from __future__ import annotations

import argparse
import binascii
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from httpx_sse import EventSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttsbatch.dev.fakeprovider import FakeProviderConfig, expected_audio
from ttsbatch.dev.fakeprovider.streams import together_sse
from ttsbatch.settings import TogetherSettings
from worker.engines.http import Provider
from worker.engines.sse import decode_stream
from worker.engines.together import TogetherEngine

ORPHEUS = "canopylabs/orpheus-3b-0.1-ft"
READ = 65_536
WORDS = (
    "It is a truth universally acknowledged, that a single man in possession of a good "
    "fortune, must be in want of a wife. However little known the feelings or views of such "
    "a man may be on his first entering a neighbourhood, this truth is so well fixed in the "
    "minds of the surrounding families, that he is considered the rightful property of some "
    "one or other of their daughters. "
)


def text_of_seconds(seconds: float) -> str:
    """Return text whose imitation speech lasts at least ``seconds``."""
    text = WORDS
    while len(expected_audio(text)[0]) / 48_000 < seconds:
        text += WORDS
    return text


def stream_bytes(text: str, delta_bytes: int) -> bytes:
    config = FakeProviderConfig(delta_bytes=delta_bytes)
    return b"".join(w.data for w in together_sse(text, config, rate=24_000, model=ORPHEUS))


def reads(data: bytes) -> Iterator[bytes]:
    return (data[i : i + READ] for i in range(0, len(data), READ))


def response(data: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=reads(data))


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def decode_throughput(seconds: float, delta_bytes: int, repeat: int) -> None:
    text = text_of_seconds(seconds)
    data = stream_bytes(text, delta_bytes)
    events = [sse.data for sse in EventSource(response(data)).iter_sse()]
    b64_bytes = sum(len(json.loads(e).get("delta", "")) for e in events if e.startswith("{"))
    provider = Provider("bench", "NONE")

    stages: list[tuple[str, Callable[[], object]]] = [
        ("read bytes only", lambda: sum(len(c) for c in response(data).iter_bytes())),
        ("+ httpx-sse framing", lambda: sum(1 for _ in EventSource(response(data)).iter_sse())),
        ("JSON only (pre-split)", lambda: [json.loads(e) for e in events if e.startswith("{")]),
        (
            "JSON + base64 (pre-split)",
            lambda: [binascii.a2b_base64(json.loads(e)["delta"]) for e in events if '"delta"' in e],
        ),
        (
            "full decode_stream",
            lambda: decode_stream(response(data), provider, sample_rate=24_000),
        ),
    ]
    print(
        f"in-memory stream: {len(data) / 1e6:.2f} MB, {len(events)} events, "
        f"{b64_bytes / 1e6:.2f} MB base64 audio, deltas of {delta_bytes} PCM bytes, reads of {READ}"
    )
    for name, run in stages:
        elapsed = best(run, repeat)
        print(
            f"  {name:<26} {elapsed * 1000:8.1f} ms  {b64_bytes / elapsed / 1e6:8.1f} MB/s of base64"
        )
    decoded = decode_stream(response(data), provider, sample_rate=24_000)
    assert decoded.pcm == expected_audio(text)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_stats", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError("the imitation provider did not start")


def per_chunk(chunks: int, delta_bytes: int) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ttsbatch.dev.fakeprovider",
            "--port",
            str(port),
            f"delta_bytes={delta_bytes}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_ready(base)
        text = " ".join(WORDS.split()[:70])[:400]
        body = {
            "model": ORPHEUS,
            "input": text,
            "voice": "tara",
            "stream": True,
            "response_format": "raw",
            "response_encoding": "pcm_s16le",
            "alignment": "word",
        }
        with httpx.Client(timeout=30) as client:
            engine = TogetherEngine(
                TogetherSettings(api_key="bench", base_url=base),
                model=ORPHEUS,
                voice="tara",
                client=client,
            )

            def read_only() -> int:
                with client.stream("POST", f"{base}/v1/audio/speech", json=body) as answer:
                    return sum(len(c) for c in answer.iter_raw())

            def full() -> int:
                return engine.synthesize(text).samples

            size = read_only()
            samples = full()
            print(
                f"over a socket: a {len(text)}-character chunk, {samples / 24_000:.1f} s of audio, "
                f"{size / 1e6:.2f} MB of SSE, {chunks} chunks each way"
            )
            for name, run in (
                ("read bytes off the socket", read_only),
                ("Together engine (full)", full),
            ):
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for _ in range(chunks):
                    run()
                cpu = (time.process_time() - cpu0) / chunks
                wall = (time.perf_counter() - wall0) / chunks
                print(
                    f"  {name:<26} client CPU {cpu * 1000:6.2f} ms/chunk   wall {wall * 1000:6.2f} ms/chunk"
                )
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio in the in-memory stream")
    parser.add_argument("--delta-bytes", type=int, default=9600, help="PCM bytes per audio event")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=20)
    args = parser.parse_args()
    decode_throughput(args.seconds, args.delta_bytes, args.repeat)
    per_chunk(args.chunks, args.delta_bytes)


if __name__ == "__main__":
    main()
