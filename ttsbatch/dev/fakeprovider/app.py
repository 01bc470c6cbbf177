"""The imitation provider's HTTP app (Starlette): routes, fault gate, request log.

Routes:

* ``POST /v1/audio/speech`` - Together (``stream: true`` SSE or raw; ``wav`` /
  ``raw`` bodies) and OpenAI (``response_format: pcm``, raw or
  ``stream_format: sse``), told apart by the request body.
* ``POST /dev/captioned_speech`` - Kokoro-FastAPI's NDJSON with word times.
* ``GET /v1/voices`` - the voices of each model.
* ``GET /_log``, ``DELETE /_log``, ``GET /_stats`` - the request log.
* ``POST /_release`` - answer the requests held by the ``hold`` option, and
  hold none from now on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ttsbatch.audio.wav import wav_header
from ttsbatch.dev.fakeprovider.audio import render
from ttsbatch.dev.fakeprovider.config import (
    STATUS_FAULTS,
    FakeProviderConfig,
    Fault,
    Shape,
    from_headers,
)
from ttsbatch.dev.fakeprovider.faults import (
    ErrorAnswer,
    choose_fault,
    error_answer,
    error_event,
    unknown_voice,
)
from ttsbatch.dev.fakeprovider.framing import encode_json, pieces, sse_event
from ttsbatch.dev.fakeprovider.streams import (
    Write,
    captioned_ndjson,
    openai_sse,
    raw_pcm,
    together_sse,
)

SPEECH_PATHS = frozenset({"/v1/audio/speech", "/dev/captioned_speech"})
OVER_CONCURRENCY = "over-concurrency"

VOICES: dict[str, tuple[str, ...]] = {
    "canopylabs/orpheus-3b-0.1-ft": ("tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"),
    "hexgrad/Kokoro-82M": ("af_heart", "af_bella", "af_nicole", "am_adam", "bf_emma", "bm_george"),
    "kokoro": ("af_heart", "af_bella", "af_nicole", "am_adam", "bf_emma", "bm_george"),
    "gpt-4o-mini-tts": (
        "alloy",
        "ash",
        "coral",
        "echo",
        "fable",
        "nova",
        "onyx",
        "sage",
        "shimmer",
    ),
    "tts-1": ("alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer"),
}
"""Voices by model; other models accept any voice."""

_VOICE_WEIGHT = re.compile(r"\(\s*[\d.]+\s*\)$")


class DeliberateAbort(Exception):  # noqa: N818 - it is the fault's name, not an error of ours
    """Raised inside a response body to cut the connection (the ``abort`` fault)."""


@dataclass(slots=True)
class LogEntry:
    """One request to a speech route, as the provider saw it."""

    index: int
    path: str
    received: float  # seconds since the epoch
    in_flight: int  # requests in flight when it arrived, itself included
    text_sha256: str = ""
    model: str = ""
    voice: str = ""
    attempt: int = 0  # 1 for the first request with this text
    fault: str | None = None
    status: int | None = None
    retry_after: float | None = None  # the delay the answer suggested (s)
    finished: float | None = None  # when the answer ended (s since the epoch)
    held: bool = False  # its text matched the `hold` option: it waited for a release


class ProviderState:
    """The mutable side of a provider: request log and concurrency (thread-safe)."""

    def __init__(self, config: FakeProviderConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._entries: list[LogEntry] = []
        self._attempts: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._released = threading.Event()
        self._held = 0

    def arrive(self, path: str) -> LogEntry:
        """Record a request arriving; returns its (still mutable) log entry."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            entry = LogEntry(len(self._entries), path, time.time(), self._in_flight)
            self._entries.append(entry)
            return entry

    def leave(self, entry: LogEntry) -> None:
        """Record a request's answer as finished."""
        with self._lock:
            self._in_flight -= 1
            entry.finished = time.time()

    def next_attempt(self, text_sha256: str) -> int:
        """Count a request for a text; returns its attempt number (1-based)."""
        with self._lock:
            self._attempts[text_sha256] += 1
            return self._attempts[text_sha256]

    def release(self) -> None:
        """Answer the requests the ``hold`` option holds, and hold none from now on."""
        self._released.set()

    async def hold(self, entry: LogEntry, timeout: float) -> None:
        """Wait until :meth:`release` is called or ``timeout`` passes."""
        entry.held = True
        with self._lock:
            self._held += 1
        try:
            deadline = time.monotonic() + timeout
            while not self._released.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        finally:
            with self._lock:
                self._held -= 1

    def held(self) -> int:
        """Return how many requests are held now."""
        with self._lock:
            return self._held

    def log(self) -> list[dict[str, Any]]:
        """Return the request log, oldest first."""
        with self._lock:
            return [dataclasses.asdict(entry) for entry in self._entries]

    def stats(self) -> dict[str, Any]:
        """Return request counts, faults by kind, and the maximum concurrency observed."""
        with self._lock:
            faults = Counter(e.fault for e in self._entries if e.fault)
            return {
                "requests": len(self._entries),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "faults": dict(faults),
            }

    def reset(self) -> None:
        """Forget the log, the attempt counts and the observed maximum."""
        with self._lock:
            self._entries.clear()
            self._attempts.clear()
            self._max_in_flight = self._in_flight


