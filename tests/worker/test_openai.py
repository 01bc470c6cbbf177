"""The OpenAI-compatible engine (raw PCM, SSE, Kokoro captioned) against the imitation provider."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.worker.speech import FAULTS, TEXT, expected_words
from ttsbatch.audio.words import word_spans
from ttsbatch.dev.fakeprovider import Fault, RunningProvider, expected_audio
from ttsbatch.errors import (
    AuthenticationError,
    ConfigError,
    EngineError,
    PermanentEngineError,
    QuotaExceededError,
    RateLimitedError,
    RetryableEngineError,
)
from ttsbatch.models import TimingSource
from ttsbatch.settings import OpenAISettings
from worker.engines import Synthesis
from worker.engines.openai import OpenAIEngine

pytestmark = pytest.mark.integration

MODES: dict[str, dict[str, Any]] = {
    "audio": {},
    "sse": {"stream_format": "sse"},
    "captioned": {"captioned": True, "model": "kokoro", "voice": "af_heart"},
}


@contextmanager
def engine_for(
    provider: RunningProvider, headers: dict[str, str] | None = None, **kwargs: Any
) -> Iterator[OpenAIEngine]:
    options: dict[str, Any] = {"model": "tts-1", "voice": "alloy", "timeout": 5.0} | kwargs
    settings = OpenAISettings(api_key="sk-test", base_url=provider.api_url)
    with httpx.Client(headers=headers or {}) as client:
        engine = OpenAIEngine(settings, client=client, **options)
        yield engine
        engine.close()


def speak(provider: RunningProvider, headers: dict[str, str], **kwargs: Any) -> Synthesis:
    with engine_for(provider, headers, **kwargs) as engine:
        return engine.synthesize(TEXT)


@pytest.mark.parametrize("split", ["0", "555"], ids=["whole", "split-reads"])
@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_decodes_the_exact_audio(
    provider: RunningProvider, mode: str, split: str
) -> None:
    result = speak(provider, {"x-fake-split": split, "x-fake-odd-deltas": "1"}, **MODES[mode])
    assert result.sample_rate == 24_000
    assert result.pcm == expected_audio(TEXT)[0]


@pytest.mark.parametrize("newline", ["lf", "crlf", "cr"])
def test_sse_events_decode_with_every_line_ending(provider: RunningProvider, newline: str) -> None:
    result = speak(
        provider, {"x-fake-newline": newline, "x-fake-split": "301"}, stream_format="sse"
    )
    assert result.pcm == expected_audio(TEXT)[0]


def test_without_provider_word_times_the_synthesis_says_so_and_invents_none(
    provider: RunningProvider,
) -> None:
    for mode in ("audio", "sse"):
        result = speak(provider, {}, **MODES[mode])
        assert result.timing is TimingSource.NONE
        assert result.words == ()


def test_estimated_word_times_are_an_explicit_opt_in_and_marked(provider: RunningProvider) -> None:
    result = speak(provider, {}, estimate_timings=True)
    assert result.timing is TimingSource.ESTIMATED
    assert [(w.char_start, w.char_end) for w in result.words] == word_spans(TEXT)
    assert result.words[-1].end == result.samples


@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_captioned_speech_gives_the_exact_word_times(provider: RunningProvider, mode: str) -> None:
    result = speak(
        provider, {"x-fake-timestamps": mode, "x-fake-split": "400"}, **MODES["captioned"]
    )
    assert result.timing is TimingSource.PROVIDER
    assert result.words == expected_words(TEXT)


def test_captioned_speech_without_timestamps_has_no_word_times(provider: RunningProvider) -> None:
    result = speak(provider, {"x-fake-timestamps": "none"}, **MODES["captioned"])
    assert result.pcm == expected_audio(TEXT)[0]
    assert result.timing is TimingSource.NONE


def test_the_pcm_rate_is_taken_from_the_content_type(provider: RunningProvider) -> None:
    result = speak(provider, {"x-fake-sample-rate": "22050"})
    assert result.sample_rate == 22_050
    assert result.pcm == expected_audio(TEXT, 22_050)[0]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("fault", list(Fault), ids=str)
def test_every_fault_in_every_mode_is_classified(
    provider: RunningProvider, mode: str, fault: Fault
) -> None:
    expected, delay = FAULTS[fault]
    headers = {"x-fake-fault": fault.value, "x-fake-stall": "2"}
    with pytest.raises(EngineError) as caught:
        speak(provider, headers, **(MODES[mode] | {"timeout": 0.3}))
    assert type(caught.value) is expected
    if delay != "log":
        assert getattr(caught.value, "retry_after", None) == delay


def test_insufficient_quota_is_not_retryable_but_a_rate_limit_is(provider: RunningProvider) -> None:
    with pytest.raises(QuotaExceededError, match="quota"):
        speak(provider, {"x-fake-fault": "429-insufficient-quota"})
    with pytest.raises(RateLimitedError) as caught:
        speak(provider, {"x-fake-fault": "429-ratelimit-reset"})
    assert caught.value.retry_after == 0.2


def test_a_rejected_key_names_the_variable_to_fix(provider: RunningProvider) -> None:
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        speak(provider, {"x-fake-fault": "401"})


def test_kokoro_detail_errors_carry_the_servers_message(provider: RunningProvider) -> None:
    with pytest.raises(PermanentEngineError, match="Voice 'af_nobody' is not available"):
        speak(provider, {}, captioned=True, model="kokoro", voice="af_nobody")


def test_a_cut_captioned_stream_is_retryable(provider: RunningProvider) -> None:
    with pytest.raises(RetryableEngineError, match="connection failed"):
        speak(provider, {"x-fake-fault": "truncate"}, **MODES["captioned"])


def test_a_key_is_required_for_openai_itself_but_not_for_self_hosted_servers() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIEngine(OpenAISettings(api_key=None), model="tts-1", voice="alloy")
    engine = OpenAIEngine(
        OpenAISettings(api_key=None, base_url="http://127.0.0.1:8880"),
        model="kokoro",
        voice="af_heart",
        captioned=True,
    )
    assert engine.url == "http://127.0.0.1:8880/dev/captioned_speech"
    engine.close()


def test_the_request_asks_for_pcm_and_the_chosen_stream_format() -> None:
    settings = OpenAISettings(api_key="sk-test")
    engine = OpenAIEngine(
        settings,
        model="gpt-4o-mini-tts",
        voice="coral",
        stream_format="sse",
        speed=1.25,
        instructions="Calm.",
    )
    assert engine.request_body("Hi.") == {
        "model": "gpt-4o-mini-tts",
        "input": "Hi.",
        "voice": "coral",
        "response_format": "pcm",
        "stream_format": "sse",
        "speed": 1.25,
        "instructions": "Calm.",
    }
    assert engine.url == "https://api.openai.com/v1/audio/speech"
    engine.close()
