"""`ttsbatch synth` never pays twice: its cache, --dry-run, caps, and `ttsbatch cache`.

The real command in a subprocess against the imitation provider, whose
request log says what was sent (and so paid for).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ttsbatch.cached import put_chunk
from ttsbatch.cache import ChunkCache
from ttsbatch.dev.fakeprovider import FakeProviderConfig, run_in_thread
from ttsbatch.dev.fakeprovider.config import Fault
from ttsbatch.dev.fakeprovider.server import RunningProvider
from ttsbatch.storage.local import LocalStore

BIN = Path(sys.executable).parent / "ttsbatch"
KEY = "sk-test-key"


@pytest.fixture
def provider() -> Iterator[RunningProvider]:
    with run_in_thread(FakeProviderConfig(api_key=KEY)) as running:
        yield running


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.md"
    paragraphs = [
        f"The keeper counted {n} steps to the lamp. The sea was grey at dusk, and the light"
        f" went round. Ship number {n} answered from the dark."
        for n in range(12)
    ]
    path.write_text("# One\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    return path


def ttsbatch(provider: RunningProvider, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN), *args]
    if args[0] == "synth":
        argv += ["--engine", "together", "--base-url", provider.api_url]
        argv += ["--model", "hexgrad/Kokoro-82M", "--voice", "af_heart", "--max-chars", "90"]
    env = {**os.environ, "TOGETHER_API_KEY": KEY, "TTSBATCH_DEBUG": ""}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return int(found.group(1).replace(",", ""))


def test_a_dry_run_sends_nothing_and_bills_what_the_run_then_bills(
    provider: RunningProvider, book: Path, tmp_path: Path
) -> None:
    dry = ttsbatch(provider, "synth", str(book), "-o", str(tmp_path / "out"), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert provider.state.log() == []
    assert not (tmp_path / "out").exists()
    billed = number(r"billed: ([\d,]+) characters", dry.stdout)
    assert "cached: 0 chunks" in dry.stdout and "$" in dry.stdout

    done = ttsbatch(provider, "synth", str(book), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert number(r"billed: ([\d,]+) characters sent", done.stdout) == billed
    requests = len(provider.state.log())
    assert requests > 5

    again = ttsbatch(provider, "synth", str(book), "-o", str(tmp_path / "out"), "--dry-run")
    assert number(r"billed: ([\d,]+) characters", again.stdout) == 0
    rerun = ttsbatch(provider, "synth", str(book), "-o", str(tmp_path / "again"))
    assert rerun.returncode == 0 and len(provider.state.log()) == requests
    assert "billed: 0 characters sent" in rerun.stdout
    assert (tmp_path / "again" / "book.wav").read_bytes() == (
        tmp_path / "out" / "book.wav"
    ).read_bytes()

    fresh = ttsbatch(provider, "synth", str(book), "-o", str(tmp_path / "fresh"), "--no-cache")
    assert fresh.returncode == 0 and len(provider.state.log()) == 2 * requests


def test_a_cap_below_the_estimate_refuses_the_job_before_any_request(
    provider: RunningProvider, book: Path, tmp_path: Path
) -> None:
    out = str(tmp_path / "out")
    refused = ttsbatch(provider, "synth", str(book), "-o", out, "--max-billed-chars", "100")
    assert refused.returncode != 0
    assert "refused before anything was sent" in refused.stderr
    assert re.search(r"[\d,]+ characters would be billed", refused.stderr)
    too_dear = ttsbatch(provider, "synth", str(book), "-o", out, "--max-cost", "0.000001")
    assert too_dear.returncode != 0 and "over the cap of $0.0000" in too_dear.stderr
    assert provider.state.log() == []
    within = ttsbatch(provider, "synth", str(book), "-o", out, "--max-cost", "1")
    assert within.returncode == 0, within.stderr


def test_the_cache_command_tells_prunes_and_clears(
    provider: RunningProvider, book: Path, tmp_path: Path, own_chunk_cache: Path
) -> None:
    assert ttsbatch(provider, "synth", str(book), "-o", str(tmp_path / "out")).returncode == 0
    stats = ttsbatch(provider, "cache", "stats")
    assert stats.returncode == 0 and str(own_chunk_cache) in stats.stdout
    chunks = number(r"([\d,]+) chunks", stats.stdout)
    assert chunks > 5
    pruned = ttsbatch(provider, "cache", "prune", "--max-bytes", "1")
    assert number(r"removed ([\d,]+) chunks", pruned.stdout) == chunks
    assert number(r"([\d,]+) chunks", ttsbatch(provider, "cache", "stats").stdout) == 0
    ttsbatch(provider, "synth", str(book), "-o", str(tmp_path / "again"))
    cleared = ttsbatch(provider, "cache", "clear")
    assert number(r"removed ([\d,]+) chunks", cleared.stdout) == chunks


def test_the_cache_command_tells_and_clears_the_deployments_cache_in_the_store(
    provider: RunningProvider, tmp_path: Path, redis_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "store")
    for n, scope in enumerate(("a-one", "a-two")):
        put_chunk(ChunkCache(store, scope), n)
    monkeypatch.setenv("TTSBATCH_STORE", str(store.root))
    monkeypatch.setenv("REDIS_URL", redis_db_url)
    stats = ttsbatch(provider, "cache", "stats", "--store")
    assert stats.returncode == 0, stats.stderr
    assert number(r"([\d,]+) chunks", stats.stdout) == 2
    assert "TTSBATCH_CACHE_STORE_MAX_BYTES" in stats.stdout
    cleared = ttsbatch(provider, "cache", "clear", "--store")
    assert number(r"removed ([\d,]+) chunks", cleared.stdout) == 2
    assert list(store.list("cache/")) == []


def test_a_preview_speaks_the_beginning_and_the_full_run_takes_it_from_the_cache(
    provider: RunningProvider, book: Path, tmp_path: Path
) -> None:
    short = ttsbatch(provider, "synth", str(book), "-o", str(tmp_path / "p"), "--preview", "15")
    assert short.returncode == 0, short.stderr
    previewed = len(provider.state.log())
    text = (tmp_path / "p" / "book.source.txt").read_text()
    assert 0 < previewed < 10 and 200 < len(text) < 600  # about 15 s of speech
    full = ttsbatch(provider, "synth", str(book), "-o", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    cached = number(r"([\d,]+) from the cache", full.stdout)
    assert cached == number(r"billed: ([\d,]+) characters sent", short.stdout) > 0
    fresh = ttsbatch(
        provider, "synth", str(book), "-o", str(tmp_path / "x"), "--dry-run", "--no-cache"
    )
    total = number(r"billed: ([\d,]+) characters", fresh.stdout)
    assert number(r"billed: ([\d,]+) characters sent", full.stdout) == total - cached


def test_a_run_that_reaches_its_cap_stops_between_requests_and_goes_on_when_it_is_raised(
    book: Path, tmp_path: Path
) -> None:
    """Retries take a run past its estimate: it stops before the request that would pass the
    cap, keeps what it made, and a rerun with a higher cap sends only what is missing."""
    out = str(tmp_path / "out")
    faulty = FakeProviderConfig(
        api_key=KEY, fault_rate=0.5, seed=4, faults=(Fault.RATE_LIMIT_MS,), retry_delay=0.01
    )
    with run_in_thread(faulty) as provider:
        dry = ttsbatch(provider, "synth", str(book), "-o", out, "--dry-run")
        estimate = number(r"billed: ([\d,]+) characters", dry.stdout)
        stopped = ttsbatch(
            provider, "synth", str(book), "-o", out, "--max-billed-chars", str(estimate), "-j", "1"
        )
        port = int(provider.base_url.rsplit(":", 1)[1])
        first = provider.state.log()
    assert stopped.returncode != 0
    assert "stopped at its cap" in stopped.stderr and "what it made is kept" in stopped.stderr
    assert not (tmp_path / "out" / "book.wav").exists()
    made = {entry["text_sha256"] for entry in first if entry["status"] == 200}
    assert made and len(made) < estimate // 90  # it stopped before the end

    with run_in_thread(FakeProviderConfig(api_key=KEY), port=port) as provider:
        done = ttsbatch(provider, "synth", str(book), "-o", out, "--max-billed-chars", "100000")
        second = provider.state.log()
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "book.wav").exists()
    assert not made & {entry["text_sha256"] for entry in second}  # nothing made is paid again
