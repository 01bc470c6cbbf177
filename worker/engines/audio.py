"""Audio as providers send it: per-model formats, PCM bodies, WAV headers, plausibility.

Providers do not always send what was asked (Orpheus and Kokoro answer 24 kHz
s16le whatever the request says), so the sample rate comes from a per-model
table, a ``rate=`` content-type parameter or a WAV header - never from the
request alone.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ttsbatch.errors import PermanentEngineError, RetryableEngineError
from ttsbatch.models import TimingSource
from worker.engines import StopCheck, Synthesis
from worker.engines.http import Provider, post_stream

DEFAULT_RATE = 24_000
_WAV_FORMATS = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
_RAW_FORMATS = frozenset(
    {"", "application/octet-stream", "audio/pcm", "audio/raw", "audio/l16", "audio/x-raw"}
)


@dataclass(frozen=True, slots=True)
class ModelFormat:
    """What a model sends back.

    Attributes:
        sample_rate: The rate of its audio (for models honouring the
            request: the rate ttsbatch asks for).
        honours_request: Whether it follows ``sample_rate`` in the request.
        streams: Whether it supports the streaming (SSE) mode.
    """

    sample_rate: int = DEFAULT_RATE
    honours_request: bool = False
    streams: bool = True


def model_format(model: str) -> ModelFormat:
    """Return the audio format of a Together model (unknown models: 24 kHz s16le)."""
    lowered = model.lower()
    if lowered.startswith("cartesia/"):
        return ModelFormat(44_100, honours_request=True)
    return ModelFormat()  # Orpheus, Kokoro and unknown models: 24 kHz s16le


class PcmCollector:
    """s16le audio arriving in pieces of any length.

    A piece may end in the middle of a sample (odd-length deltas): the odd
    byte simply stays at the end of the buffer until the next piece completes
    it, so samples are counted only when whole.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def add(self, data: bytes) -> None:
        """Append a piece of audio."""
        self._buffer += data

    @property
    def samples(self) -> int:
        """Whole samples received so far."""
        return len(self._buffer) // 2

    def pcm(self) -> bytes:
        """Return the whole samples (an unpaired final byte is dropped)."""
        return bytes(self._buffer[: 2 * self.samples])


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    media, *params = (part.strip() for part in content_type.split(";"))
    parsed = {}
    for param in params:
        name, _, value = param.partition("=")
        parsed[name.strip().lower()] = value.strip().strip('"')
    return media.lower(), parsed


def parse_wav(data: bytes, provider: Provider) -> tuple[bytes, int]:
    """Return the PCM and sample rate of a 16-bit mono WAV.

    Streamed WAVs with placeholder sizes (``0xFFFFFFFF`` or 0, as LocalAI
    sends) are read to the end of the body.

    Raises:
        PermanentEngineError: for a WAV that is not 16-bit mono PCM.
        RetryableEngineError: for a header cut short.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RetryableEngineError(f"{provider.name} sent a WAV without a RIFF/WAVE header")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if chunk_id == b"fmt " and size >= 16:
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag not in (1, 0xFFFE) or channels != 1 or bits != 16:
                raise PermanentEngineError(
                    f"{provider.name} sent WAV audio (format {tag}, {channels} channels, "
                    f"{bits}-bit); ttsbatch needs 16-bit mono PCM"
                )
        elif chunk_id == b"data":
            if not rate:
                break
            end = len(data) if size in (0, 0xFFFFFFFF) else min(len(data), body + size)
            pcm = data[body:end]
            return pcm[: len(pcm) - len(pcm) % 2], rate
        pos = body + size + (size & 1)
    raise RetryableEngineError(f"{provider.name} sent a WAV without fmt and data chunks")


def read_audio_body(
    chunks: Iterable[bytes],
    content_type: str,
    *,
    default_rate: int,
    provider: Provider,
    should_stop: StopCheck | None = None,
) -> tuple[bytes, int]:
    """Return the PCM and sample rate of an audio body (raw PCM or WAV).

    The rate comes from a WAV header, a ``rate=`` parameter of the content
    type (``audio/pcm;rate=22050``), or ``default_rate``.

    Raises:
        PermanentEngineError: for compressed audio (mp3, opus...), which
            ttsbatch does not decode: ask for raw PCM or WAV.
    """
    media, params = _media_type(content_type)
    if media not in _RAW_FORMATS and media not in _WAV_FORMATS:
        raise PermanentEngineError(
            f"{provider.name} sent {media!r} audio, which ttsbatch does not decode: "
            "ask for raw PCM or WAV"
        )
    body = bytearray()
    for chunk in chunks:
        if should_stop is not None and should_stop():
            raise abandoned(provider)
        body += chunk
    if media in _WAV_FORMATS or body[:4] == b"RIFF":
        return parse_wav(bytes(body), provider)
    rate = int(params["rate"]) if params.get("rate", "").isdigit() else default_rate
    return bytes(body[: len(body) - len(body) % 2]), rate


def abandoned(provider: Provider) -> RetryableEngineError:
    """Return the error for a request abandoned because ``should_stop`` said so.

    It is retryable: nothing was wrong with the request, and a resumed job
    synthesises the chunk again.
    """
    return RetryableEngineError(f"{provider.name} request abandoned: the job asked to stop")


def read_raw(
    response: httpx.Response,
    *,
    default_rate: int,
    provider: Provider,
    should_stop: StopCheck | None = None,
) -> Synthesis:
    """Return the audio of a plain (not event-stream) audio response; it has no word times."""
    pcm, rate = read_audio_body(
        response.iter_bytes(),
        response.headers.get("content-type", ""),
        default_rate=default_rate,
        provider=provider,
        should_stop=should_stop,
    )
    return Synthesis(pcm, rate, (), TimingSource.NONE)


def request_audio(
    client: httpx.Client,
    url: str,
    *,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    timeout: float,
    provider: Provider,
    read: Callable[[httpx.Response], Synthesis],
) -> Synthesis:
    """POST a speech request and ``read`` the successful response.

    (Whether the audio is long enough to be the speech of the text is checked
    once for every engine, in :func:`worker.synthesis.synthesize_record`.)

    Raises:
        EngineError: classified (:mod:`worker.engines.http`).
    """
    with post_stream(
        client, url, body=body, headers=headers, timeout=timeout, provider=provider
    ) as response:
        return read(response)
