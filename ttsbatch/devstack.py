"""``ttsbatch dev``: a whole distributed stack on one machine, for development.

Starts (or connects to, when configured and answering) Redis and an S3 server
(SeaweedFS), optionally the imitation provider, and N ``ttsbatch worker``
processes; prints where each listens and the variables a client needs; keeps
everything under one folder; stops it all on Ctrl-C or SIGTERM, workers first
(a warm shutdown puts their in-flight chunks back on the queue).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import click

from ttsbatch.errors import ConfigError
from ttsbatch.messages import ALL_QUEUES, FINALIZE_QUEUE, LOCAL_ENGINES, PROVIDER_QUEUE
from ttsbatch.services import LOOPBACK, RedisServer, SeaweedFS, free_port, redis_reachable
from ttsbatch.storage.s3 import S3Store, create_client

DEV_BUCKET = "ttsbatch-dev"
#: Seconds a worker gets to requeue its chunks and exit before it is killed.
WORKER_STOP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class DevOptions:
    """What ``ttsbatch dev`` starts."""

    engine: str = "espeak"
    base_url: str | None = None
    model: str | None = None
    voice: str | None = None
    workers: int = 2
    concurrency: int | None = None
    fake_provider: bool = False
    data_dir: Path = Path(".ttsbatch-dev")


def worker_command(
    *, queues: tuple[str, ...] = ALL_QUEUES, pool: str | None = None, concurrency: int | None = None
) -> list[str]:
    """Return the argv of one ``ttsbatch worker`` process (this interpreter)."""
    argv = [sys.executable, "-m", "ttsbatch.cli_cluster", "worker", f"--queues={','.join(queues)}"]
    if pool:
        argv.append(f"--pool={pool}")
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    return argv


def queues_for(engine: str) -> tuple[str, ...]:
    """Queues a dev worker of ``engine`` consumes: a threads pool never takes espeak chunks."""
    return ALL_QUEUES if engine in LOCAL_ENGINES else (PROVIDER_QUEUE, FINALIZE_QUEUE)


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM ``process``, then SIGKILL if it outlives ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - a loopback http URL we built
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@dataclass
class DevStack:
    """The running services, their addresses and the environment to reach them."""

    options: DevOptions
    env: dict[str, str] = field(default_factory=dict)
    lines: list[tuple[str, str]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start(self) -> None:
        """Start or connect to every service, then the workers."""
        data = self.options.data_dir.resolve()
        (data / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self._redis(data)
            self._s3(data)
            if self.options.fake_provider:
                self._provider(data)
            self._workers(data)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything this stack started, workers first."""
        for process in self.workers:
            if process.poll() is None:
                process.terminate()  # warm shutdown: chunks in flight go back to the queue
        for process in self.workers:
            stop_process(process, WORKER_STOP_TIMEOUT)
        self.workers.clear()
        self._stack.close()

    def _redis(self, data: Path) -> None:
        configured = os.environ.get("REDIS_URL")
        if configured and redis_reachable(configured):
            url, how = configured, "connected"
        else:
            server = self._stack.enter_context(RedisServer(data / "redis"))
            url, how = server.url, f"started, log {data / 'redis' / 'redis.log'}"
        self.env["REDIS_URL"] = url
        self.lines.append(("Redis", f"{url} ({how})"))

    def _s3(self, data: Path) -> None:
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            how = "connected"
        else:
            server = self._stack.enter_context(SeaweedFS(data / "s3"))
            endpoint, how = server.endpoint_url, f"SeaweedFS started, log {server.log_path}"
            # SeaweedFS without keys accepts any; boto3 still wants some to sign with.
            self.env.setdefault("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "dev"))
            self.env.setdefault(
                "AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "dev")
            )
        self.env["AWS_ENDPOINT_URL"] = endpoint
        store_url = os.environ.get("TTSBATCH_STORE") or f"s3://{DEV_BUCKET}/jobs"
        client = create_client(
            endpoint_url=endpoint,
            access_key_id=self.env.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=self.env.get("AWS_SECRET_ACCESS_KEY"),
        )
        S3Store.from_url(store_url, client=client).ensure_bucket()
        self.env["TTSBATCH_STORE"] = store_url
        self.lines.append(("S3", f"{endpoint} ({how})"))
        self.lines.append(("store", store_url))

    def _provider(self, data: Path) -> None:
        port = free_port()
        log = self._stack.enter_context((data / "logs" / "fake-provider.log").open("ab"))
        process = subprocess.Popen(
            [sys.executable, "-m", "ttsbatch.fakeprovider", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._stack.callback(stop_process, process, 10.0)
        base = f"http://{LOOPBACK}:{port}/v1"
        deadline = time.monotonic() + 30
        while not _answers(f"{base}/voices"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(f"the imitation provider did not start: see {log.name}")
            time.sleep(0.05)
        variable = "OPENAI" if self.options.engine == "openai" else "TOGETHER"
        self.env[f"{variable}_BASE_URL"] = base
        self.env.setdefault(f"{variable}_API_KEY", "dev-key")
        self.lines.append(("fake provider", f"{base} (log {log.name})"))

    def _workers(self, data: Path) -> None:
        if self.options.base_url:
            variable = "OPENAI" if self.options.engine == "openai" else "TOGETHER"
            self.env[f"{variable}_BASE_URL"] = self.options.base_url
        env = {**os.environ, **self.env}
        argv = worker_command(
            queues=queues_for(self.options.engine), concurrency=self.options.concurrency
        )
        for n in range(self.options.workers):
            log_path = data / "logs" / f"worker-{n + 1}.log"
            log: IO[bytes] = self._stack.enter_context(log_path.open("ab"))
            self.workers.append(
                subprocess.Popen(
                    [*argv, f"--hostname=dev-{n + 1}@%h"],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            self.lines.append((f"worker {n + 1}", f"pid {self.workers[-1].pid}, log {log_path}"))

    def summary(self) -> str:
        """Where everything listens, and the variables a client needs."""
        width = max(len(name) for name, _ in self.lines)
        text = [f"{name:<{width}}  {where}" for name, where in self.lines]
        text += ["", "In another shell:"]
        text += [f"  export {name}={value}" for name, value in sorted(self.env.items())]
        flags = f" --engine {self.options.engine}"
        flags += f" --model {self.options.model}" if self.options.model else ""
        flags += f" --voice {self.options.voice}" if self.options.voice else ""
        text += [f"  ttsbatch synth --distributed{flags} INPUT -o OUTDIR", "", "Ctrl-C stops all."]
        return "\n".join(text)


@contextlib.contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_dev(
    options: DevOptions,
    *,
    echo: Callable[[str], None] = click.echo,
    stop: threading.Event | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """Run the dev stack until Ctrl-C/SIGTERM (or ``stop`` is set); then stop it cleanly."""
    stop = stop or threading.Event()
    stack = DevStack(options, env=dict(extra_env or {}))
    with _signals(stop):
        stack.start()
        try:
            echo(stack.summary())
            while not stop.wait(1.0):
                for n, process in enumerate(stack.workers):
                    if process.poll() is not None:
                        echo(f"worker {n + 1} exited with code {process.returncode}; stopping")
                        stop.set()
        finally:
            echo("stopping…")
            stack.stop()
