"""The embedded espeak-ng engine: real library calls (offline, fast)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttsbatch.audio.words import word_spans
from ttsbatch.errors import ConfigError, PermanentEngineError, RetryableEngineError
from ttsbatch.models import TimingSource, WordTiming
from worker.engines import espeak, libespeak
from worker.engines.espeak import EspeakEngine, list_voices
from worker.engines.espeak_timing import WordEvent, word_timings

ROOT = Path(__file__).resolve().parents[2]
MIXED = (
    "“Café” naïve résumé — déjà vu, 😀 Zoë’s co-op at 3.5% on 10/12/2024, e.g. U.S.A. "
    "Mr. O’Brien’s $1,000.50 and 1234567 dog-eat-dog ... (parens) don't!"
)


@pytest.fixture
def engine() -> Iterator[EspeakEngine]:
    with EspeakEngine() as created:
        yield created


def _assert_timed(text: str, words: tuple[WordTiming, ...], samples: int) -> None:
    assert [(w.char_start, w.char_end) for w in words] == word_spans(text)
    previous_end = 0
    for word in words:
        assert word.text == text[word.char_start : word.char_end]
        assert previous_end <= word.start <= word.end <= samples
        previous_end = word.end


def test_speech_is_22050_hz_pcm_of_a_plausible_length_for_its_text(
    engine: EspeakEngine,
) -> None:
    result = engine.synthesize("The quick brown fox jumps over the lazy dog.")
    assert result.sample_rate == 22050
    assert result.timing is TimingSource.PROVIDER
    assert len(result.pcm) % 2 == 0
    assert 1.5 < result.samples / result.sample_rate < 5.0  # nine words at 175 wpm
    assert any(result.pcm[i] for i in range(0, len(result.pcm), 101))  # not silence


def test_every_word_is_timed_in_order_inside_the_audio(engine: EspeakEngine) -> None:
    result = engine.synthesize(MIXED)
    _assert_timed(MIXED, result.words, result.samples)
    assert result.words[-1].end > result.samples * 0.9


def test_a_word_does_not_hold_the_pause_after_it(engine: EspeakEngine) -> None:
    result = engine.synthesize("Stop. Go on, then.")
    stop, go = result.words[0], result.words[1]
    assert stop.end < go.start  # the sentence pause between them belongs to neither


def test_positions_count_code_points_so_non_ascii_text_maps_exactly(
    engine: EspeakEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[WordEvent]] = []

    def spy(text: str, events: list[WordEvent], pcm: bytes) -> tuple[WordTiming, ...]:
        seen.append(list(events))
        return word_timings(text, events, pcm)

    monkeypatch.setattr(espeak, "word_timings", spy)
    text = "“Café” naïve résumé – Zoë’s 𝔘nicode 😀 smile."
    result = engine.synthesize(text)
    starts = {start for start, _ in word_spans(text)}
    assert starts <= {event.char for event in seen[0]}
    assert [w.text for w in result.words] == [
        "Café",
        "naïve",
        "résumé",
        "Zoë’s",
        "𝔘nicode",
        "smile",
    ]
    assert len({w.start for w in result.words}) == len(result.words)


def test_an_unknown_voice_is_a_config_error_that_names_it_and_how_to_list_voices() -> None:
    with pytest.raises(ConfigError, match=r"'xx-nope'.*list_voices"):
        EspeakEngine("xx-nope")


def test_voices_are_listed_as_language_tags_the_engine_accepts() -> None:
    voices = list_voices()
    assert {"en-us", "en-gb", "fr-fr", "de"} <= set(voices)
    assert "fo" not in voices  # its dictionary is missing from the wheel
    for voice in ("en-gb", "EN-GB+f3", "fr-fr", "English (America)", "gmw/en-US"):
        with EspeakEngine(voice) as engine:
            assert engine.synthesize("Bonjour, hello.").samples > 10_000


def test_a_voice_whose_dictionary_is_missing_is_refused_rather_than_silent() -> None:
    with pytest.raises(ConfigError, match="fo_dict"):
        EspeakEngine("fo")


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_a_permanent_error(engine: EspeakEngine, text: str) -> None:
    with pytest.raises(PermanentEngineError, match="nothing to say"):
        engine.synthesize(text)


def test_text_without_words_gives_audio_and_no_timings(engine: EspeakEngine) -> None:
    result = engine.synthesize("... —")
    assert result.words == ()


def test_a_faster_rate_gives_shorter_audio_and_an_impossible_rate_is_refused() -> None:
    text = "A little while ago, it was raining over the hills."
    with EspeakEngine(rate_wpm=120) as slow:
        slow_samples = slow.synthesize(text).samples
    with EspeakEngine(rate_wpm=300) as fast:
        fast_samples = fast.synthesize(text).samples
    assert fast_samples < slow_samples * 0.7
    with pytest.raises(ConfigError, match="80-450"):
        EspeakEngine(rate_wpm=1000)


def test_a_second_live_engine_in_the_same_process_is_refused(engine: EspeakEngine) -> None:
    with pytest.raises(ConfigError, match="one live engine per process"):
        EspeakEngine()
    engine.close()
    EspeakEngine().close()  # the slot is free again


def test_a_closed_engine_refuses_to_speak(engine: EspeakEngine) -> None:
    engine.close()
    with pytest.raises(ConfigError, match="closed"):
        engine.synthesize("Hello.")


def test_an_engine_refuses_calls_from_another_thread(engine: EspeakEngine) -> None:
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(engine.synthesize, "Hello.")
        with pytest.raises(ConfigError, match="thread"):
            future.result()
    assert engine.synthesize("Hello.").samples > 0


def test_should_stop_abandons_the_request_as_retryable(
    engine: EspeakEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(libespeak, "_STOP_CHECK_SECONDS", 0.0)
    calls: list[int] = []

    def stop_after_first_buffer() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(RetryableEngineError, match="stopped"):
        engine.synthesize(
            "One two three four five six seven. " * 5, should_stop=stop_after_first_buffer
        )
    assert len(calls) == 2
    assert engine.synthesize("Still usable.").samples > 0


def test_an_exception_in_should_stop_reaches_the_caller(engine: EspeakEngine) -> None:
    def broken() -> bool:
        raise KeyError("redis gone")

    with pytest.raises(KeyError, match="redis gone"):
        engine.synthesize("Hello.", should_stop=broken)


_FRESH_PROCESS = """
import hashlib, json
from worker.engines.espeak import EspeakEngine
engine = EspeakEngine()
engine.synthesize({warmup!r})
result = engine.synthesize({text!r})
print(json.dumps([hashlib.sha256(result.pcm).hexdigest(), [w.model_dump() for w in result.words]]))
"""


def _fingerprint(pcm: bytes, words: tuple[WordTiming, ...]) -> list[object]:
    return [hashlib.sha256(pcm).hexdigest(), [w.model_dump() for w in words]]


def test_the_same_text_gives_identical_bytes_in_fresh_processes_whatever_ran_before(
    engine: EspeakEngine,
) -> None:
    outputs = []
    for warmup in ("Something else entirely, first.", "Another warm-up: 1, 2, 3."):
        code = _FRESH_PROCESS.format(warmup=warmup, text=MIXED)
        run = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        outputs.append(json.loads(run.stdout))
    engine.synthesize("And this process has spoken before.")
    here = engine.synthesize(MIXED)
    assert outputs[0] == outputs[1] == _fingerprint(here.pcm, here.words)


# word_timings, the pure mapping, on made-up events.

LOUD = b"\x01\x00"  # one non-zero sample


def test_a_merged_event_is_shared_by_its_words_in_proportion_to_their_length() -> None:
    words = word_timings("ab abcd", [WordEvent(0, 0)], LOUD * 600)
    assert [(w.text, w.start, w.end) for w in words] == [("ab", 0, 200), ("abcd", 200, 600)]


def test_a_group_with_one_event_per_word_gives_each_word_its_own() -> None:
    # espeak points both words of "déjà vu" inside "déjà".
    words = word_timings("déjà vu", [WordEvent(0, 0), WordEvent(1, 400)], LOUD * 600)
    assert [(w.text, w.start, w.end) for w in words] == [("déjà", 0, 400), ("vu", 400, 600)]


def test_a_symbol_event_joins_the_word_it_touches_else_the_next() -> None:
    text = "50% of $5"
    events = [WordEvent(0, 0), WordEvent(2, 100), WordEvent(4, 200), WordEvent(7, 300)]
    words = word_timings(text, [*events, WordEvent(8, 350)], LOUD * 400)
    assert [(w.text, w.start, w.end) for w in words] == [
        ("50", 0, 200),
        ("of", 200, 300),
        ("5", 300, 400),
    ]


def test_trailing_silence_is_trimmed_from_a_word() -> None:
    pcm = LOUD * 100 + b"\0\0" * 200 + LOUD * 100
    words = word_timings("hi there", [WordEvent(0, 0), WordEvent(3, 300)], pcm)
    assert [(w.start, w.end) for w in words] == [(0, 100), (300, 400)]


def test_words_without_any_event_share_the_whole_audio() -> None:
    words = word_timings("one two", [], LOUD * 600)
    assert [(w.start, w.end) for w in words] == [(0, 300), (300, 600)]


@given(
    text=st.text(alphabet="ab é.-'’ 3😀,", max_size=40),
    events=st.lists(st.tuples(st.integers(-1, 45), st.integers(-5, 700)), max_size=12),
    samples=st.lists(st.sampled_from([0, 1, -3]), max_size=600),
)
def test_any_events_give_every_word_an_ordered_timing_inside_the_audio(
    text: str, events: list[tuple[int, int]], samples: list[int]
) -> None:
    pcm = b"".join(s.to_bytes(2, "little", signed=True) for s in samples)
    words = word_timings(text, [WordEvent(c, s) for c, s in events], pcm)
    _assert_timed(text, words, len(samples))
