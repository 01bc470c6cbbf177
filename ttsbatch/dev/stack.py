"""``ttsbatch dev``: a whole distributed stack on one machine, for development.

Starts (or connects to, when configured and answering) Redis and an S3 server
(SeaweedFS), optionally the imitation provider, N ``ttsbatch worker``
processes, the beat (``ttsbatch beat``) and the REST API (``ttsbatch api``, with
a generated dev key unless ``TTSBATCH_API_KEYS`` is set). The stack's engine,
model and voice are its deployment defaults (``TTSBATCH_DEFAULT_*``): a job
sent to its API without ``engine`` is spoken by the engine its workers serve.
Waits until the API answers ``/readyz`` and every worker consumes (its
heartbeat is in Redis, :mod:`ttsbatch.roster`); prints where each listens, the variables a client needs
and a ``curl`` that submits a job; keeps everything under one folder; stops it
all on Ctrl-C or SIGTERM in the reverse order of need: the API (no new jobs),
the beat (no new runs), the workers (a warm shutdown puts their in-flight
chunks back on the queue), then the provider, SeaweedFS and Redis.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import click

from ttsbatch.dev.services import (
    LOOPBACK,
    RedisServer,
    SeaweedFS,
    ServiceError,
    free_port,
    log_tail,
    port_is_free,
    redis_reachable,
    stop_process,
    wait_until,
)
from ttsbatch.errors import ConfigError
from ttsbatch.messages import ALL_QUEUES, FINALIZE_QUEUE, LOCAL_ENGINES, PROVIDER_QUEUE
from ttsbatch.roster import Roster
from ttsbatch.settings import PROVIDER_EXAMPLES, ApiSettings
from ttsbatch.storage.s3 import S3Store, create_client

DEV_BUCKET = "ttsbatch-dev"
DEFAULT_API_PORT = 8000
#: The API key of a dev stack started without ``TTSBATCH_API_KEYS``.
DEV_API_KEY = "dev-key"
#: Seconds a worker (or the beat) gets to requeue its chunks and exit before it is killed.
WORKER_STOP_TIMEOUT = 30.0
#: Seconds the API and the provider get to exit before they are killed.
SERVER_STOP_TIMEOUT = 10.0
#: Seconds a child server gets to answer after it is started.
STARTUP_TIMEOUT = 60.0
SAMPLE_JOB = {"input": "Hello from ttsbatch.", "name": "hello"}

__all__ = [
    "DEFAULT_API_PORT",
    "DEV_API_KEY",
    "DevOptions",
    "DevStack",
    "queues_for",
    "run_dev",
    "stop_process",  # re-exported: tests and benchmarks stop their workers with it
    "worker_command",
]


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
    api: bool = True
    #: The API's loopback port; 0 picks a free one.
    port: int = DEFAULT_API_PORT
    beat: bool = True


def worker_command(
    *, queues: tuple[str, ...] = ALL_QUEUES, pool: str | None = None, concurrency: int | None = None
) -> list[str]:
    """Return the argv of one ``ttsbatch worker`` process (this interpreter)."""
    argv = [sys.executable, "-m", "ttsbatch.cli.cluster", "worker", f"--queues={','.join(queues)}"]
    if pool:
        argv.append(f"--pool={pool}")
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    return argv


def ttsbatch_command(*args: str) -> list[str]:
    """Return the argv of ``ttsbatch ARGS...`` run by this interpreter (not whatever is on PATH)."""
    return [
        sys.executable,
        "-c",
        "from ttsbatch.cli.main import main; main(prog_name='ttsbatch')",
        *args,
    ]


def queues_for(engine: str) -> tuple[str, ...]:
    """Queues a dev worker of ``engine`` consumes: a threads pool never takes espeak chunks."""
    return ALL_QUEUES if engine in LOCAL_ENGINES else (PROVIDER_QUEUE, FINALIZE_QUEUE)


def job_defaults(options: DevOptions) -> dict[str, str]:
    """The stack's ``TTSBATCH_DEFAULT_*``: its engine, and for a provider a model and voice.

    A provider engine given no ``--model``/``--voice`` gets
    :data:`~ttsbatch.settings.PROVIDER_EXAMPLES`' (the API refuses provider
    jobs without them).
    """
    env = {"TTSBATCH_DEFAULT_ENGINE": options.engine}
    model, voice = options.model, options.voice
    if options.engine in PROVIDER_EXAMPLES:
        example_model, example_voice = PROVIDER_EXAMPLES[options.engine]
        model, voice = model or example_model, voice or example_voice
    if model:
        env["TTSBATCH_DEFAULT_MODEL"] = model
    if voice:
        env["TTSBATCH_DEFAULT_VOICE"] = voice
    return env


def _http_status(url: str) -> int | None:
    """Return the HTTP status of GET ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - a loopback http URL we built
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _consumes(roster: Roster, worker: str, queues: tuple[str, ...]) -> bool:
    """Whether ``worker``'s heartbeat is in Redis for every one of ``queues``."""
    return all(worker in roster.workers(queue) for queue in queues)


