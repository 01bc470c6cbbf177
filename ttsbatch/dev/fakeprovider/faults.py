"""Which requests fail, how, and what retry delay the provider suggests (pure)."""

from __future__ import annotations

import email.utils
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from ttsbatch.dev.fakeprovider.config import FakeProviderConfig, Fault

HTML_500 = (
    "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    "<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def choose_fault(config: FakeProviderConfig, text_sha256: str, attempt: int) -> Fault | None:
    """Return the fault of the ``attempt``-th request for a text (1-based), or None.

    A forced ``config.fault`` wins; otherwise the choice depends only on the
    seed, the text and the attempt number, so a concurrent run is as
    reproducible as a serial one.
    """
    if config.fault is not None:
        return config.fault
    if config.fault_rate <= 0 or not config.faults:
        return None
    # Not for security: a reproducible test schedule.
    rng = random.Random(f"{config.seed}:{text_sha256}:{attempt}")  # noqa: S311
    if rng.random() >= config.fault_rate:
        return None
    return rng.choice(config.faults)


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An error response: status, headers, body, and the delay it suggests."""

    status: int
    body: str
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None


def retry_hint(fault: Fault, delay: float, now: float) -> tuple[dict[str, str], float | None]:
    """Return the headers carrying ``fault``'s retry hint and the delay they mean.

    Args:
        fault: One of the 429 faults (others carry no hint).
        delay: The delay to suggest, in seconds.
        now: The current time (seconds since the epoch), for HTTP dates.
    """
    if fault is Fault.RATE_LIMIT_MS:
        millis = max(1, round(delay * 1000))
        return {"retry-after-ms": str(millis)}, millis / 1000
    if fault is Fault.RATE_LIMIT_SECONDS:
        seconds = max(1, math.ceil(delay))
        return {"retry-after": str(seconds)}, float(seconds)
    if fault is Fault.RATE_LIMIT_DATE:
        # HTTP dates have whole seconds: round up so the hint is never shorter.
        at = math.ceil(now + delay) + 1
        return {"retry-after": email.utils.formatdate(at, usegmt=True)}, at - now
    if fault is Fault.RATE_LIMIT_RESET:
        millis = max(1, round(delay * 1000))
        return {
            "x-ratelimit-reset": f"{millis / 1000:g}",
            "x-ratelimit-reset-requests": f"{millis}ms",
        }, millis / 1000
    return {}, None


def _body(
    message: str, kind: str, code: str | None, *, kokoro: bool, param: str | None = None
) -> str:
    if kokoro:
        return json.dumps({"detail": {"error": code or kind, "message": message, "type": kind}})
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}})


_PLAIN: dict[Fault, tuple[int, str, str, str | None]] = {
    Fault.UNAVAILABLE: (503, "The server is overloaded, please try again", "server_error", None),
    Fault.OLD_RATE_LIMIT: (400, "Rate limit exceeded", "invalid_request_error", "rate_limit"),
    Fault.UNAUTHORIZED: (401, "Invalid API key provided", "invalid_api_key", "invalid_api_key"),
    Fault.PAYMENT_REQUIRED: (
        402,
        "Insufficient credits: add credits to continue",
        "credit_limit",
        None,
    ),
    Fault.INSUFFICIENT_QUOTA: (
        429,
        "You exceeded your current quota, please check your plan and billing details",
        "insufficient_quota",
        "insufficient_quota",
    ),
}


def error_answer(
    fault: Fault, config: FakeProviderConfig, *, now: float, voice: str, model: str, kokoro: bool
) -> ErrorAnswer:
    """Return the error response of a status fault (see ``STATUS_FAULTS``)."""
    if fault is Fault.HTML_500:
        return ErrorAnswer(500, HTML_500, "text/html")
    if fault is Fault.UNKNOWN_VOICE:
        return unknown_voice(voice, model, kokoro=kokoro)
    if fault in _PLAIN:
        status, message, kind, code = _PLAIN[fault]
        return ErrorAnswer(status, _body(message, kind, code, kokoro=kokoro))
    headers, suggested = retry_hint(fault, config.retry_delay, now)
    kind = "dynamic_request_limited"
    body = _body("Request was rate limited: slow down", kind, "rate_limit_exceeded", kokoro=kokoro)
    return ErrorAnswer(429, body, headers=headers, retry_after=suggested)


def unknown_voice(voice: str, model: str, *, kokoro: bool) -> ErrorAnswer:
    """Return the 400 for a voice the model does not have, naming the voice."""
    message = f"Voice '{voice}' is not available for model '{model}'"
    return ErrorAnswer(
        400, _body(message, "invalid_request_error", "invalid_voice", kokoro=kokoro, param="voice")
    )


def error_event(shape: str, item_id: str) -> dict[str, Any]:
    """Return a mid-stream error event in the form a given stream shape uses."""
    error = {"message": "synthesis failed on the server", "type": "server_error", "code": None}
    if shape == "delta":
        return {"type": "conversation.item.tts.failed", "item_id": item_id, "error": error}
    if shape == "b64":
        return {"error": error}
    return {"type": "error", "error": error}
