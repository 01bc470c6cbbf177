"""Fixtures of the distributed integration tests: a cluster of real processes.

Each test gets a Redis server of its own (it is the broker, and some tests
``FLUSHALL`` it), a fresh S3 bucket on SeaweedFS (``s3_store``), the imitation
provider over HTTP in a thread of the test process (its request log is the
ground truth of what was synthesised), and ``ttsbatch worker`` subprocesses.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis

from scheduler.dispatch import create_producer
from scheduler.ingest import ingest_text
from ttsbatch.dev.fakeprovider import FakeProviderConfig, RunningProvider, run_in_thread
from ttsbatch.dev.services import RedisServer
from ttsbatch.dev.stack import queues_for, stop_process, worker_command
from ttsbatch.executors.distributed import Cluster
from ttsbatch.executors.local import run_local
from ttsbatch.executors.outputs import download_outputs
from ttsbatch.messages import ALL_QUEUES
from ttsbatch.models import Chapter, Document, EngineSpec, JobOptions
from ttsbatch.settings import Settings, TogetherSettings
from ttsbatch.state import JobState
from ttsbatch.storage.local import LocalStore
from ttsbatch.storage.s3 import S3Store

pytestmark = pytest.mark.integration

API_KEY = "test-key"
#: Keys boto3 signs with; the test SeaweedFS accepts any (tests/conftest.py).
S3_KEY = "ttsbatch-test"
#: Short time bounds so that a SIGKILLed worker's chunks return within seconds:
#: its chunk and provider leases run out after 3 s, and the broker's visibility
#: timeout is (1.1 retry cap + 3 slot wait + 9 chunk) x 1.25 = 16.4 s.
FAST_TIMEOUTS = {
    "TTSBATCH_PROVIDER_TIMEOUT": "3",
    "TTSBATCH_WORKER_RETRY_CAP": "1",
    "TTSBATCH_WORKER_LEASE_TTL": "3",
}
OPTIONS = JobOptions(
    engine=EngineSpec(engine="together", model="hexgrad/Kokoro-82M", voice="af_heart"),
    max_chars=40,
)


def make_book(sentences: int, name: str = "book") -> Document:
    """A document of ``sentences`` distinct short sentences: one chunk each at 40 chars."""
    words = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
    lines = [f"Line {i} says {words[i % 8]} and {words[(i // 8) % 8]}." for i in range(sentences)]
    text = " ".join(lines)
    document = ingest_text(text, name)
    # One explicit chapter: worker/timeline.py cannot time a document without any yet.
    chapter = Chapter(index=0, title="All", char_start=0, char_end=len(document.text))
    return document.model_copy(update={"chapters": (chapter,)})


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            details = f"\n{explain()}" if explain is not None else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}{details}")
        time.sleep(0.05)


class Workers:
    """``ttsbatch worker`` subprocesses sharing one environment."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, count: int, *, concurrency: int = 8, **env: str
    ) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(count):
            n = len(self.processes) + 1
            with (self.logs / f"worker-{n}.log").open("ab") as log:
                process = subprocess.Popen(
                    [
                        *worker_command(queues=queues_for("together"), concurrency=concurrency),
                        f"--hostname=w{n}@%h",
                        "--loglevel=info",
                    ],
                    env={**self.env, **env},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.processes.append(process)
            started.append(process)
        return started

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def log_text(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.logs.glob("worker-*.log"))
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            stop_process(process, 20)


class Harness:
    """A test's cluster: Redis, a bucket, a provider, workers, and a client."""

    def __init__(
        self,
        *,
        redis_url: str,
        store: S3Store,
        s3_endpoint: str,
        provider: RunningProvider,
        tmp_path: Path,
    ) -> None:
        self.redis_url = redis_url
        self.store = store
        self.provider = provider
        self.tmp_path = tmp_path
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("TTSBATCH_", "TOGETHER_", "AWS_"))
            },
            "REDIS_URL": redis_url,
            "TTSBATCH_STORE": store.url,
            "AWS_ENDPOINT_URL": s3_endpoint,
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_KEY,
            "AWS_REGION": "us-east-1",
            "TOGETHER_BASE_URL": provider.api_url,
            "TOGETHER_API_KEY": API_KEY,
            "TTSBATCH_PROVIDER_RPS": "1000",
            **FAST_TIMEOUTS,
        }
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        self.workers = Workers(self.env, logs)
        self.settings = Settings(store=store.url, redis_url=redis_url)
        self.cluster = Cluster(
            store=store, state=JobState.from_url(redis_url), producer=create_producer(self.settings)
        )

    @property
    def state(self) -> JobState:
        return self.cluster.state

    def requests_by_text(self) -> dict[str, int]:
        """Successful (200) speech requests per text hash."""
        counts: dict[str, int] = {}
        for entry in self.provider.state.log():
            if entry["status"] == 200:
                counts[entry["text_sha256"]] = counts.get(entry["text_sha256"], 0) + 1
        return counts

    def explain(self, job_id: str) -> str:
        """What a failing test should show: job state, broker queues, worker log tails."""
        broker = redis.Redis.from_url(self.redis_url, decode_responses=True)
        try:
            queues = {key: broker.llen(key) for key in ALL_QUEUES}
            unacked = broker.hlen("unacked")
            mutex = broker.ttl("unacked_mutex")
        finally:
            broker.close()
        tails = "\n".join(self.workers.log_text().splitlines()[-40:])
        return (
            f"state: {self.state.snapshot(job_id)}\nqueues: {queues}, unacked: {unacked},"
            f" unacked_mutex ttl: {mutex}\nprovider: {self.provider.state.stats()}\n{tails}"
        )

    def close(self) -> None:
        self.workers.stop()
        self.cluster.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server for this test alone: tests flush it and use it as their broker."""
    with RedisServer(tmp_path / "redis") as server:
        yield server.url


@pytest.fixture
def make_harness(
    own_redis: str, s3_store: S3Store, s3_endpoint: str, tmp_path: Path
) -> Iterator[Callable[..., Harness]]:
    """Return a factory: ``make_harness(**provider_config)`` starts the provider too."""
    with ExitStack() as stack:

        def make(**config: Any) -> Harness:
            settings = {"ttfb": 0.005, "seed": 1, **config}
            provider = stack.enter_context(run_in_thread(FakeProviderConfig(**settings)))
            harness = Harness(
                redis_url=own_redis,
                store=s3_store,
                s3_endpoint=s3_endpoint,
                provider=provider,
                tmp_path=tmp_path,
            )
            stack.callback(harness.close)
            return harness

        yield make


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Document], Path]:
    """Return a function giving the local executor's outputs for a document (cached)."""
    cache: dict[str, Path] = {}

    def run(document: Document) -> Path:
        if document.source_sha256 not in cache:
            out = tmp_path_factory.mktemp("reference")
            with run_in_thread(FakeProviderConfig()) as provider:
                settings = Settings(
                    together=TogetherSettings(base_url=provider.api_url, api_key=API_KEY)
                )
                store = LocalStore(out / ".store")
                manifest = run_local([document], OPTIONS, store=store, settings=settings, jobs=2)
            download_outputs(store, manifest, out)
            cache[document.source_sha256] = out
        return cache[document.source_sha256]

    return run
