"""Decoding a speech provider's server-sent-event stream into PCM and word times.

Framing (line endings ``\\n``/``\\r\\n``/``\\r``, ``data:`` with or without a
space, multi-line data, comments, ``event:``/``id:``/``retry:`` fields, events
split across reads) is httpx-sse's job. This module reads what the events
mean (tts-protocol.md): audio in any of the documented shapes, word
timestamps, the end marker, error events; and it refuses a stream that ends
without its end marker (truncated: retry the whole request).
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import EventSource

from ttsbatch.errors import RetryableEngineError
from ttsbatch.models import TimingSource
from worker.engines import StopCheck, Synthesis
from worker.engines.audio import PcmCollector, abandoned
from worker.engines.http import Provider, classify_event_error
from worker.engines.wordtimes import (
    Stamp,
    WordClock,
    estimated_timings,
    parse_word_event,
    word_timings,
)

log = logging.getLogger(__name__)

WORD_TIMESTAMPS = "conversation.item.word_timestamps"
AUDIO_TYPES = frozenset({"conversation.item.audio_output.delta", "delta", "speech.audio.delta"})
END_TYPES = frozenset({"done", "speech.audio.done"})
ERROR_TYPES = frozenset({"error", "conversation.item.tts.failed"})
_AUDIO_KEYS = ("delta", "b64", "audio")


def is_event_stream(response: httpx.Response) -> bool:
    """Return whether a response is a server-sent-event stream (not a plain audio body)."""
    content_type: str = response.headers.get("content-type", "")
    return content_type.lower().startswith("text/event-stream")


def is_done(data: str) -> bool:
    """Return whether an event's data is the end marker ``[DONE]`` (any case, trimmed)."""
    return len(data) < 32 and data.strip().upper() == "[DONE]"


def decode_payload(data: str) -> dict[str, Any]:
    """Return an event's JSON object.

    Raises:
        RetryableEngineError: for data that is not a JSON object (a protocol error).
    """
    try:
        payload = json.loads(data)
    except ValueError:
        raise RetryableEngineError(f"malformed event (not JSON): {data[:80]!r}") from None
    if not isinstance(payload, dict):
        raise RetryableEngineError(f"malformed event (not a JSON object): {data[:80]!r}")
    return payload


def is_error(payload: dict[str, Any]) -> bool:
    """Return whether an event reports a failure of the request."""
    return payload.get("type") in ERROR_TYPES or bool(payload.get("error"))


def audio_of(payload: dict[str, Any]) -> bytes | None:
    """Return the PCM an audio event carries (any documented shape), or None.

    Raises:
        RetryableEngineError: for audio that is not valid base64.
    """
    kind = payload.get("type")
    if kind is not None and kind not in AUDIO_TYPES:
        return None
    for key in _AUDIO_KEYS:
        value = payload.get(key)
        if isinstance(value, str):
            try:
                return binascii.a2b_base64(value)
            except binascii.Error:
                raise RetryableEngineError(f"malformed event: {key!r} is not base64") from None
    return None


def events(
    response: httpx.Response, provider: Provider, should_stop: StopCheck | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the JSON payloads of a stream up to its end marker.

    The end is ``data: [DONE]``, or an end event (``{"type": "done"}``,
    ``speech.audio.done``) followed by the end of the body.

    Raises:
        RetryableEngineError: for a stream without its end (truncated), a
            malformed event, or when ``should_stop`` returns True.
        EngineError: for an error event, classified.
    """
    ended = False
    for sse in EventSource(response).iter_sse():
        if should_stop is not None and should_stop():
            raise abandoned(provider)
        data = sse.data
        if not data:
            continue
        if is_done(data):
            return
        payload = decode_payload(data)
        if is_error(payload):
            raise classify_event_error(payload, provider)
        if payload.get("type") in END_TYPES:
            ended = True
            continue
        yield payload
    if not ended:
        raise RetryableEngineError(
            f"{provider.name} stream ended before [DONE] (truncated): the partial audio was discarded"
        )


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a stream carried: audio and, if any were reported, word times."""

    pcm: bytes
    stamps: tuple[Stamp, ...]
    timed: bool

    def synthesis(self, text: str, sample_rate: int, *, estimate: bool = False) -> Synthesis:
        """Return the chunk's synthesis: provider word times mapped onto ``text``.

        Without provider times the words carry none (``TimingSource.NONE``),
        unless ``estimate`` asks for times spread by word length (``ESTIMATED``).
        """
        total = len(self.pcm) // 2
        if self.timed:
            words = word_timings(text, self.stamps, total)
            return Synthesis(self.pcm, sample_rate, words, TimingSource.PROVIDER)
        if estimate:
            words = estimated_timings(text, total)
            return Synthesis(self.pcm, sample_rate, words, TimingSource.ESTIMATED)
        return Synthesis(self.pcm, sample_rate, (), TimingSource.NONE)


def decode_stream(
    response: httpx.Response,
    provider: Provider,
    *,
    sample_rate: int,
    should_stop: StopCheck | None = None,
) -> Decoded:
    """Read a whole event stream: audio deltas and word timestamps.

    Unknown events are ignored (logged at debug).
    """
    pcm = PcmCollector()
    clock = WordClock(sample_rate)
    for payload in events(response, provider, should_stop):
        if payload.get("type") == WORD_TIMESTAMPS:
            words, starts, ends = parse_word_event(payload)
            clock.segment(words, starts, ends, item_id=payload.get("item_id"), received=pcm.samples)
            continue
        audio = audio_of(payload)
        if audio is None:
            log.debug(
                "ignoring %s event", payload.get("type") or payload.get("object") or "untyped"
            )
            continue
        clock.audio(payload.get("item_id"), pcm.samples)
        pcm.add(audio)
    return Decoded(pcm.pcm(), tuple(clock.stamps), clock.reported)
