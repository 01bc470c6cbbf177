"""`ttsbatch synth --engine together` against the imitation provider over real HTTP."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttsbatch.dev.fakeprovider import FakeProviderConfig, run_in_thread
from ttsbatch.dev.fakeprovider.config import RETRYABLE_FAULTS
from ttsbatch.dev.fakeprovider.server import RunningProvider

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent / "ttsbatch"
KEY = "sk-test-key"
OUTPUTS = ("book.wav", "book.timestamps.json", "book.source.txt", "book.srt", "book.vtt")


def _book(path: Path, sentences: int) -> Path:
    lines = [
        f"Sentence number {n} tells of the lamp, the rock and the sea." for n in range(sentences)
    ]
    paragraphs = [" ".join(lines[i : i + 5]) for i in range(0, sentences, 5)]
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    return path


def _synth(
    provider: RunningProvider, book: Path, out: Path, *, key: str = KEY, voice: str = "af_heart"
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TOGETHER_API_KEY": key,
        "TTSBATCH_PROVIDER_TIMEOUT": "1.5",
        "TTSBATCH_DEBUG": "",
    }
    argv = [str(BIN), "synth", str(book), "-o", str(out), "--engine", "together"]
    argv += ["--base-url", provider.api_url, "--model", "hexgrad/Kokoro-82M", "--voice", voice]
    return subprocess.run(
        # --no-cache: every run here must reach the provider (the cache has tests of its own).
        [*argv, "--max-chars", "70", "--jobs", "2", "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture
def clean_provider() -> Iterator[RunningProvider]:
    with run_in_thread(FakeProviderConfig(api_key=KEY)) as provider:
        yield provider


def test_thirty_percent_faults_give_output_identical_to_a_fault_free_run(
    tmp_path: Path, clean_provider: RunningProvider
) -> None:
    book = _book(tmp_path / "book.txt", sentences=50)
    clean = _synth(clean_provider, book, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    assert "50 chunks" in clean.stderr

    faulty_config = FakeProviderConfig(
        api_key=KEY, fault_rate=0.3, faults=RETRYABLE_FAULTS, seed=11, stall=3.0, retry_delay=0.3
    )
    with run_in_thread(faulty_config) as faulty:
        result = _synth(faulty, book, tmp_path / "faulty")
        log = faulty.state.log()
    assert result.returncode == 0, result.stderr
    for name in OUTPUTS:
        assert (tmp_path / "faulty" / name).read_bytes() == (
            tmp_path / "clean" / name
        ).read_bytes(), name

    faults = {entry["fault"] for entry in log if entry["fault"]}
    assert len(faults) >= 8, f"too few fault kinds exercised: {faults}"
    attempts: dict[str, list[dict[str, float]]] = defaultdict(list)
    for entry in log:
        attempts[entry["text_sha256"]].append(entry)
    for tries in attempts.values():
        tries.sort(key=lambda e: e["attempt"])
        for before, after in itertools.pairwise(tries):
            if before["retry_after"] is not None:
                waited = after["received"] - before["finished"]
                assert waited >= before["retry_after"] - 0.01, (before, after)


def test_a_rejected_key_fails_the_run_within_seconds_naming_the_variable(
    tmp_path: Path, clean_provider: RunningProvider
) -> None:
    book = _book(tmp_path / "book.txt", sentences=50)
    started = time.monotonic()
    result = _synth(clean_provider, book, tmp_path / "out", key="sk-wrong")
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert "TOGETHER_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(clean_provider.state.log()) <= 4  # about one per thread, not one per chunk


def test_an_unknown_voice_fails_naming_the_voice(
    tmp_path: Path, clean_provider: RunningProvider
) -> None:
    book = _book(tmp_path / "book.txt", sentences=5)
    result = _synth(clean_provider, book, tmp_path / "out", voice="nobody")
    assert result.returncode == 1
    assert "nobody" in result.stderr.splitlines()[-1]