class _Accounting:
    """ASGI middleware: logs each speech request and counts those in flight."""

    def __init__(self, app: ASGIApp, state: ProviderState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in SPEECH_PATHS:
            await self.app(scope, receive, send)
            return
        entry = self.state.arrive(scope["path"])
        scope["fake.entry"] = entry

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.state.leave(entry)


def _answer(answer: ErrorAnswer, entry: LogEntry) -> Response:
    entry.retry_after = answer.retry_after
    return Response(
        answer.body,
        status_code=answer.status,
        media_type=answer.content_type,
        headers=answer.headers,
    )


def _unknown_voice(model: str, voice: str) -> bool:
    known = VOICES.get(model)
    if known is None:
        return False
    parts = [_VOICE_WEIGHT.sub("", part).strip() for part in voice.split("+")]
    return any(part not in known for part in parts)


def _sample_rate(model: str, body: dict[str, Any], config: FakeProviderConfig) -> int:
    lowered = model.lower()
    if "orpheus" in lowered or "kokoro" in lowered:
        return 24_000  # whatever is asked (tts-protocol.md)
    if config.sample_rate:
        return config.sample_rate
    requested = body.get("sample_rate")
    if lowered.startswith("cartesia/") and isinstance(requested, int) and requested > 0:
        return requested
    return 24_000


def _ratelimit_headers(config: FakeProviderConfig, entry: LogEntry) -> dict[str, str]:
    if not config.rate_limit_headers:
        return {}
    limit = config.max_concurrency or 100
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(max(0, limit - entry.in_flight)),
        "x-ratelimit-reset": "1",
    }


async def _body(
    writes: Sequence[Write],
    *,
    config: FakeProviderConfig,
    rate: int,
    fault: Fault | None,
    fault_event: bytes | None = None,
    malformed: bytes | None = None,
    can_end_early: bool = True,
) -> AsyncIterator[bytes]:
    """Send ``writes`` paced and split as configured, applying a stream fault halfway."""
    start = time.monotonic()
    middle = len(writes) // 2
    for i, write in enumerate(writes):
        if i == middle and fault is not None:
            if fault is Fault.STALL:
                await asyncio.sleep(config.stall)
            elif fault is Fault.MALFORMED and malformed is not None:
                yield malformed
            elif fault is Fault.ERROR_EVENT and fault_event is not None:
                yield fault_event
                return
            elif fault is Fault.TRUNCATE and can_end_early:
                return
            else:
                raise DeliberateAbort(fault.value)
        due = start + write.at / rate * config.rtf
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        for piece in pieces(write.data, config.split):
            yield piece
            if config.split > 0:
                # Let the piece leave on its own so that the client reads it separately.
                await asyncio.sleep(0.001)


