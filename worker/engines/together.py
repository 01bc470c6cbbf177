"""The Together AI engine: ``POST {base}/audio/speech`` (tts-protocol.md, section 1).

Streaming mode (the default) asks for ``raw`` ``pcm_s16le`` with word
alignment and decodes the server-sent events (:mod:`worker.engines.sse`); a
server that answers a streaming request with a plain audio body is accepted
too (no word times then). Non-streaming mode asks for a WAV and reads its
header. Failures are classified (:mod:`worker.engines.http`), never retried
here.

``should_stop`` is called between events; when it returns True the request is
abandoned with a :class:`~ttsbatch.errors.RetryableEngineError` (the chunk was
not done, and a resumed job does it again).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ttsbatch.errors import ConfigError
from ttsbatch.settings import TogetherSettings
from worker.engines import StopCheck, Synthesis
from worker.engines.audio import model_format, read_raw, request_audio
from worker.engines.http import Provider, auth_headers, build_client, normalize_base_url
from worker.engines.sse import decode_stream, is_event_stream

log = logging.getLogger(__name__)

TOGETHER = Provider("Together", "TOGETHER_API_KEY")


class TogetherEngine:
    """Speech from Together AI's ``/audio/speech`` endpoint.

    Args:
        settings: API key and base URL (``TOGETHER_API_KEY``, ``TOGETHER_BASE_URL``;
            a base URL without a path gets ``/v1``).
        model: e.g. ``canopylabs/orpheus-3b-0.1-ft`` or ``hexgrad/Kokoro-82M``.
        voice: e.g. ``tara``, ``af_heart``.
        language: Sent as ``language`` when given.
        client: An httpx client to use (a transport seam for tests); by
            default one is built and closed by :meth:`close`.
        timeout: Seconds of silence after which a request fails (read timeout).
        stream: Stream with word times (default: the model table's choice);
            False asks for a WAV without word times.

    Raises:
        ConfigError: without an API key, or with a malformed base URL.
    """

    name = "together"
    default_max_chars = 400

    def __init__(
        self,
        settings: TogetherSettings,
        *,
        model: str,
        voice: str,
        language: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 60.0,
        stream: bool | None = None,
    ) -> None:
        key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
        if not key.strip():
            raise ConfigError(
                "TOGETHER_API_KEY is not set: export your Together API key to use the together engine"
            )
        try:
            self.base_url = normalize_base_url(settings.base_url)
        except ValueError as exc:
            raise ConfigError(f"TOGETHER_BASE_URL: {exc}") from None
        self.model, self.voice, self.language = model, voice, language
        self.format = model_format(model)
        self.stream = self.format.streams if stream is None else stream
        self._timeout = timeout
        self._headers = auth_headers(key.strip())
        self._owns_client = client is None
        self._client = client if client is not None else build_client(timeout)

    def __repr__(self) -> str:
        return f"TogetherEngine(model={self.model!r}, voice={self.voice!r}, base_url={self.base_url!r})"

    def request_body(self, text: str) -> dict[str, Any]:
        """Return the JSON body that asks for ``text``."""
        body: dict[str, Any] = {"model": self.model, "input": text, "voice": self.voice}
        if self.stream:
            body.update(
                stream=True, response_format="raw", response_encoding="pcm_s16le", alignment="word"
            )
        else:
            body.update(response_format="wav", response_encoding="pcm_s16le")
        if self.format.honours_request:
            body["sample_rate"] = self.format.sample_rate
        if self.language:
            body["language"] = self.language
        return body

    def synthesize(self, text: str, *, should_stop: StopCheck | None = None) -> Synthesis:
        """Speak ``text``; see the module docstring for modes and errors."""
        log.debug("together: %d characters, model %s, voice %s", len(text), self.model, self.voice)
        return request_audio(
            self._client,
            f"{self.base_url}/audio/speech",
            body=self.request_body(text),
            headers=self._headers,
            timeout=self._timeout,
            provider=TOGETHER,
            read=lambda response: self._read(response, text, should_stop),
        )

    def _read(
        self, response: httpx.Response, text: str, should_stop: StopCheck | None
    ) -> Synthesis:
        rate = self.format.sample_rate
        if self.stream and is_event_stream(response):
            decoded = decode_stream(response, TOGETHER, sample_rate=rate, should_stop=should_stop)
            return decoded.synthesis(text, rate)
        return read_raw(response, default_rate=rate, provider=TOGETHER, should_stop=should_stop)

    def close(self) -> None:
        """Close the HTTP client if this engine built it."""
        if self._owns_client:
            self._client.close()
