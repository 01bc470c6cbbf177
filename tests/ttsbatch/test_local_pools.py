"""The local executor's pools: provider engines on threads of one process, espeak on processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from scheduler.ingest import ingest_text
from tests.ttsbatch.interrupting import chunks_journaled, interrupt_after
from ttsbatch.dev.fakeprovider import FakeProviderConfig, run_in_thread
from ttsbatch.executors.local import _next_batch, run_local
from ttsbatch.executors.pools import default_jobs, on_threads
from ttsbatch.executors.reporting import ChunkDone, Progress
from ttsbatch.models import EngineSpec, JobOptions
from ttsbatch.settings import ProviderLimits, Settings, TogetherSettings
from ttsbatch.storage.local import LocalStore

BIN = Path(sys.executable).parent / "ttsbatch"
KEY = "sk-test-key"
KOKORO = "hexgrad/Kokoro-82M"
TEXT = " ".join(f"Sentence {n} tells of the lamp and the sea." for n in range(12))


class Watcher(Progress):
    """Notes, at every finished chunk, this process's children and its chunk threads."""

    def __init__(self) -> None:
        # Children from before (the suite's Redis and S3 servers) are not the run's.
        self.before = {child.pid for child in psutil.Process().children(recursive=True)}
        self.children: set[int] = set()
        self.chunk_threads: set[str] = set()
        self.chunks = 0

    def advance(self, chunk: ChunkDone) -> None:
        self.chunks += 1
        now = {child.pid for child in psutil.Process().children(recursive=True)}
        self.children |= now - self.before
        self.chunk_threads |= {
            thread.name
            for thread in threading.enumerate()
            if thread.name.startswith("ttsbatch-chunk")
        }


@pytest.mark.integration
@pytest.mark.parametrize(("jobs", "concurrency", "in_flight"), [(4, 8, 4), (None, 3, 3)])
def test_a_provider_job_runs_on_threads_of_this_process_with_that_many_requests_in_flight(
    tmp_path: Path, jobs: int | None, concurrency: int, in_flight: int
) -> None:
    # Each answer waits half a second before its first byte, so the requests
    # that the executor keeps in flight are all at the provider at once.
    with run_in_thread(FakeProviderConfig(api_key=KEY, ttfb=0.5)) as provider:
        settings = Settings(
            together=TogetherSettings(api_key=KEY, base_url=provider.api_url),
            provider=ProviderLimits(concurrency=concurrency),
        )
        options = JobOptions(
            engine=EngineSpec(engine="together", model=KOKORO, voice="af_heart"), max_chars=50
        )
        document = ingest_text(TEXT, name="book")
        watcher = Watcher()
        manifest = run_local(
            [document],
            options,
            store=LocalStore(tmp_path / "store"),
            settings=settings,
            jobs=jobs,
            progress=watcher,
        )
        stats = provider.state.stats()
        log = provider.state.log()

    chunks = len(manifest.documents[0].chunks)
    assert chunks == watcher.chunks == len(log) == 12  # one request per chunk, none retried
    assert stats["max_in_flight"] == in_flight
    assert watcher.children == set()  # no process was started
    assert len(watcher.chunk_threads) == in_flight


@pytest.mark.integration
def test_ctrl_c_stops_a_provider_job_on_threads_and_the_rerun_ends_byte_identical(
    tmp_path: Path,
) -> None:
    book = tmp_path / "book.txt"
    book.write_text(" ".join([TEXT] * 3), encoding="utf-8")
    with run_in_thread(FakeProviderConfig(api_key=KEY, ttfb=0.2)) as provider:
        env = {**os.environ, "TOGETHER_API_KEY": KEY, "TTSBATCH_DEBUG": ""}

        def synth(out: Path) -> list[str]:
            return [
                *(str(BIN), "synth", str(book), "-o", str(out), "--engine", "together"),
                *("--base-url", provider.api_url, "--model", KOKORO, "--voice", "af_heart"),
                *("--max-chars", "50", "--jobs", "3"),
            ]

        whole = subprocess.run(
            synth(tmp_path / "whole"), env=env, capture_output=True, text=True, check=False
        )
        assert whole.returncode == 0, whole.stderr

        out = tmp_path / "out"
        returncode, stderr = interrupt_after(synth(out), out, 6, env=env)
        assert returncode == 130, stderr
        assert stderr.strip().splitlines()[-1] == (
            "ttsbatch: interrupted: run the same command again to resume"
        )
        stored = chunks_journaled(out)
        assert 6 <= stored < 36

        rerun = subprocess.run(synth(out), env=env, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert f"36 chunks ({stored} already stored)" in rerun.stderr
    for name in ("book.wav", "book.timestamps.json", "book.srt", "book.vtt", "book.source.txt"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_providers_run_on_threads_and_espeak_on_processes() -> None:
    assert on_threads("together")
    assert on_threads("openai")
    assert not on_threads("espeak")


def test_without_jobs_providers_get_their_concurrency_and_espeak_a_process_per_core() -> None:
    settings = Settings(provider=ProviderLimits(concurrency=5))
    assert default_jobs("together", settings) == 5
    assert default_jobs("openai", settings) == 5
    assert default_jobs("espeak", settings) == (os.cpu_count() or 1)


def test_chunks_go_in_plan_order_until_the_rest_fits_then_longest_first() -> None:
    pending = [("doc", n, "x" * length) for n, length in enumerate([5, 9, 1, 7, 3, 8])]
    assert _next_batch(pending, 0, 4) == [0, 1, 2, 3]
    assert _next_batch(pending, 4, 1) == [4]
    assert _next_batch(pending, 2, 4) == [5, 3, 4, 2]
    assert _next_batch(pending, 4, 8) == [5, 4]
    assert _next_batch(pending, 6, 8) == []
    assert _next_batch(pending, 3, 0) == []
