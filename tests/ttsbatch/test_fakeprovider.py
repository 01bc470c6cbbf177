"""The imitation provider: deterministic audio, seeded faults, limits and its request log."""

from __future__ import annotations

import concurrent.futures
import email.utils
import itertools
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from ttsbatch.audio.words import word_spans
from ttsbatch.dev.fakeprovider import (
    FakeProviderConfig,
    Fault,
    RunningProvider,
    Shape,
    expected_audio,
    parse_options,
    run_in_thread,
)
from ttsbatch.dev.fakeprovider.config import option_names
from ttsbatch.dev.fakeprovider.faults import choose_fault, retry_hint
from ttsbatch.dev.fakeprovider.framing import pieces, sse_event
from ttsbatch.dev.fakeprovider.streams import together_sse

ORPHEUS = "canopylabs/orpheus-3b-0.1-ft"


def test_expected_audio_is_deterministic_and_times_every_word() -> None:
    text = "Don't stop — co-op at 3.5, please."
    pcm, words = expected_audio(text)
    assert expected_audio(text) == (pcm, words)
    assert [w for w, _, _ in words] == [text[a:b] for a, b in word_spans(text)]
    for (word, start, end), (_, next_start, _) in itertools.pairwise(words):
        assert end - start == 1200 * len(word)
        assert next_start - end == 2400  # 100 ms of silence between words
    assert len(pcm) == 2 * (words[-1][2] + 2400)


def test_different_words_sound_different_and_the_rate_scales_the_length() -> None:
    pcm_a, _ = expected_audio("alpha")
    pcm_b, _ = expected_audio("gamma")
    assert pcm_a != pcm_b
    assert len(pcm_a) == len(pcm_b)
    assert len(expected_audio("alpha", 48_000)[0]) == 2 * len(pcm_a)


def test_text_without_words_has_no_audio() -> None:
    assert expected_audio("... !") == (b"", [])


def test_the_fault_of_an_attempt_depends_only_on_seed_text_and_attempt() -> None:
    config = FakeProviderConfig(fault_rate=0.3, seed=7)
    schedule = [choose_fault(config, f"text{i}", n) for i in range(200) for n in (1, 2)]
    assert schedule == [choose_fault(config, f"text{i}", n) for i in range(200) for n in (1, 2)]
    faulted = sum(fault is not None for fault in schedule)
    assert 80 <= faulted <= 160  # about 30% of 400
    assert {f for f in schedule if f} <= set(config.faults)
    other_seed = FakeProviderConfig(fault_rate=0.3, seed=8)
    assert schedule != [choose_fault(other_seed, f"text{i}", n) for i in range(200) for n in (1, 2)]


def test_a_forced_fault_wins_and_no_rate_means_no_fault() -> None:
    assert choose_fault(FakeProviderConfig(fault=Fault.STALL), "x", 1) is Fault.STALL
    assert choose_fault(FakeProviderConfig(), "x", 1) is None


def test_each_retry_hint_means_the_delay_it_reports() -> None:
    now = 1_800_000_000.25
    assert retry_hint(Fault.RATE_LIMIT_MS, 0.2, now) == ({"retry-after-ms": "200"}, 0.2)
    assert retry_hint(Fault.RATE_LIMIT_SECONDS, 0.2, now) == ({"retry-after": "1"}, 1.0)
    headers, delay = retry_hint(Fault.RATE_LIMIT_DATE, 0.2, now)
    when = email.utils.parsedate_to_datetime(headers["retry-after"]).timestamp()
    assert delay == when - now
    assert delay >= 0.2
    headers, delay = retry_hint(Fault.RATE_LIMIT_RESET, 0.2, now)
    assert headers["x-ratelimit-reset"] == "0.2"
    assert delay == 0.2
    assert retry_hint(Fault.RATE_LIMIT_BARE, 0.2, now) == ({}, None)


def test_options_parse_from_strings_and_every_option_has_a_parser() -> None:
    config = parse_options(
        FakeProviderConfig(),
        {"shape": "b64", "fault-rate": "0.5", "faults": "503,abort", "max_concurrency": "3"},
    )
    assert config.shape is Shape.B64
    assert config.fault_rate == 0.5
    assert config.faults == (Fault.UNAVAILABLE, Fault.ABORT)
    assert config.max_concurrency == 3
    for name in option_names():
        value = str(getattr(FakeProviderConfig(), name))
        if name in {"faults", "fault"}:
            value = "retryable" if name == "faults" else "none"
        parse_options(FakeProviderConfig(), {name: value})
    with pytest.raises(ValueError, match="unknown option"):
        parse_options(FakeProviderConfig(), {"colour": "red"})
    with pytest.raises(ValueError, match="'split'"):
        parse_options(FakeProviderConfig(), {"split": "lots"})


