"""Run the imitation provider on a real socket: in a test's thread, or in the foreground."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from ttsbatch.dev.fakeprovider.app import DeliberateAbort, ProviderState, create_app
from ttsbatch.dev.fakeprovider.config import FakeProviderConfig


class _HideDeliberateAborts(logging.Filter):
    """Drop uvicorn's traceback for a connection the provider cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DeliberateAbort)


def _quiet_aborts() -> None:
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDeliberateAborts) for f in log.filters):
        log.addFilter(_HideDeliberateAborts())


def _server(config: FakeProviderConfig, state: ProviderState) -> uvicorn.Server:
    _quiet_aborts()
    app = create_app(config, state=state)
    return uvicorn.Server(
        uvicorn.Config(
            app,
            http="h11",
            ws="none",
            lifespan="off",
            loop="asyncio",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )


@dataclass(frozen=True, slots=True)
class RunningProvider:
    """A provider serving on a loopback port.

    Attributes:
        base_url: ``http://127.0.0.1:<port>`` (clients add ``/v1``).
        state: Its request log (``log()``, ``stats()``, ``reset()``).
    """

    base_url: str
    state: ProviderState

    @property
    def api_url(self) -> str:
        """The base URL with ``/v1``, as ``TOGETHER_BASE_URL`` / ``OPENAI_BASE_URL``."""
        return f"{self.base_url}/v1"


@contextmanager
def run_in_thread(
    config: FakeProviderConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningProvider]:
    """Serve a provider in a background thread for the duration of the block.

    Args:
        config: Its behaviour.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.

    Yields:
        The running provider, ready for requests.
    """
    config = config or FakeProviderConfig()
    state = ProviderState(config)
    server = _server(config, state)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-provider", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.005)
        yield RunningProvider(f"http://{host}:{bound_port}", state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main(port: int = 8808, host: str = "127.0.0.1", **options: Any) -> None:
    """Serve a provider in the foreground until interrupted (``ttsbatch fake-provider``).

    Args:
        port: Port to bind.
        host: Interface to bind.
        **options: Fields of :class:`FakeProviderConfig`.
    """
    config = FakeProviderConfig(**options)
    server = _server(config, ProviderState(config))
    server.config.host, server.config.port = host, port
    server.run()
