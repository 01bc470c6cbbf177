"""The Together engine against the imitation provider, over real HTTP."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.worker.speech import FAULTS, TEXT, expected_words
from ttsbatch.dev.fakeprovider import Fault, RunningProvider, expected_audio
from ttsbatch.errors import (
    AuthenticationError,
    ConfigError,
    EngineError,
    PermanentEngineError,
    RetryableEngineError,
)
from ttsbatch.models import TimingSource
from ttsbatch.settings import TogetherSettings
from worker.engines import Synthesis
from worker.engines.together import TogetherEngine

pytestmark = pytest.mark.integration

ORPHEUS = "canopylabs/orpheus-3b-0.1-ft"
KEY = "tgp-secret-key-1234567890"


@contextmanager
def engine_for(
    provider: RunningProvider,
    headers: dict[str, str] | None = None,
    *,
    model: str = ORPHEUS,
    voice: str = "tara",
    timeout: float = 5.0,
    base_url: str | None = None,
    stream: bool | None = None,
) -> Iterator[TogetherEngine]:
    settings = TogetherSettings(api_key=KEY, base_url=base_url or provider.base_url)
    with httpx.Client(headers=headers or {}) as client:
        engine = TogetherEngine(
            settings, model=model, voice=voice, client=client, timeout=timeout, stream=stream
        )
        yield engine
        engine.close()


def speak(
    provider: RunningProvider, headers: dict[str, str], text: str = TEXT, **kwargs: Any
) -> Synthesis:
    with engine_for(provider, headers, **kwargs) as engine:
        return engine.synthesize(text)


@pytest.mark.parametrize("split", ["0", "700"], ids=["whole-events", "split-reads"])
@pytest.mark.parametrize("newline", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("mode", ["once", "absolute", "relative"])
@pytest.mark.parametrize("shape", ["delta", "b64", "audio"])
def test_every_shape_mode_and_framing_decodes_to_the_exact_audio_and_word_times(
    provider: RunningProvider, shape: str, mode: str, newline: str, split: str
) -> None:
    headers = {
        "x-fake-shape": shape,
        "x-fake-timestamps": mode,
        "x-fake-newline": newline,
        "x-fake-split": split,
        # Nested arrays and odd deltas ride along on half of the cases.
        "x-fake-timestamps-key": "nested" if newline == "crlf" else "top",
        "x-fake-odd-deltas": "1" if split != "0" else "0",
    }
    result = speak(provider, headers)
    pcm, _ = expected_audio(TEXT)
    assert result.sample_rate == 24_000
    assert result.pcm == pcm
    assert result.timing is TimingSource.PROVIDER
    assert result.words == expected_words(TEXT)


MATRIX_TEXT = "One two. Three! Four five?"  # three segments, about 1.5 s of audio

# Every stream variant, as the provider's options: audio shape x item_id on
# audio events x item_id on per-segment word events x timestamps (once for the
# input, or per segment absolute or relative: a once event's segment is the
# whole response, so it has no relative variant) x words after or before their
# audio x arrays at the top or nested.
AXES = {
    "shape": ("delta", "b64", "audio"),
    "audio-item-ids": ("1", "0"),
    "word-item-ids": ("1", "0"),
    "timestamps": ("once", "absolute", "relative"),
    "timestamps-order": ("after", "before"),
    "timestamps-key": ("top", "nested"),
}
MATRIX = [
    variant
    for variant in (
        dict(zip(AXES, cell, strict=True)) for cell in itertools.product(*AXES.values())
    )
    # The once event never names an item: its word-id variants are one stream.
    if variant["timestamps"] != "once" or variant["word-item-ids"] == "1"
]


@pytest.mark.parametrize("variant", MATRIX, ids=["-".join(v.values()) for v in MATRIX])
def test_every_stream_variant_gives_the_providers_audio_and_word_times_to_the_sample(
    provider: RunningProvider, variant: dict[str, str]
) -> None:
    headers = {f"x-fake-{option}": value for option, value in variant.items()}
    result = speak(provider, headers, MATRIX_TEXT)
    assert result.pcm == expected_audio(MATRIX_TEXT)[0]
    assert result.timing is TimingSource.PROVIDER
    assert result.words == expected_words(MATRIX_TEXT)


@pytest.mark.parametrize(
    "framing",
    [
        {"x-fake-keepalive": "1"},
        {"x-fake-multiline": "1"},
        {"x-fake-data-space": "0"},
        {"x-fake-extra-fields": "1"},
        {"x-fake-odd-deltas": "1", "x-fake-delta-bytes": "333"},
        {"x-fake-done-token": "[done]"},
        {
            "x-fake-keepalive": "1",
            "x-fake-multiline": "1",
            "x-fake-data-space": "0",
            "x-fake-extra-fields": "1",
            "x-fake-odd-deltas": "1",
            "x-fake-newline": "cr",
            "x-fake-split": "301",
            "x-fake-timestamps": "relative",
            "x-fake-timestamps-key": "nested",
        },
    ],
    ids=[
        "keepalive",
        "multiline",
        "no-space",
        "event-id-retry",
        "odd-deltas",
        "done-lowercase",
        "all",
    ],
)
def test_sse_framing_variants_decode_to_the_exact_audio(
    provider: RunningProvider, framing: dict[str, str]
) -> None:
    result = speak(provider, framing)
    assert result.pcm == expected_audio(TEXT)[0]
    assert result.words == expected_words(TEXT)


def test_a_plain_audio_body_on_a_streaming_request_is_raw_pcm_without_word_times(
    provider: RunningProvider,
) -> None:
    result = speak(provider, {"x-fake-shape": "raw", "x-fake-split": "501"})
    assert result.pcm == expected_audio(TEXT)[0]
    assert result.timing is TimingSource.NONE
    assert result.words == ()


def test_a_stream_without_timestamps_says_it_has_no_word_times(provider: RunningProvider) -> None:
    result = speak(provider, {"x-fake-timestamps": "none"})
    assert result.pcm == expected_audio(TEXT)[0]
    assert result.timing is TimingSource.NONE
    assert result.words == ()


def test_non_streaming_mode_reads_the_wav_header(provider: RunningProvider) -> None:
    result = speak(provider, {}, stream=False)
    assert result.pcm == expected_audio(TEXT)[0]
    assert result.sample_rate == 24_000
    assert result.timing is TimingSource.NONE


def test_a_cartesia_model_gets_the_sample_rate_it_was_asked_for(provider: RunningProvider) -> None:
    result = speak(provider, {}, model="cartesia/sonic-2", voice="any")
    assert result.sample_rate == 44_100
    assert result.pcm == expected_audio(TEXT, 44_100)[0]
    assert result.words == expected_words(TEXT, 44_100)


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_the_base_url_works_with_or_without_v1(provider: RunningProvider, suffix: str) -> None:
    result = speak(provider, {}, base_url=provider.base_url + suffix)
    assert result.pcm == expected_audio(TEXT)[0]


def test_the_fault_table_covers_every_fault() -> None:
    assert set(FAULTS) == set(Fault)


@pytest.mark.parametrize("shape", ["delta", "b64", "audio", "raw"])
@pytest.mark.parametrize("fault", list(Fault), ids=str)
def test_every_fault_is_classified_with_the_servers_suggested_delay(
    provider: RunningProvider, fault: Fault, shape: str
) -> None:
    expected, delay = FAULTS[fault]
    headers = {"x-fake-fault": fault.value, "x-fake-shape": shape, "x-fake-stall": "2"}
    with pytest.raises(EngineError) as caught:
        speak(provider, headers, timeout=0.3)
    assert type(caught.value) is expected
    retry_after = getattr(caught.value, "retry_after", None)
    if delay == "log":
        suggested = provider.state.log()[-1]["retry_after"]
        assert retry_after == pytest.approx(suggested, abs=0.5)
    else:
        assert retry_after == delay


def test_a_rejected_key_names_the_variable_to_fix(provider: RunningProvider) -> None:
    with pytest.raises(AuthenticationError, match="TOGETHER_API_KEY"):
        speak(provider, {"x-fake-fault": "401"})


@pytest.mark.parametrize("headers", [{}, {"x-fake-fault": "unknown-voice"}])
def test_an_unknown_voice_fails_permanently_naming_the_voice(
    provider: RunningProvider, headers: dict[str, str]
) -> None:
    voice = "nobody" if not headers else "tara"
    with pytest.raises(PermanentEngineError, match=f"'{voice}'") as caught:
        speak(provider, headers, voice=voice)
    assert caught.value.status_code == 400


def test_a_mid_stream_failure_of_each_shape_says_what_the_server_said(
    provider: RunningProvider,
) -> None:
    for shape in ("delta", "b64", "audio"):
        with pytest.raises(RetryableEngineError, match="synthesis failed on the server"):
            speak(provider, {"x-fake-fault": "error-event", "x-fake-shape": shape})


def test_a_truncated_stream_is_retryable_and_says_so(provider: RunningProvider) -> None:
    with pytest.raises(RetryableEngineError, match="truncated"):
        speak(provider, {"x-fake-fault": "truncate"})


def test_a_missing_key_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="TOGETHER_API_KEY"):
        TogetherEngine(TogetherSettings(api_key=None), model=ORPHEUS, voice="tara")


def test_should_stop_abandons_the_request_as_retryable(provider: RunningProvider) -> None:
    with (
        engine_for(provider) as engine,
        pytest.raises(RetryableEngineError, match="asked to stop"),
    ):
        engine.synthesize(TEXT, should_stop=lambda: True)


def test_the_api_key_never_appears_in_logs_or_errors(
    provider: RunningProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with engine_for(provider) as engine:
        engine.synthesize(TEXT)
        assert KEY not in repr(engine)
    for fault in ("401", "503", "abort"):
        with pytest.raises(EngineError) as caught:
            speak(provider, {"x-fake-fault": fault})
        assert KEY not in str(caught.value)
        assert KEY not in repr(caught.value.__cause__)
    assert caplog.records, "expected debug logs from the engine and httpx"
    assert KEY not in caplog.text


def test_the_request_asks_for_word_aligned_raw_s16le_stream() -> None:
    engine = TogetherEngine(
        TogetherSettings(api_key=KEY), model=ORPHEUS, voice="tara", language="en"
    )
    body = engine.request_body("Hi.")
    engine.close()
    assert body == {
        "model": ORPHEUS,
        "input": "Hi.",
        "voice": "tara",
        "stream": True,
        "response_format": "raw",
        "response_encoding": "pcm_s16le",
        "alignment": "word",
        "language": "en",
    }