def test_sse_events_carry_every_framing_variant() -> None:
    config = FakeProviderConfig(keepalive=True, multiline=True, data_space=False, extra_fields=True)
    event = sse_event('{"a":1,"b":2}', parse_options(config, {"newline": "crlf"}), kind="x")
    assert (
        event
        == b': keep-alive\r\nretry: 3000\r\nevent: x\r\nid: 0\r\ndata:{"a":1,\r\ndata:"b":2}\r\n\r\n'
    )
    assert list(pieces(b"data: x\r\n\r\n", 3)) == [b"dat", b"a: ", b"x\r\n", b"\r", b"\n"]


def _together_events(**options: str) -> list[tuple[str, str | None]]:
    """Return (``audio`` or ``words``, item_id) of each event of a streamed Together answer."""
    config = parse_options(FakeProviderConfig(delta_bytes=10**6), options)
    events = []
    for write in together_sse("One two. Three!", config, rate=24_000, model=ORPHEUS):
        data = write.data.decode().removeprefix("data: ").strip()
        payload = {} if data == "[DONE]" else json.loads(data)
        if payload and payload.get("type") != "done":
            words = payload.get("type") == "conversation.item.word_timestamps"
            events.append(("words" if words else "audio", payload.get("item_id")))
    return events


@pytest.mark.parametrize("shape", ["delta", "b64", "audio"])
def test_item_ids_go_on_audio_and_word_events_as_configured(shape: str) -> None:
    for audio_ids, word_ids in itertools.product(["none", "1", "0"], repeat=2):
        events = _together_events(shape=shape, audio_item_ids=audio_ids, word_item_ids=word_ids)
        on_audio = shape == "delta" if audio_ids == "none" else audio_ids == "1"
        on_words = on_audio if word_ids == "none" else word_ids == "1"
        items = ["tts_1", "tts_2"]
        assert [i for kind, i in events if kind == "audio"] == (items if on_audio else [None] * 2)
        assert [i for kind, i in events if kind == "words"] == (items if on_words else [None] * 2)


@pytest.mark.parametrize(
    ("mode", "order", "kinds"),
    [
        ("absolute", "after", ["audio", "words", "audio", "words"]),
        ("relative", "before", ["words", "audio", "words", "audio"]),
        ("once", "after", ["audio", "audio", "words"]),
        ("once", "before", ["words", "audio", "audio"]),
    ],
)
def test_timestamps_come_after_or_before_the_audio_they_time(
    mode: str, order: str, kinds: list[str]
) -> None:
    events = _together_events(timestamps=mode, timestamps_order=order, word_item_ids="1")
    assert [kind for kind, _ in events] == kinds
    assert events[kinds.index("words")][1] == (None if mode == "once" else "tts_1")


@pytest.fixture(scope="module")
def provider() -> Iterator[RunningProvider]:
    with run_in_thread(
        FakeProviderConfig(max_concurrency=2, ttfb=0.3, retry_delay=0.05)
    ) as running:
        yield running


def _speech(
    client: httpx.Client, provider: RunningProvider, text: str, **headers: str
) -> httpx.Response:
    body = {"model": ORPHEUS, "input": text, "voice": "tara", "response_format": "raw"}
    return client.post(f"{provider.api_url}/audio/speech", json=body, headers=headers)


@pytest.mark.integration
def test_requests_beyond_the_concurrency_limit_get_429_and_the_log_shows_the_maximum(
    provider: RunningProvider,
) -> None:
    provider.state.reset()
    with httpx.Client(timeout=10) as client, concurrent.futures.ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda i: _speech(client, provider, f"Request {i}."), range(5)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) >= 1
    assert 429 in statuses
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.headers["retry-after-ms"] == "50"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    stats = httpx.get(f"{provider.base_url}/_stats").json()
    assert stats == provider.state.stats()
    assert stats["max_in_flight"] >= 3
    log = httpx.get(f"{provider.base_url}/_log").json()
    assert len(log) == 5
    rejected = [entry for entry in log if entry["status"] == 429]
    assert all(e["fault"] == "over-concurrency" and e["retry_after"] == 0.05 for e in rejected)
    assert all(e["finished"] >= e["received"] for e in log)


