"""Webhooks: an HMAC-SHA256-signed POST when a job succeeds or fails, retried with backoff.

The signature header is ``X-Ttsbatch-Signature: t=<unix time>,v1=<hex>``, where
``hex`` is HMAC-SHA256 of ``f"{t}.".encode() + body`` under
``TTSBATCH_API_WEBHOOK_SECRET``; receivers recompute it (:func:`verify`) and
reject old timestamps. Targets on private, loopback, link-local or reserved
addresses are refused unless ``TTSBATCH_API_WEBHOOK_ALLOW_PRIVATE`` is set,
so a tenant cannot make the service call into its own network.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

import httpx

from scheduler.periodic import Periodic
from ttsbatch.errors import InputError
from ttsbatch.models import JobStatus
from ttsbatch.state import TERMINAL

if TYPE_CHECKING:
    from scheduler.api.service import Services

log = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Ttsbatch-Signature"
EVENT_HEADER: Final = "X-Ttsbatch-Event"
#: HTTP statuses worth another attempt; other 4xx answers are final.
_RETRY_STATUSES: Final = frozenset({408, 425, 429})

Resolver = Callable[[str], list[str]]


class WebhookRefusedError(InputError):
    """Raised when a webhook URL points at an address the service must not call."""


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Return the signature header value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, *, tolerance: float = 300.0) -> bool:
    """Return whether ``header`` signs ``body`` and is at most ``tolerance`` seconds old."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected, header) and abs(time.time() - timestamp) <= tolerance


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise WebhookRefusedError(f"webhook host {host!r} does not resolve ({exc})") from exc
    return [str(info[4][0]) for info in infos]


def check_target(url: str, *, allow_private: bool, resolve: Resolver | None = _resolve) -> None:
    """Refuse a webhook URL on a private or loopback address.

    Args:
        resolve: turns a host name into addresses; None checks literal addresses
            and ``localhost`` only (no DNS lookup, for request validation).

    Raises:
        WebhookRefusedError: not http(s), or an address the service must not call.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise WebhookRefusedError(f"webhook URL {url!r} is not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not host:
        raise WebhookRefusedError(f"webhook URL {url!r}: use http(s)://host/path")
    if allow_private:
        return
    if host == "localhost" or host.endswith(".localhost"):
        addresses = ["127.0.0.1"]
    else:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = resolve(host) if resolve is not None else []
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise WebhookRefusedError(
                f"webhook URL {url!r} points at a private or loopback address ({ip}):"
                " use a public address (or set TTSBATCH_API_WEBHOOK_ALLOW_PRIVATE=true)"
            )


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: 1, 2, 4, … capped at 60."""
    return float(min(60, 2 ** (attempt - 1)))


def deliver(
    client: httpx.Client,
    url: str,
    event: str,
    payload: dict[str, object],
    *,
    secret: bytes,
    attempts: int,
    sleep: Callable[[float], None] = time.sleep,
    delay: Callable[[int], float] = backoff,
) -> bool:
    """POST a signed ``payload`` to ``url``; retry network errors, 5xx, 408 and 429.

    Returns:
        Whether the target answered 2xx.
    """
    body = json.dumps(payload, sort_keys=True).encode()
    for attempt in range(1, attempts + 1):
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: event,
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
        }
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("webhook %s attempt %d: %s", url, attempt, exc)
        else:
            if response.is_success:
                return True
            log.warning("webhook %s attempt %d: HTTP %d", url, attempt, response.status_code)
            if response.status_code < 500 and response.status_code not in _RETRY_STATUSES:
                return False
        if attempt < attempts:
            sleep(delay(attempt))
    return False


class WebhookNotifier:
    """Watches jobs with a webhook and calls it once when each ends (a thread).

    Several API processes may run one each: a job's call is claimed atomically
    in Redis, so it is made once.
    """

    def __init__(
        self,
        services: Services,
        *,
        interval: float = 1.0,
        client: httpx.Client | None = None,
        resolve: Resolver = _resolve,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.services = services
        self.interval = interval
        self.client = client or httpx.Client(timeout=10.0, follow_redirects=False)
        self.resolve = resolve
        self.sleep = sleep
        self._watch = Periodic("webhooks", self.run_once, interval)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook")

    def start(self) -> None:
        """Start watching in a daemon thread."""
        self._watch.start()

    def stop(self) -> None:
        """Stop watching; calls in flight finish."""
        self._watch.stop()
        self._pool.shutdown(wait=True)
        self.client.close()

    def run_once(self, *, wait: bool = False) -> int:
        """Call the webhooks of every job that ended since the last look; return how many."""
        registry, state = self.services.registry, self.services.state
        futures = []
        for job_id in registry.webhook_jobs():
            status = state.status(job_id)
            if status is None or status not in TERMINAL or not registry.claim_webhook(job_id):
                continue
            entry = registry.job(job_id)
            if entry is None or entry.webhook_url is None or status is JobStatus.CANCELLED:
                continue
            snapshot = state.snapshot(job_id)
            payload: dict[str, object] = {
                "id": job_id,
                "status": status.value,
                "name": entry.name,
                "tags": entry.tags,
                "error": snapshot.reasons() if snapshot else None,
                "run_id": entry.run_id,
            }
            futures.append(
                self._pool.submit(self._call, entry.webhook_url, f"job.{status}", payload)
            )
        if wait:
            for future in futures:
                future.result()
        return len(futures)

    def _call(self, url: str, event: str, payload: dict[str, object]) -> bool:
        settings = self.services.settings.api
        try:
            check_target(url, allow_private=settings.webhook_allow_private, resolve=self.resolve)
        except WebhookRefusedError as exc:
            log.warning("webhook of job %s refused: %s", payload["id"], exc)
            return False
        return deliver(
            self.client,
            url,
            event,
            payload,
            secret=settings.webhook_secret.get_secret_value().encode(),
            attempts=settings.webhook_attempts,
            sleep=self.sleep,
        )
