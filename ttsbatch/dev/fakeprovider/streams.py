"""The bodies the imitation provider streams, as lists of timed writes (pure).

Each builder returns :class:`Write` items: the bytes of one event (or one
slice of raw audio) and the audio position, in samples, it belongs to, which
the server uses to pace the stream at the configured real-time factor.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from ttsbatch.dev.fakeprovider.audio import Segment, SpokenWord, render
from ttsbatch.dev.fakeprovider.config import (
    FakeProviderConfig,
    Shape,
    StampMode,
    StampOrder,
    StampPlace,
)
from ttsbatch.dev.fakeprovider.framing import cut, encode_json, sse_event


@dataclass(frozen=True, slots=True)
class Write:
    """One event (or slice of a raw body) and its position in the audio."""

    data: bytes
    at: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _audio_payload(shape: Shape, item_id: str | None, model: str, data: bytes) -> dict[str, Any]:
    # Keys in the documented order: the shape's head, the item, the audio.
    named = {"item_id": item_id} if item_id is not None else {}
    if shape is Shape.B64:
        return {"object": "audio.tts.chunk", "model": model, **named, "b64": _b64(data)}
    if shape is Shape.AUDIO:
        return {"type": "delta", **named, "audio": _b64(data)}
    return {"type": "conversation.item.audio_output.delta", **named, "delta": _b64(data)}


def _stamps(
    words: tuple[SpokenWord, ...],
    *,
    base: int,
    rate: int,
    item_id: str | None,
    place: StampPlace,
) -> dict[str, Any]:
    arrays = {
        "words": [w.text for w in words],
        "start_seconds": [(w.start - base) / rate for w in words],
        "end_seconds": [(w.end - base) / rate for w in words],
    }
    payload: dict[str, Any] = {"type": "conversation.item.word_timestamps"}
    if item_id is not None:
        payload["item_id"] = item_id
    if place is StampPlace.NESTED:
        payload["timestamps"] = arrays
    else:
        payload.update(arrays)
    return payload


def _segment_audio(pcm: bytes, seg: Segment, config: FakeProviderConfig) -> list[tuple[bytes, int]]:
    at, out = seg.start, []
    for delta in cut(pcm[2 * seg.start : 2 * seg.end], config.delta_bytes, odd=config.odd_deltas):
        out.append((delta, at))
        at += len(delta) // 2
    return out


def _item_id(k: int) -> str:
    return f"tts_{k + 1}"


def _word_events(
    segments: list[Segment], config: FakeProviderConfig, *, rate: int, ids: bool
) -> list[tuple[dict[str, Any] | None, range]]:
    """Return each word timestamps event (None: none) and the segments whose audio it times."""
    place = config.timestamps_key
    if config.timestamps is StampMode.ONCE:
        words = tuple(w for seg in segments for w in seg.words)
        once = _stamps(words, base=0, rate=rate, item_id=None, place=place)
        return [(once, range(len(segments)))]
    events: list[tuple[dict[str, Any] | None, range]] = []
    for k, seg in enumerate(segments):
        payload = None
        if config.timestamps is not StampMode.NONE:
            base = seg.start if config.timestamps is StampMode.RELATIVE else 0
            item = _item_id(k) if ids else None
            payload = _stamps(seg.words, base=base, rate=rate, item_id=item, place=place)
        events.append((payload, range(k, k + 1)))
    return events


def together_sse(text: str, config: FakeProviderConfig, *, rate: int, model: str) -> list[Write]:
    """Return the events of a streamed Together response for ``text``.

    The variant (item ids, timestamp mode, order and place) is the config's;
    see :mod:`ttsbatch.dev.fakeprovider.config`.
    """
    pcm, segments = render(text, rate)
    writes: list[Write] = []

    def add(payload: dict[str, Any], at: int) -> None:
        kind = str(payload.get("type", payload.get("object", "message")))
        writes.append(
            Write(sse_event(encode_json(payload), config, number=len(writes), kind=kind), at)
        )

    audio_ids = config.audio_item_ids
    if audio_ids is None:
        audio_ids = config.shape is Shape.DELTA
    word_ids = audio_ids if config.word_item_ids is None else config.word_item_ids
    before = config.timestamps_order is StampOrder.BEFORE
    for stamps, timed in _word_events(segments, config, rate=rate, ids=word_ids):
        start, end = (segments[timed[0]].start, segments[timed[-1]].end) if timed else (0, 0)
        if stamps is not None and before:
            add(stamps, start)
        for k in timed:
            item = _item_id(k) if audio_ids else None
            for delta, at in _segment_audio(pcm, segments[k], config):
                add(_audio_payload(config.shape, item, model, delta), at)
        if stamps is not None and not before:
            add(stamps, end)
    total = len(pcm) // 2
    if config.shape is Shape.AUDIO:
        add({"type": "done"}, total)
    writes.append(Write(sse_event(config.done_token, config, number=len(writes)), total))
    return writes


def openai_sse(text: str, config: FakeProviderConfig, *, rate: int) -> list[Write]:
    """Return the events of an OpenAI ``stream_format=sse`` response."""
    pcm, _ = render(text, rate)
    writes: list[Write] = []
    for i, delta in enumerate(cut(pcm, config.delta_bytes, odd=config.odd_deltas)):
        payload = {"type": "speech.audio.delta", "audio": _b64(delta)}
        writes.append(
            Write(sse_event(encode_json(payload), config, number=i), i * config.delta_bytes // 2)
        )
    done = {
        "type": "speech.audio.done",
        "usage": {"input_tokens": len(text), "output_tokens": len(pcm) // 2, "total_tokens": 0},
    }
    writes.append(Write(sse_event(encode_json(done), config, number=len(writes)), len(pcm) // 2))
    return writes


def raw_pcm(
    text: str, config: FakeProviderConfig, *, rate: int, header: bytes = b""
) -> list[Write]:
    """Return a raw audio body (optionally after a header) in ``delta_bytes`` slices."""
    pcm, _ = render(text, rate)
    writes = [Write(header, 0)] if header else []
    writes.extend(
        Write(piece, i * config.delta_bytes // 2)
        for i, piece in enumerate(cut(pcm, config.delta_bytes, odd=config.odd_deltas))
    )
    return writes


def captioned_ndjson(text: str, config: FakeProviderConfig, *, rate: int) -> list[Write]:
    """Return Kokoro-FastAPI's ``/dev/captioned_speech`` body: one JSON line per sentence.

    Times are absolute (Kokoro's behaviour) unless ``config.timestamps`` is
    ``relative``; ``none`` sends empty lists.
    """
    pcm, segments = render(text, rate)
    writes = []
    for seg in segments:
        base = seg.start if config.timestamps is StampMode.RELATIVE else 0
        stamps = [
            {
                "word": w.text,
                "start_time": (w.start - base) / rate,
                "end_time": (w.end - base) / rate,
            }
            for w in seg.words
        ]
        line = {
            "audio": _b64(pcm[2 * seg.start : 2 * seg.end]),
            "audio_format": "pcm",
            "timestamps": [] if config.timestamps is StampMode.NONE else stamps,
        }
        writes.append(Write((encode_json(line) + "\n").encode(), seg.start))
    return writes