def _sse_extras(config: FakeProviderConfig, shape: str) -> tuple[bytes, bytes]:
    event = sse_event(encode_json(error_event(shape, "tts_1")), config, number=99)
    broken = sse_event(
        '{"type":"conversation.item.audio_output.delta","delta":"AAAA', config, number=98
    )
    return event, broken


@dataclass(frozen=True, slots=True)
class _Ask:
    """A parsed speech request."""

    text: str
    model: str
    voice: str
    body: dict[str, Any]
    config: FakeProviderConfig
    kokoro: bool


def _invalid(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status)


def _refusal(ask: _Ask, entry: LogEntry, authorization: str | None) -> Response | None:
    """Return the error answer for a request over the limit, unauthorised or faulted."""
    config, now = ask.config, time.time()
    if config.max_concurrency is not None and entry.in_flight > config.max_concurrency:
        entry.fault = OVER_CONCURRENCY
        millis = max(1, round(config.retry_delay * 1000))
        headers = {**_ratelimit_headers(config, entry), "retry-after-ms": str(millis)}
        headers["x-ratelimit-remaining"] = "0"
        message = f"too many concurrent requests (limit {config.max_concurrency})"
        body = encode_json({"error": {"message": message, "type": "dynamic_request_limited"}})
        return _answer(ErrorAnswer(429, body, headers=headers, retry_after=millis / 1000), entry)
    if config.api_key is not None and authorization != f"Bearer {config.api_key}":
        fault: Fault | None = Fault.UNAUTHORIZED
    else:
        fault = choose_fault(config, entry.text_sha256, entry.attempt)
        entry.fault = fault.value if fault else None
    if fault is not None and fault in STATUS_FAULTS:
        answer = error_answer(
            fault, config, now=now, voice=ask.voice, model=ask.model, kokoro=ask.kokoro
        )
        return _answer(answer, entry)
    if _unknown_voice(ask.model, ask.voice):
        return _answer(unknown_voice(ask.voice, ask.model, kokoro=ask.kokoro), entry)
    return None


