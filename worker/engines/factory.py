"""Build an engine from a job's :class:`EngineSpec` and the worker's settings.

A job chooses engine, model and voice; endpoints and keys come from the
worker's settings. Engines import lazily, so a worker loads only what it runs.
"""

from __future__ import annotations

from ttsbatch.errors import ConfigError
from ttsbatch.models import EngineName, EngineSpec
from ttsbatch.settings import Settings
from worker.engines import Engine

# Characters per request, by engine: sentence-aligned and a few hundred long
# (tts-protocol.md: Orpheus tends to stop after ~60 s of audio; OpenAI caps 4096).
DEFAULT_MAX_CHARS = {EngineName.ESPEAK: 400, EngineName.TOGETHER: 400, EngineName.OPENAI: 400}


def default_max_chars(engine: str) -> int:
    """Return the engine's default chunk size in characters."""
    return DEFAULT_MAX_CHARS[_check(engine)]


def _check(engine: str) -> EngineName:
    try:
        return EngineName(engine)
    except ValueError:
        raise ConfigError(
            f"unknown engine {engine!r}: choose one of {', '.join(EngineName)}"
        ) from None


def create_engine(spec: EngineSpec, settings: Settings) -> Engine:
    """Return a ready engine for ``spec``.

    Raises:
        ConfigError: for an unknown engine, voice, or a missing setting.
    """
    if spec.engine is EngineName.ESPEAK:
        from worker.engines.espeak import EspeakEngine  # noqa: PLC0415 - lazy: native library

        return EspeakEngine(spec.voice or "en-us")
    if spec.engine is EngineName.TOGETHER:
        from worker.engines.together import TogetherEngine  # noqa: PLC0415 - lazy: httpx client

        return TogetherEngine(
            settings.together,
            model=spec.model or "canopylabs/orpheus-3b-0.1-ft",
            voice=spec.voice or "tara",
            language=spec.language,
            timeout=settings.provider.timeout,
            stream=settings.together.stream,
        )
    from worker.engines.openai import OpenAIEngine  # noqa: PLC0415 - lazy: httpx client

    return OpenAIEngine(
        settings.openai,
        model=spec.model or "gpt-4o-mini-tts",
        voice=spec.voice or "alloy",
        timeout=settings.provider.timeout,
        stream_format=settings.openai.stream_format,
        captioned=settings.openai.captioned,
        estimate_timings=settings.openai.estimate_timings,
    )
