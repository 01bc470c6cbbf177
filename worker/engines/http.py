"""HTTP edge shared by the provider engines: URLs, retry hints, error classification.

Translates what a speech provider answers - statuses, error bodies (JSON,
plain text or a proxy's HTML), retry headers, httpx exceptions - into the
:mod:`ttsbatch.errors` tree (tts-protocol.md, "HTTP errors")::

    401, 403                 AuthenticationError   (names the key variable)
    402                      QuotaExceededError
    429 insufficient_quota   QuotaExceededError    (OpenAI: not retryable)
    429, 400 rate_limit      RateLimitedError      (retry_after from the headers)
    408, 409, 425, 5xx       RetryableEngineError  (retry_after from the headers)
    other 4xx                PermanentEngineError  (carries the server's message)
    connection, timeouts     RetryableEngineError

Nothing here retries: the task layer does, with the delay carried here.
"""

from __future__ import annotations

import email.utils
import html
import json
import math
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ttsbatch.errors import (
    AuthenticationError,
    EngineError,
    PermanentEngineError,
    QuotaExceededError,
    RateLimitedError,
    RetryableEngineError,
)

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_MESSAGE = 300
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_TAG = re.compile(r"<[^>]*>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_EPOCH_THRESHOLD = 1_000_000_000  # a reset value this large is a timestamp, not a delay


@dataclass(frozen=True, slots=True)
class Provider:
    """Who is answering, for messages: its name and the variable holding its key."""

    name: str
    key_env: str


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """What an error body says: a message, and the provider's type and code if any."""

    message: str
    type: str = ""
    code: str = ""


def normalize_base_url(url: str) -> str:
    """Return a provider base URL ending in its API version path, without a slash.

    ``https://api.together.ai`` (the SDK 3.x form, host alone) becomes
    ``https://api.together.ai/v1``; a URL with a path keeps it.
    """
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def parse_duration(text: str) -> float | None:
    """Return seconds from a Go-style duration (``6m0s``, ``1.5s``, ``20ms``), or None."""
    text = text.strip()
    pos, total = 0, 0.0
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * scale[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Return the delay in seconds a response suggests before retrying, or None.

    In order: ``retry-after-ms`` (milliseconds), ``Retry-After`` (seconds or
    an HTTP date), ``x-ratelimit-reset`` (seconds; an epoch timestamp if it
    is that large), ``x-ratelimit-reset-requests`` / ``-tokens`` (``6m0s``).
    Values that do not parse are skipped.

    Args:
        headers: Response headers (case-insensitive lookups, e.g. httpx.Headers).
        now: Current time in seconds since the epoch (for dates and timestamps).
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    now = time.time() if now is None else now
    millis = _seconds(lowered.get("retry-after-ms", ""))
    if millis is not None:
        return millis / 1000
    value = lowered.get("retry-after", "").strip()
    if value:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - now)
    reset = _seconds(lowered.get("x-ratelimit-reset", ""))
    if reset is not None:
        return max(0.0, reset - now) if reset > _EPOCH_THRESHOLD else reset
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        duration = parse_duration(lowered.get(name, ""))
        if duration is not None:
            return duration
    return None


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _from_mapping(data: Mapping[str, Any]) -> ErrorBody | None:
    """Read ``{"error": {...}}``, ``{"detail": {...}}`` (Kokoro) and similar shapes."""
    for key in ("error", "detail"):
        inner = data.get(key)
        if isinstance(inner, Mapping):
            message = inner.get("message") or inner.get("error") or json.dumps(inner)
            kind = inner.get("type") or ""
            code = inner.get("code") or (inner.get("error") if inner.get("message") else "") or ""
            return ErrorBody(_clip(str(message)), str(kind), str(code))
        if isinstance(inner, str) and inner:
            return ErrorBody(_clip(inner), str(data.get("type") or ""), str(data.get("code") or ""))
        if isinstance(inner, list) and inner:  # FastAPI validation errors
            parts = [
                str(item.get("msg", item)) if isinstance(item, Mapping) else str(item)
                for item in inner
            ]
            return ErrorBody(_clip("; ".join(parts)))
    if isinstance(data.get("message"), str):
        return ErrorBody(
            _clip(data["message"]), str(data.get("type") or ""), str(data.get("code") or "")
        )
    return None


def parse_error_body(body: bytes, content_type: str = "") -> ErrorBody:
    """Return what an error body says, whether JSON, plain text or HTML."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return ErrorBody("(empty body)")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        found = _from_mapping(data)
        if found is not None:
            return found
        return ErrorBody(_clip(text))
    if "html" in content_type.lower() or text.lstrip().startswith("<"):
        title = _TITLE.search(text)
        plain = title.group(1) if title else _TAG.sub(" ", text)
        return ErrorBody(_clip(html.unescape(plain)) or "(HTML error page)")
    return ErrorBody(_clip(text))


def _is(error: ErrorBody, *words: str) -> bool:
    fields = f"{error.type} {error.code}".lower()
    return any(word in fields for word in words)


def classify_status(
    status: int, headers: Mapping[str, str], body: bytes, provider: Provider
) -> EngineError:
    """Return the exception for an unsuccessful HTTP answer (see the module's table)."""
    error = parse_error_body(body, headers.get("content-type", ""))
    said = f"{provider.name} answered {status}: {error.message}"
    if status in (401, 403):
        return AuthenticationError(
            f"{said} - check {provider.key_env} (the API key was rejected)", status_code=status
        )
    if status == 402 or (status == 429 and _is(error, "insufficient_quota")):
        return QuotaExceededError(
            f"{said} - the account is out of credits or quota: add some, then resume the job",
            status_code=status,
        )
    delay = retry_after(headers)
    if status == 429 or (status == 400 and _is(error, "rate_limit")):
        return RateLimitedError(said, retry_after=delay, status_code=status)
    if status in RETRYABLE_STATUSES or status >= 500:
        return RetryableEngineError(said, retry_after=delay, status_code=status)
    return PermanentEngineError(said, status_code=status)


def classify_event_error(payload: Mapping[str, Any], provider: Provider) -> EngineError:
    """Return the exception for an error event inside a 200 stream.

    Rate limits, authentication and quota errors are classified as their
    HTTP counterparts; invalid requests are permanent; anything else is a
    server-side failure, retryable.
    """
    found = _from_mapping(payload) or ErrorBody(_clip(json.dumps(payload)))
    message = f"{provider.name} failed the request mid-stream: {found.message}"
    if _is(found, "auth", "api_key"):
        return AuthenticationError(f"{message} - check {provider.key_env}")
    if _is(found, "insufficient_quota", "credit"):
        return QuotaExceededError(message)
    if _is(found, "rate_limit", "request_limited", "token_limited"):
        return RateLimitedError(message)
    if _is(found, "invalid_request"):
        return PermanentEngineError(message)
    return RetryableEngineError(message)


def classify_transport(exc: httpx.HTTPError, provider: Provider) -> RetryableEngineError:
    """Return the exception for a connection failure, timeout or cut stream."""
    if isinstance(exc, httpx.TimeoutException):
        what = (
            "went silent longer than the read timeout"
            if isinstance(exc, httpx.ReadTimeout)
            else "timed out"
        )
        return RetryableEngineError(f"{provider.name} {what} ({type(exc).__name__})")
    return RetryableEngineError(f"{provider.name} connection failed: {type(exc).__name__}: {exc}")


def build_client(timeout: float) -> httpx.Client:
    """Return an httpx client for one engine: a read timeout of ``timeout`` seconds."""
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))


@contextmanager
def post_stream(
    client: httpx.Client,
    url: str,
    *,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    timeout: float,
    provider: Provider,
) -> Iterator[httpx.Response]:
    """POST ``body`` and yield the successful, still unread response.

    Raises:
        EngineError: an unsuccessful status, or an httpx failure while the
            block reads the body, classified.
    """
    try:
        with client.stream(
            "POST", url, json=dict(body), headers=dict(headers), timeout=timeout
        ) as response:
            if not response.is_success:
                response.read()
                raise classify_status(
                    response.status_code, response.headers, response.content, provider
                )
            yield response
    except httpx.HTTPError as exc:
        raise classify_transport(exc, provider) from exc


def auth_headers(api_key: str | None) -> dict[str, str]:
    """Return the Authorization header for ``api_key`` (none without a key)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