def _audio_response(ask: _Ask, entry: LogEntry) -> Response:
    """Return the streamed audio in the protocol variant the request asks for."""
    config, body, text = ask.config, ask.body, ask.text
    rate = _sample_rate(ask.model, body, config)
    fault = Fault(entry.fault) if entry.fault else None
    kwargs: dict[str, Any] = {"config": config, "rate": rate, "fault": fault}
    headers = _ratelimit_headers(config, entry)
    response_format = body.get("response_format", "wav")
    if ask.kokoro:
        writes = captioned_ndjson(text, config, rate=rate)
        kwargs.update(malformed=b'{"audio": "AAAA\n', can_end_early=False)
        media = "application/x-ndjson"
    elif body.get("stream") is True and config.shape is Shape.RAW:
        writes = raw_pcm(text, config, rate=rate)
        kwargs.update(can_end_early=False)
        media = "application/octet-stream"
    elif body.get("stream") is True or body.get("stream_format") == "sse":
        openai = body.get("stream") is not True
        event, broken = _sse_extras(config, "openai" if openai else config.shape.value)
        if openai:
            writes = openai_sse(text, config, rate=rate)
        else:
            writes = together_sse(text, config, rate=rate, model=ask.model)
        kwargs.update(fault_event=event, malformed=broken)
        media = "text/event-stream"
    elif response_format == "pcm":  # OpenAI-compatible raw bytes
        writes = raw_pcm(text, config, rate=rate)
        kwargs.update(can_end_early=False)
        media = f"audio/pcm;rate={rate}" if config.sample_rate else "audio/pcm"
    elif response_format in ("wav", "raw"):  # Together, not streamed
        pcm, _ = render(text, rate)
        header = wav_header(len(pcm) // 2, rate) if response_format == "wav" else b""
        headers["content-length"] = str(len(header) + len(pcm))
        writes = raw_pcm(text, config, rate=rate, header=header)
        kwargs.update(can_end_early=False)
        media = "audio/wav" if response_format == "wav" else "application/octet-stream"
    else:
        return _invalid(f"the fake provider cannot encode {response_format!r}: use wav, raw or pcm")
    return StreamingResponse(_body(writes, **kwargs), media_type=media, headers=headers)


async def speech(request: Request) -> Response:
    """Answer a speech request in whichever protocol variant its body asks for."""
    state: ProviderState = request.app.state.fake
    entry: LogEntry = request.scope["fake.entry"]
    try:
        config = from_headers(state.config, request.headers)
        body = json.loads(await request.body())
    except ValueError as exc:
        return _invalid(str(exc))
    if not isinstance(body, dict):
        return _invalid("the body must be a JSON object")
    for name in ("model", "input", "voice"):
        if not isinstance(body.get(name), str):
            return _invalid(f"'{name}' is required and must be a string", 422)
    kokoro = request.url.path == "/dev/captioned_speech"
    ask = _Ask(body["input"], body["model"], body["voice"], body, config, kokoro)
    entry.text_sha256 = hashlib.sha256(ask.text.encode()).hexdigest()
    entry.model, entry.voice = ask.model, ask.voice
    entry.attempt = state.next_attempt(entry.text_sha256)
    refusal = _refusal(ask, entry, request.headers.get("authorization"))
    if refusal is not None:
        return refusal
    if config.hold and re.search(config.hold, ask.text):
        await state.hold(entry, config.hold_timeout)
    if config.ttfb > 0:
        await asyncio.sleep(config.ttfb)
    return _audio_response(ask, entry)


async def voices(request: Request) -> Response:
    """List the voices of each model (Together's ``GET /v1/voices``)."""
    data = [
        {"model": model, "voices": [{"id": f"{model}:{name}", "name": name} for name in names]}
        for model, names in VOICES.items()
    ]
    return JSONResponse({"data": data})


async def get_log(request: Request) -> Response:
    """Return the request log as JSON."""
    state: ProviderState = request.app.state.fake
    return JSONResponse(state.log())


async def delete_log(request: Request) -> Response:
    """Clear the request log."""
    state: ProviderState = request.app.state.fake
    state.reset()
    return Response(status_code=204)


async def release(request: Request) -> Response:
    """Answer the held requests (the ``hold`` option) and hold none from now on."""
    state: ProviderState = request.app.state.fake
    state.release()
    return Response(status_code=204)


async def get_stats(request: Request) -> Response:
    """Return request counts and the maximum concurrency observed."""
    state: ProviderState = request.app.state.fake
    return JSONResponse(state.stats())


def create_app(
    config: FakeProviderConfig | None = None, *, state: ProviderState | None = None
) -> Starlette:
    """Return the imitation provider's ASGI app.

    Args:
        config: Its behaviour (defaults: the documented Together stream, no faults).
        state: Share a request log with the caller (see :func:`state_of`).
    """
    state = state or ProviderState(config or FakeProviderConfig())
    routes = [
        Route("/v1/audio/speech", speech, methods=["POST"]),
        Route("/dev/captioned_speech", speech, methods=["POST"]),
        Route("/v1/voices", voices, methods=["GET"]),
        Route("/_log", get_log, methods=["GET"]),
        Route("/_log", delete_log, methods=["DELETE"]),
        Route("/_stats", get_stats, methods=["GET"]),
        Route("/_release", release, methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(_Accounting, state=state)])
    app.state.fake = state
    return app


def state_of(app: Starlette) -> ProviderState:
    """Return the request log and counters of an app made by :func:`create_app`."""
    state: ProviderState = app.state.fake
    return state
