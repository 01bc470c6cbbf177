"""A webhook receiver for tests: a real HTTP server answering a scripted list of statuses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Answers each POST with the next of ``statuses`` (200 once they run out), recording it."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def requests(self) -> list[tuple[dict[str, str], bytes, int]]:
        """Every request so far: its headers, body and the status it was answered."""
        with self._lock:
            return list(self.received)

    def delivered(self) -> list[tuple[dict[str, str], bytes]]:
        """The requests answered 2xx."""
        return [(headers, body) for headers, body, status in self.requests() if status < 300]


@contextmanager
def receiving(statuses: list[int]) -> Iterator[Receiver]:
    """Serve a :class:`Receiver` in a thread while the block runs."""
    receiver = Receiver(statuses)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        thread.join(timeout=5)
