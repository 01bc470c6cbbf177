"""Webhooks: a signed POST when a job succeeds or fails, delivered at least once.

Who does what (the processes are :mod:`scheduler.beat`'s):

* :func:`scan`, every few seconds in the beat, finds the jobs with a webhook
  that ended and enqueues one :class:`WebhookDelivery` per ending. Its id is
  derived from the job, the event and the time the job ended, and is claimed
  in Redis before it is enqueued, so a repeated scan enqueues nothing twice;
  a claim whose enqueueing failed or never happened expires and the next scan
  tries again.
* The delivery task POSTs it (:func:`deliver`); network errors, 5xx, 408, 425
  and 429 are retried with :func:`backoff` up to ``TTSBATCH_API_WEBHOOK_ATTEMPTS``
  attempts, any other answer is final. The message is acknowledged only after
  an attempt, so a killed process's delivery is delivered again by the next.

A receiver may therefore see an event more than once; each carries the
`Standard Webhooks <https://www.standardwebhooks.com/>`_ headers, the same
``webhook-id`` on every attempt of an event, to drop duplicates by::

    webhook-id:         job_<job id>_<status>_<end time in ms>, stable per event
    webhook-timestamp:  unix seconds of this attempt
    webhook-signature:  v1,<base64 of HMAC-SHA256 of "{id}.{timestamp}.{body}">
    X-Ttsbatch-Event:   job.succeeded or job.failed

The key is ``TTSBATCH_API_WEBHOOK_SECRET``: a ``whsec_<base64>`` secret is
decoded as Standard Webhooks libraries do, any other value is used as its
UTF-8 bytes (:func:`signing_key`); :func:`verify` is a receiver's check.
Targets on private, loopback, link-local or reserved addresses are refused
unless ``TTSBATCH_API_WEBHOOK_ALLOW_PRIVATE`` is set, so a tenant cannot make
the service call into its own network.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, cast

import httpx
from pydantic import ConfigDict, Field

from scheduler.ports import JobRecord, Ports
from ttsbatch.errors import InputError
from ttsbatch.keys import RedisKeys
from ttsbatch.models import Frozen, JobStatus
from ttsbatch.state import TERMINAL, JobSnapshot

log = logging.getLogger(__name__)

ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"
EVENT_HEADER: Final = "X-Ttsbatch-Event"
DELIVERY_SCHEMA: Final = "ttsbatch.msg.webhook/1"
#: Seconds one POST may take (connect, send, each read): the threads pool has no time limits.
DELIVERY_TIMEOUT: Final = 10.0
#: Seconds a scan's claim on a delivery holds before it is enqueued; then another scan may.
PENDING_CLAIM_TTL: Final = 60
#: Seconds an enqueued delivery stays claimed, so that no later scan enqueues it again.
SENT_CLAIM_TTL: Final = 7 * 24 * 3600
#: HTTP statuses worth another attempt besides 5xx; other answers are final.
_RETRY_STATUSES: Final = frozenset({408, 425, 429})
_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret

Resolver = Callable[[str], list[str]]


class WebhookRefusedError(InputError):
    """Raised when a webhook URL points at an address the service must not call."""


class Outcome(enum.StrEnum):
    """What became of one delivery attempt."""

    DELIVERED = "delivered"  # the receiver answered 2xx
    RETRY = "retry"  # a network error, 5xx, 408, 425 or 429: try again later
    REFUSED = "refused"  # any other answer, or a target the service must not call: final


class WebhookDelivery(Frozen):
    """One event for one webhook: what the delivery task receives, and sends on every attempt."""

    schema_: Literal["ttsbatch.msg.webhook/1"] = Field(default=DELIVERY_SCHEMA, alias="schema")
    id: str = Field(description="The webhook-id: the same on every attempt of this event.")
    url: str
    event: str
    payload: dict[str, Any]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def body(self) -> bytes:
        """The JSON body, the same bytes on every attempt."""
        return json.dumps(self.payload, sort_keys=True).encode()

    def encode(self) -> dict[str, object]:
        """This delivery as the JSON-safe dict the task takes."""
        return self.model_dump(mode="json", by_alias=True)


# -- signatures -----------------------------------------------------------------


def signing_key(secret: str) -> bytes:
    """Return the HMAC key of a secret: ``whsec_<base64>`` decoded, anything else as UTF-8."""
    if secret.startswith(_SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(_SECRET_PREFIX), validate=True)
        except binascii.Error:
            pass  # not base64 after all: the whole string is the key
    return secret.encode()


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` value of ``body`` sent as ``message_id`` at ``timestamp``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers_for(key: bytes, delivery: WebhookDelivery, timestamp: int) -> dict[str, str]:
    """Return the headers of one attempt of ``delivery`` made at ``timestamp``."""
    return {
        "Content-Type": "application/json",
        ID_HEADER: delivery.id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(key, delivery.id, timestamp, delivery.body()),
        EVENT_HEADER: delivery.event,
    }


def verify(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    """Return whether ``headers`` sign ``body`` under ``key`` and are at most ``tolerance`` s old.

    What a receiver checks; ``webhook-signature`` may list several space-separated signatures.
    """
    fields = {name.lower(): value for name, value in headers.items()}
    message_id = fields.get(ID_HEADER, "")
    try:
        timestamp = int(fields.get(TIMESTAMP_HEADER, ""))
    except ValueError:
        return False
    now = time.time() if now is None else now
    if not message_id or abs(now - timestamp) > tolerance:
        return False
    expected = sign(key, message_id, timestamp, body)
    return any(
        hmac.compare_digest(expected, candidate)
        for candidate in fields.get(SIGNATURE_HEADER, "").split()
    )


# -- targets --------------------------------------------------------------------


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


# -- delivery -------------------------------------------------------------------


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (from 1): 1, 2, 4, … capped at 60."""
    return float(min(60, 2 ** (attempt - 1)))


