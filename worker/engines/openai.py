"""The OpenAI-compatible engine: ``POST {base}/audio/speech`` (tts-protocol.md, section 2).

Three ways to read a server, chosen at construction:

* ``stream_format="audio"`` (default): raw ``pcm`` bytes, 24 kHz s16le unless
  the content type says otherwise (``audio/pcm;rate=22050``, a WAV header);
* ``stream_format="sse"``: ``speech.audio.delta`` events (:mod:`worker.engines.sse`;
  a server that answers with plain audio instead is read as raw PCM);
* ``captioned=True``: Kokoro-FastAPI's ``POST /dev/captioned_speech``,
  newline-delimited JSON with word timestamps.

Only the captioned mode has word times. Otherwise the synthesis says
``TimingSource.NONE`` and words carry no times, unless ``estimate_timings``
asks for times spread by word length, marked ``ESTIMATED``.

The API key (``OPENAI_API_KEY``) is required for api.openai.com and optional
for self-hosted servers. ``should_stop`` behaves as in the Together engine:
checked between events, it abandons the request with a retryable error.
"""

from __future__ import annotations

import binascii
import logging
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from ttsbatch.errors import ConfigError, PermanentEngineError, RetryableEngineError
from ttsbatch.settings import OpenAISettings
from worker.engines import StopCheck, Synthesis
from worker.engines.audio import DEFAULT_RATE, PcmCollector, abandoned, read_raw, request_audio
from worker.engines.http import (
    Provider,
    auth_headers,
    build_client,
    classify_event_error,
    normalize_base_url,
)
from worker.engines.sse import Decoded, decode_payload, decode_stream, is_error, is_event_stream
from worker.engines.wordtimes import WordClock

log = logging.getLogger(__name__)

CAPTIONED_PATH = "/dev/captioned_speech"


def _provider(base_url: str) -> Provider:
    host = urlsplit(base_url).netloc
    name = "OpenAI" if host.endswith("openai.com") else f"the speech server at {host}"
    return Provider(name, "OPENAI_API_KEY")


def decode_captioned(
    response: httpx.Response,
    provider: Provider,
    *,
    sample_rate: int,
    should_stop: StopCheck | None = None,
) -> Decoded:
    """Read Kokoro-FastAPI's captioned stream: one JSON object per line and segment.

    Each object carries base64 ``audio`` and ``timestamps``
    (``[{"word", "start_time", "end_time"}]``, seconds from the start of the
    utterance; segments restarting at 0 are detected as for Together). A cut
    connection is the only sign of failure mid-stream (an httpx error).
    """
    pcm = PcmCollector()
    clock = WordClock(sample_rate)
    for line in response.iter_lines():
        if should_stop is not None and should_stop():
            raise abandoned(provider)
        if not line.strip():
            continue
        payload = decode_payload(line)
        if is_error(payload) or "detail" in payload:
            raise classify_event_error(payload, provider)
        if payload.get("audio_format", "pcm") != "pcm":
            raise PermanentEngineError(
                f"{provider.name} sent {payload.get('audio_format')!r} captioned audio: ask for pcm"
            )
        audio = payload.get("audio")
        if isinstance(audio, str):
            try:
                pcm.add(binascii.a2b_base64(audio))
            except binascii.Error:
                raise RetryableEngineError(
                    "malformed captioned line: audio is not base64"
                ) from None
        stamps = payload.get("timestamps")
        if isinstance(stamps, list):
            try:
                words = [str(s["word"]) for s in stamps]
                starts = [float(s["start_time"]) for s in stamps]
                ends = [float(s["end_time"]) for s in stamps]
            except (KeyError, TypeError, ValueError):
                raise RetryableEngineError("malformed captioned line: bad timestamps") from None
            clock.segment(words, starts, ends, item_id=None, received=pcm.samples)
    return Decoded(pcm.pcm(), tuple(clock.stamps), clock.reported)