@dataclass(frozen=True, slots=True)
class Child:
    """A process the stack started, with its name and log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class DevStack:
    """The running services, their addresses and the environment to reach them.

    ``env`` is what every child and every client needs (Redis, store, S3,
    provider); ``client_env`` adds what only clients of the API need.
    ``interrupted`` cuts the wait for a starting server short (Ctrl-C).
    """

    options: DevOptions
    env: dict[str, str] = field(default_factory=dict)
    client_env: dict[str, str] = field(default_factory=dict)
    lines: list[tuple[str, str]] = field(default_factory=list)
    #: The API and the beat, in stop order.
    servers: list[Child] = field(default_factory=list)
    workers: list[Child] = field(default_factory=list)
    interrupted: threading.Event = field(default_factory=threading.Event)
    api_url: str | None = None
    api_key: str | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def children(self) -> list[Child]:
        """Every ``ttsbatch`` process the stack started: API, beat, workers."""
        return [*self.servers, *self.workers]

    def start(self) -> None:
        """Start or connect to every service, then the workers, the beat and the API."""
        port = self._api_port() if self.options.api else None
        data = self.options.data_dir.resolve()
        (data / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self._redis(data)
            self._s3(data)
            if self.options.fake_provider:
                self._provider(data)
            self._workers(data)
            if self.options.beat:
                self._beat(data)
            if port is not None:
                self._api(data, port)
            self._await_workers()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything this stack started: API, beat, workers, provider, S3, Redis."""
        for child in self.servers:
            timeout = WORKER_STOP_TIMEOUT if child.name == "beat" else SERVER_STOP_TIMEOUT
            stop_process(child.process, timeout)
        for child in self.workers:
            if child.process.poll() is None:
                child.process.terminate()  # warm shutdown: chunks in flight go back to the queue
        for child in self.workers:
            stop_process(child.process, WORKER_STOP_TIMEOUT)
        self.servers.clear()
        self.workers.clear()
        self._stack.close()

    def _spawn(self, name: str, argv: list[str], log_path: Path, env: Mapping[str, str]) -> Child:
        log = self._stack.enter_context(log_path.open("ab"))
        process = subprocess.Popen(
            argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        return Child(name, process, log_path)

    def _await(self, child: Child, ready: Callable[[], bool]) -> None:
        """Wait until ``ready`` holds; fail with the end of the child's log if it never does."""
        try:
            wait_until(
                lambda: self.interrupted.is_set() or ready(),
                child.process,
                timeout=STARTUP_TIMEOUT,
                what=child.name,
            )
        except ServiceError as exc:
            if self.interrupted.is_set():
                return  # Ctrl-C reached the child too; the stack is stopping anyway
            raise ServiceError(f"{exc}; the end of {child.log}:\n{log_tail(child.log)}") from None

    def _api_port(self) -> int:
        port = self.options.port or free_port()
        if not port_is_free(port):
            raise ConfigError(
                f"port {port} on {LOOPBACK} is taken (another `ttsbatch dev` or `ttsbatch api`?):"
                " stop what listens there, or pass --port N (--port 0 picks a free port),"
                " or --no-api"
            )
        return port

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
        child = self._spawn(
            "the imitation provider",
            [sys.executable, "-m", "ttsbatch.dev.fakeprovider", "--port", str(port)],
            data / "logs" / "fake-provider.log",
            os.environ,
        )
        self._stack.callback(stop_process, child.process, SERVER_STOP_TIMEOUT)
        base = f"http://{LOOPBACK}:{port}/v1"
        self._await(child, lambda: _http_status(f"{base}/voices") is not None)
        variable = "OPENAI" if self.options.engine == "openai" else "TOGETHER"
        self.env[f"{variable}_BASE_URL"] = base
        self.env.setdefault(f"{variable}_API_KEY", "dev-key")
        self.lines.append(("fake provider", f"{base} (log {child.log})"))

    def _workers(self, data: Path) -> None:
        if self.options.base_url:
            variable = "OPENAI" if self.options.engine == "openai" else "TOGETHER"
            self.env[f"{variable}_BASE_URL"] = self.options.base_url
        defaults = job_defaults(self.options)
        self.env.update(defaults)
        self.lines.append(("defaults", ", ".join(f"{k}={v}" for k, v in defaults.items())))
        argv = worker_command(
            queues=queues_for(self.options.engine), concurrency=self.options.concurrency
        )
        for n in range(1, self.options.workers + 1):
            child = self._spawn(
                f"worker {n}",
                [*argv, f"--hostname={self._worker_name(n)}"],
                data / "logs" / f"worker-{n}.log",
                {**os.environ, **self.env},
            )
            self.workers.append(child)
            self.lines.append((child.name, f"pid {child.process.pid}, log {child.log}"))

    @staticmethod
    def _worker_name(n: int) -> str:
        return f"dev-{n}@{socket.gethostname()}"

    def _await_workers(self) -> None:
        """Wait until every worker consumes: its heartbeat on each of its queues is in Redis."""
        queues = queues_for(self.options.engine)
        roster = Roster.from_url(self.env["REDIS_URL"])
        try:
            for n, child in enumerate(self.workers, start=1):
                name = self._worker_name(n)
                self._await(child, functools.partial(_consumes, roster, name, queues))
        finally:
            roster.client.close()

    def _beat(self, data: Path) -> None:
        child = self._spawn(
            "beat", ttsbatch_command("beat"), data / "logs" / "beat.log", {**os.environ, **self.env}
        )
        self.servers.insert(0, child)
        self.lines.append(("beat", f"pid {child.process.pid}, log {child.log}"))

    def _api(self, data: Path, port: int) -> None:
        configured = ApiSettings()
        env = {**os.environ, **self.env}
        if configured.keys.get_secret_value().strip(" ,") or configured.keys_file:
            key, how = None, "from TTSBATCH_API_KEYS / TTSBATCH_API_KEYS_FILE"
        else:
            key, how = DEV_API_KEY, "generated: TTSBATCH_API_KEYS is not set"
            env["TTSBATCH_API_KEYS"] = key
            self.client_env["TTSBATCH_API_KEY"] = key
        url = f"http://{LOOPBACK}:{port}"
        child = self._spawn(
            "the API",
            ttsbatch_command("api", "--host", LOOPBACK, "--port", str(port)),
            data / "logs" / "api.log",
            env,
        )
        self.servers.insert(0, child)
        self._await(child, lambda: _http_status(f"{url}/readyz") == 200)
        self.api_url, self.api_key = url, key
        self.client_env["TTSBATCH_SERVER"] = url
        self.lines.append(
            ("API", f"{url} (docs {url}/docs; pid {child.process.pid}, log {child.log})")
        )
        self.lines.append(("API key", f"{key or '$TTSBATCH_API_KEY'} ({how})"))
        self.lines.append(("web page", f"{url}/ui/ (sign in with the API key)"))

    def summary(self) -> str:
        """Where everything listens, the variables a client needs, and commands to try."""
        width = max(len(name) for name, _ in self.lines)
        text = [f"{name:<{width}}  {where}" for name, where in self.lines]
        text += ["", "In another shell:"]
        exports = {**self.env, **self.client_env}
        text += [f"  export {name}={shlex.quote(value)}" for name, value in sorted(exports.items())]
        defaults = job_defaults(self.options)
        flags = f" --engine {self.options.engine}"
        for name in ("model", "voice"):
            value = defaults.get(f"TTSBATCH_DEFAULT_{name.upper()}")
            flags += f" --{name} {shlex.quote(value)}" if value else ""
        text += [f"  ttsbatch synth --distributed{flags} INPUT -o OUTDIR"]
        if self.api_url is not None:
            text += ["", *self._api_examples(flags)]
        text += ["", "ready. Ctrl-C stops all."]
        return "\n".join(text)

    def _api_examples(self, flags: str) -> list[str]:
        url = self.api_url
        auth = (
            shlex.quote(f"Authorization: Bearer {self.api_key}")
            if self.api_key
            else ('"Authorization: Bearer $TTSBATCH_API_KEY"')
        )
        # No engine, model or voice: the stack's defaults (TTSBATCH_DEFAULT_*) choose them.
        body = shlex.quote(json.dumps(SAMPLE_JOB))
        return [
            "Submit a job over the API:",
            f"  curl -X POST {url}/v1/jobs -H {auth} -H 'Content-Type: application/json' -d {body}",
            "Follow it (ID from the answer) until it ends, then list its files:",
            f"  curl -N {url}/v1/jobs/ID/events -H {auth}",
            f"  curl {url}/v1/jobs/ID/result -H {auth}",
            "Or submit a file and wait for it:",
            f"  ttsbatch submit FILE --server {url}{flags} --wait -o OUTDIR",
        ]


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
    stack = DevStack(options, env=dict(extra_env or {}), interrupted=stop)
    with _signals(stop):
        stack.start()
        try:
            if not stop.is_set():
                echo(stack.summary())
            while not stop.wait(1.0):
                for child in stack.children:
                    if child.process.poll() is not None:
                        echo(
                            f"{child.name} exited with code {child.process.returncode}"
                            f" (log {child.log}); stopping"
                        )
                        stop.set()
                        break
        finally:
            echo("stopping…")
            stack.stop()
            echo("stopped.")