def outcome_of(status_code: int) -> Outcome:
    """Return what an HTTP answer means for a delivery."""
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code >= 500 or status_code in _RETRY_STATUSES:
        return Outcome.RETRY
    return Outcome.REFUSED


def deliver(
    client: httpx.Client,
    delivery: WebhookDelivery,
    *,
    key: bytes,
    allow_private: bool,
    resolve: Resolver = _resolve,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """Make one attempt at ``delivery``: check the target, POST it signed, judge the answer."""
    try:
        check_target(delivery.url, allow_private=allow_private, resolve=resolve)
    except WebhookRefusedError as exc:
        log.warning("webhook %s refused: %s", delivery.id, exc)
        return Outcome.REFUSED
    headers = headers_for(key, delivery, int(clock()))
    try:
        response = client.post(delivery.url, content=delivery.body(), headers=headers)
    except httpx.HTTPError as exc:
        log.warning("webhook %s to %s: %s", delivery.id, delivery.url, exc)
        return Outcome.RETRY
    outcome = outcome_of(response.status_code)
    if outcome is not Outcome.DELIVERED:
        log.warning("webhook %s to %s: HTTP %d", delivery.id, delivery.url, response.status_code)
    return outcome


# -- the scan -------------------------------------------------------------------


def delivery_id(job_id: str, status: JobStatus, ended_at: float) -> str:
    """Return the webhook-id of a job's ending: stable for it, new if the job ends again."""
    return f"job_{job_id}_{status.value}_{round(ended_at * 1000)}"


def delivery_for(
    entry: JobRecord, status: JobStatus, snapshot: JobSnapshot | None
) -> WebhookDelivery:
    """Return the delivery of an ended job's event to its webhook.

    ``snapshot`` is None for a job that ended before it was planned: its
    payload has no error details and its id no end time.
    """
    payload: dict[str, Any] = {
        "id": entry.job_id,
        "status": status.value,
        "name": entry.name,
        "tags": entry.tags,
        "error": snapshot.reasons() if snapshot else None,
        "run_id": entry.run_id,
    }
    ended_at = snapshot.finished_at if snapshot and snapshot.finished_at else 0.0
    return WebhookDelivery(
        id=delivery_id(entry.job_id, status, ended_at),
        url=str(entry.webhook_url),
        event=f"job.{status.value}",
        payload=payload,
    )


class Claims:
    """Which deliveries a scan has enqueued, in Redis (``<ns>:webhook:<delivery id>``)."""

    def __init__(self, ports: Ports) -> None:
        self.client = ports.state.client
        self.keys = RedisKeys(ports.state.namespace)

    def take(self, delivery: str) -> bool:
        """Claim a delivery for enqueueing; False if another scan has (or it was sent)."""
        return bool(
            self.client.set(self.keys.webhook(delivery), "pending", nx=True, ex=PENDING_CLAIM_TTL)
        )

    def sent(self, delivery: str) -> None:
        """Record that a claimed delivery is enqueued."""
        self.client.set(self.keys.webhook(delivery), "sent", ex=SENT_CLAIM_TTL)

    def is_sent(self, delivery: str) -> bool:
        """Whether a delivery was enqueued."""
        return cast("str | None", self.client.get(self.keys.webhook(delivery))) == "sent"

    def release(self, delivery: str) -> None:
        """Give a claim back (enqueueing failed): the next scan tries again."""
        self.client.delete(self.keys.webhook(delivery))


def scan(ports: Ports, enqueue: Callable[[WebhookDelivery], object]) -> int:
    """Enqueue, once, the delivery of every ended job's webhook; return how many were enqueued.

    A cancelled job's webhook is not called. A job leaves the webhook list once
    its delivery is enqueued (or there is nothing to send); a retried job is
    put on it again by the API, and its next ending is a new event.

    Raises:
        BrokerError: Redis or the broker cannot be reached (nothing is lost:
            the next scan tries again).
    """
    index, state = ports.index, ports.state
    claims = Claims(ports)
    enqueued = 0
    for job_id in index.webhook_jobs():
        status = state.status(job_id)
        if status is None or status not in TERMINAL:
            continue
        entry = index.job(job_id)
        if entry is None or not entry.webhook_url or status is JobStatus.CANCELLED:
            index.claim_webhook(job_id)  # nothing to send
            continue
        delivery = delivery_for(entry, status, state.snapshot(job_id))
        if claims.take(delivery.id):
            try:
                enqueue(delivery)
            except BaseException:
                claims.release(delivery.id)
                raise
            claims.sent(delivery.id)
            enqueued += 1
        elif not claims.is_sent(delivery.id):
            continue  # another scan is enqueueing it now
        index.claim_webhook(job_id)
    return enqueued