class OpenAIEngine:
    """Speech from an OpenAI-compatible ``/audio/speech`` endpoint.

    Args:
        settings: API key and base URL (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``;
            a base URL without a path gets ``/v1``).
        model: e.g. ``gpt-4o-mini-tts``, ``tts-1``, ``kokoro``.
        voice: e.g. ``alloy``, ``af_heart``.
        client: An httpx client to use (transport seam); by default one is
            built and closed by :meth:`close`.
        timeout: Seconds of silence after which a request fails.
        stream_format: ``audio`` (raw PCM bytes) or ``sse`` (events).
        captioned: Use Kokoro-FastAPI's ``/dev/captioned_speech`` (word times).
        speed: Sent as ``speed`` when given.
        instructions: Sent as ``instructions`` when given (gpt-4o-mini-tts).
        estimate_timings: Without provider word times, estimate them (ESTIMATED).
        sample_rate: Rate of raw PCM when the server does not say (24 kHz).

    Raises:
        ConfigError: without an API key for api.openai.com, or for a bad base URL.
    """

    name = "openai"
    default_max_chars = 400

    def __init__(
        self,
        settings: OpenAISettings,
        *,
        model: str,
        voice: str,
        client: httpx.Client | None = None,
        timeout: float = 60.0,
        stream_format: Literal["audio", "sse"] = "audio",
        captioned: bool = False,
        speed: float | None = None,
        instructions: str | None = None,
        estimate_timings: bool = False,
        sample_rate: int = DEFAULT_RATE,
    ) -> None:
        try:
            self.base_url = normalize_base_url(settings.base_url)
        except ValueError as exc:
            raise ConfigError(f"OPENAI_BASE_URL: {exc}") from None
        self.provider = _provider(self.base_url)
        key = settings.api_key.get_secret_value().strip() if settings.api_key is not None else ""
        if not key and urlsplit(self.base_url).netloc.endswith("openai.com"):
            raise ConfigError("OPENAI_API_KEY is not set: export your OpenAI API key")
        self.model, self.voice = model, voice
        self.stream_format, self.captioned = stream_format, captioned
        self.speed, self.instructions = speed, instructions
        self.estimate_timings, self.sample_rate = estimate_timings, sample_rate
        self._timeout = timeout
        self._headers = auth_headers(key)
        self._owns_client = client is None
        self._client = client if client is not None else build_client(timeout)

    def __repr__(self) -> str:
        return (
            f"OpenAIEngine(model={self.model!r}, voice={self.voice!r}, base_url={self.base_url!r})"
        )

    @property
    def url(self) -> str:
        """Where requests go (Kokoro's captioned route sits at the server's root)."""
        if self.captioned:
            parts = urlsplit(self.base_url)
            return f"{parts.scheme}://{parts.netloc}{CAPTIONED_PATH}"
        return f"{self.base_url}/audio/speech"

    def request_body(self, text: str) -> dict[str, Any]:
        """Return the JSON body that asks for ``text``."""
        body: dict[str, Any] = {
            "model": self.model,
            "input": text,
            "voice": self.voice,
            "response_format": "pcm",
        }
        if self.captioned:
            body.update(stream=True, return_timestamps=True)
        elif self.stream_format == "sse":
            body["stream_format"] = "sse"
        if self.speed is not None:
            body["speed"] = self.speed
        if self.instructions:
            body["instructions"] = self.instructions
        return body

    def synthesize(self, text: str, *, should_stop: StopCheck | None = None) -> Synthesis:
        """Speak ``text``; see the module docstring for modes and errors."""
        log.debug("openai: %d characters, model %s, voice %s", len(text), self.model, self.voice)
        return request_audio(
            self._client,
            self.url,
            body=self.request_body(text),
            headers=self._headers,
            timeout=self._timeout,
            provider=self.provider,
            read=lambda response: self._read(response, text, should_stop),
        )

    def _read(
        self, response: httpx.Response, text: str, should_stop: StopCheck | None
    ) -> Synthesis:
        rate, provider = self.sample_rate, self.provider
        if self.captioned:
            decoded = decode_captioned(
                response, provider, sample_rate=rate, should_stop=should_stop
            )
        elif self.stream_format == "sse" and is_event_stream(response):
            decoded = decode_stream(response, provider, sample_rate=rate, should_stop=should_stop)
        else:
            raw = read_raw(response, default_rate=rate, provider=provider, should_stop=should_stop)
            decoded, rate = Decoded(raw.pcm, (), False), raw.sample_rate
        return decoded.synthesis(text, rate, estimate=self.estimate_timings)

    def close(self) -> None:
        """Close the HTTP client if this engine built it."""
        if self._owns_client:
            self._client.close()