@pytest.mark.integration
def test_the_log_counts_attempts_per_text_and_records_forced_faults(
    provider: RunningProvider,
) -> None:
    provider.state.reset()
    with httpx.Client(timeout=10) as client:
        first = _speech(
            client,
            provider,
            "Same text.",
            **{"x-fake-fault": "429-retry-after-ms", "x-fake-ttfb": "0"},
        )
        second = _speech(client, provider, "Same text.", **{"x-fake-ttfb": "0"})
    assert (first.status_code, second.status_code) == (429, 200)
    log = provider.state.log()
    assert [(e["attempt"], e["fault"], e["status"], e["retry_after"]) for e in log] == [
        (1, "429-retry-after-ms", 429, 0.05),
        (2, None, 200, None),
    ]
    assert log[0]["text_sha256"] == log[1]["text_sha256"]
    assert second.content == expected_audio("Same text.")[0]


@pytest.mark.integration
def test_kokoro_errors_use_fastapis_detail_shape(provider: RunningProvider) -> None:
    body = {"model": "kokoro", "input": "Hi.", "voice": "af_nobody"}
    answer = httpx.post(f"{provider.base_url}/dev/captioned_speech", json=body)
    assert answer.status_code == 400
    assert (
        answer.json()["detail"]["message"]
        == "Voice 'af_nobody' is not available for model 'kokoro'"
    )


@pytest.mark.integration
def test_voices_are_listed_per_model_and_mixes_of_known_voices_are_accepted(
    provider: RunningProvider,
) -> None:
    listing = httpx.get(f"{provider.api_url}/voices").json()
    models = {entry["model"]: [v["name"] for v in entry["voices"]] for entry in listing["data"]}
    assert "tara" in models[ORPHEUS]
    body = {
        "model": "hexgrad/Kokoro-82M",
        "input": "Hi.",
        "voice": "af_bella(2)+af_heart(1)",
        "response_format": "raw",
    }
    assert (
        httpx.post(
            f"{provider.api_url}/audio/speech", json=body, headers={"x-fake-ttfb": "0"}
        ).status_code
        == 200
    )


@pytest.mark.integration
def test_a_bad_override_header_is_a_400_naming_it(provider: RunningProvider) -> None:
    with httpx.Client(timeout=10) as client:
        answer = _speech(client, provider, "Hi.", **{"x-fake-shape": "square"})
    assert answer.status_code == 400
    assert "shape" in answer.json()["error"]["message"]


@pytest.mark.integration
def test_a_provider_with_a_key_refuses_requests_without_it() -> None:
    with run_in_thread(FakeProviderConfig(api_key="right")) as running, httpx.Client() as client:
        body = {"model": ORPHEUS, "input": "Hi.", "voice": "tara", "response_format": "raw"}
        url = f"{running.api_url}/audio/speech"
        assert (
            client.post(url, json=body, headers={"authorization": "Bearer wrong"}).status_code
            == 401
        )
        assert (
            client.post(url, json=body, headers={"authorization": "Bearer right"}).status_code
            == 200
        )


@pytest.mark.integration
def test_requests_whose_text_matches_hold_wait_for_a_release() -> None:
    config = FakeProviderConfig(hold=r"\blast\b", hold_timeout=30)
    with (
        run_in_thread(config) as running,
        httpx.Client(timeout=30) as client,
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        url = f"{running.api_url}/audio/speech"

        def speak(text: str) -> int:
            body = {"model": ORPHEUS, "input": text, "voice": "tara", "response_format": "raw"}
            return client.post(url, json=body).status_code

        held = pool.submit(speak, "The last words.")
        assert speak("The first words.") == 200  # not held
        deadline = time.monotonic() + 10
        while running.state.held() < 1:
            assert time.monotonic() < deadline, "the matching request was not held"
            time.sleep(0.01)
        assert not held.done()
        assert client.post(f"{running.base_url}/_release").status_code == 204
        assert held.result(timeout=10) == 200
        assert running.state.held() == 0
        assert sorted(e["held"] for e in running.state.log()) == [False, True]
