"""Decoding Together streams in memory: framing across reads, word clocks, audio bodies."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterable

import httpx
import pytest

from ttsbatch.audio.wav import wav_header
from ttsbatch.errors import PermanentEngineError, RetryableEngineError
from worker.engines.audio import PcmCollector, parse_wav, read_audio_body
from worker.engines.http import Provider
from worker.engines.sse import audio_of, decode_stream, is_done
from worker.engines.wordtimes import (
    Stamp,
    WordClock,
    estimated_timings,
    is_relative,
    parse_word_event,
    word_timings,
)

TOGETHER = Provider("Together", "TOGETHER_API_KEY")
PCM = bytes(range(1, 41))  # 20 samples


def _stream(newline: str) -> bytes:
    first = {
        "type": "conversation.item.audio_output.delta",
        "item_id": "a",
        "delta": base64.b64encode(PCM[:7]).decode(),
    }
    second = {"object": "audio.tts.chunk", "b64": base64.b64encode(PCM[7:]).decode()}
    stamps = {
        "type": "conversation.item.word_timestamps",
        "words": ["hi"],
        "start_seconds": [0.0],
        "end_seconds": [0.001],
    }
    lines = [
        ": keep-alive",
        "data: " + json.dumps(first),
        "",
        "event: message",
        "id: 2",
        "data:" + json.dumps(second).replace(', "', ',\ndata: "'),
        "",
        "data: " + json.dumps(stamps),
        "",
        "data: [DONE]",
        "",
    ]
    return newline.join(lines).encode() + newline.encode()


def _response(chunks: Iterable[bytes], content_type: str = "text/event-stream") -> httpx.Response:
    return httpx.Response(200, headers={"content-type": content_type}, content=iter(list(chunks)))


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_httpx_sse_decodes_a_stream_cut_at_every_byte_position(newline: str) -> None:
    data = _stream(newline)
    for cut in range(1, len(data)):
        decoded = decode_stream(_response([data[:cut], data[cut:]]), TOGETHER, sample_rate=1000)
        assert decoded.pcm == PCM, f"cut at {cut}: {data[cut - 3 : cut + 3]!r}"
        assert decoded.stamps == (Stamp("hi", 0, 1),)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_a_stream_read_one_byte_at_a_time_decodes_the_same(newline: str) -> None:
    data = _stream(newline)
    decoded = decode_stream(
        _response(data[i : i + 1] for i in range(len(data))), TOGETHER, sample_rate=1000
    )
    assert decoded.pcm == PCM


def test_a_stream_without_done_is_truncated() -> None:
    data = _stream("\n").replace(b"data: [DONE]\n\n", b"")
    with pytest.raises(RetryableEngineError, match="truncated"):
        decode_stream(_response([data]), TOGETHER, sample_rate=1000)


def test_a_non_json_data_line_is_a_retryable_protocol_error() -> None:
    with pytest.raises(RetryableEngineError, match="malformed"):
        decode_stream(
            _response([b'data: {"delta": "AA\n\ndata: [DONE]\n\n']), TOGETHER, sample_rate=1000
        )


def test_unknown_events_are_ignored() -> None:
    data = b'data: {"type": "conversation.item.created"}\n\ndata: {"type": "done"}\n\n'
    assert decode_stream(_response([data]), TOGETHER, sample_rate=1000).pcm == b""


@pytest.mark.parametrize("marker", ["[DONE]", "[done]", "  [Done] ", "[DONE]\n"])
def test_the_end_marker_is_compared_case_insensitively_and_trimmed(marker: str) -> None:
    assert is_done(marker)
    assert not is_done('{"type": "[DONE]"}')


def test_audio_in_every_documented_shape_is_found() -> None:
    b64 = base64.b64encode(b"\x01\x02").decode()
    for payload in (
        {"type": "conversation.item.audio_output.delta", "delta": b64},
        {"object": "audio.tts.chunk", "b64": b64},
        {"type": "delta", "audio": b64},
        {"type": "speech.audio.delta", "audio": b64},
    ):
        assert audio_of(payload) == b"\x01\x02"
    assert audio_of({"type": "response.text.delta", "delta": "hello"}) is None


def test_odd_length_pieces_are_carried_until_a_sample_is_whole() -> None:
    pcm = PcmCollector()
    pcm.add(b"\x01\x02\x03")
    assert pcm.samples == 1
    pcm.add(b"\x04")
    assert pcm.samples == 2
    assert pcm.pcm() == b"\x01\x02\x03\x04"


def test_a_segment_starting_before_its_items_audio_is_relative_to_it() -> None:
    assert is_relative(0, 48_000, 24_000)
    assert not is_relative(48_000, 48_000, 24_000)
    # Rounding a hair before the item's start is still absolute.
    assert not is_relative(47_900, 48_000, 24_000)


def test_relative_segments_are_placed_on_the_responses_timeline_by_item() -> None:
    clock = WordClock(1000)
    clock.audio("a", 0)
    clock.segment(["one"], [0.0], [0.2], item_id="a", received=300)
    clock.audio("b", 300)
    clock.segment(["two"], [0.0], [0.1], item_id="b", received=500)
    assert clock.stamps == [Stamp("one", 0, 200), Stamp("two", 300, 400)]


def test_absolute_segments_without_items_stay_where_they_are() -> None:
    clock = WordClock(1000)
    clock.segment(["one"], [0.0], [0.2], item_id=None, received=300)
    clock.segment(["two"], [0.3], [0.4], item_id=None, received=500)
    assert clock.stamps == [Stamp("one", 0, 200), Stamp("two", 300, 400)]


def test_relative_segments_without_items_follow_the_previous_segments_audio() -> None:
    clock = WordClock(1000)
    clock.segment(["one"], [0.0], [0.2], item_id=None, received=300)
    clock.segment(["two"], [0.0], [0.1], item_id=None, received=500)
    assert clock.stamps == [Stamp("one", 0, 200), Stamp("two", 300, 400)]


@pytest.mark.parametrize(("second_start", "second_end"), [(0.0, 0.1), (0.3, 0.4)])
def test_items_named_only_by_word_events_start_where_the_previous_words_arrived(
    second_start: float, second_end: float
) -> None:
    # Audio without item_id, words naming their item: the received audio
    # when the words arrive is where their segment ends, not where it starts.
    clock = WordClock(1000)
    clock.audio(None, 0)
    clock.segment(["one"], [0.0], [0.2], item_id="tts_1", received=300)
    clock.audio(None, 300)
    clock.segment(["two"], [second_start], [second_end], item_id="tts_2", received=500)
    assert clock.stamps == [Stamp("one", 0, 200), Stamp("two", 300, 400)]


def test_words_sent_before_their_audio_start_at_the_audio_received_so_far() -> None:
    clock = WordClock(1000)
    clock.segment(["one"], [0.0], [0.2], item_id="tts_1", received=0)
    clock.audio(None, 0)
    clock.segment(["two"], [0.0], [0.1], item_id="tts_2", received=300)
    clock.audio(None, 300)
    assert clock.stamps == [Stamp("one", 0, 200), Stamp("two", 300, 400)]


def test_timestamps_arrays_of_unequal_length_are_rejected() -> None:
    event = {"words": ["a", "b"], "start_seconds": [0.0], "end_seconds": [0.1, 0.2]}
    with pytest.raises(RetryableEngineError, match="2 words, 1 starts"):
        parse_word_event(event)


def test_timestamps_arrays_may_be_nested() -> None:
    event = {"timestamps": {"words": ["a"], "start_seconds": [0], "end_seconds": [1]}}
    assert parse_word_event(event) == (["a"], [0.0], [1.0])


def test_reported_words_map_onto_the_chunk_and_unknown_words_keep_no_time() -> None:
    stamps = [
        Stamp("Pay", 0, 10),
        Stamp("three", 12, 20),
        Stamp("pounds", 22, 30),
        Stamp("now", 32, 99),
    ]
    words = word_timings("Pay 3 pounds now.", stamps, total=40)
    assert [(w.text, w.char_start, w.start, w.end) for w in words] == [
        ("Pay", 0, 0, 10),
        ("pounds", 6, 22, 30),
        ("now", 13, 32, 40),
    ]


def test_estimated_timings_spread_the_audio_by_word_length() -> None:
    words = estimated_timings("ab abcd, ab", 800)
    assert [(w.text, w.start, w.end) for w in words] == [
        ("ab", 0, 200),
        ("abcd", 200, 600),
        ("ab", 600, 800),
    ]
    assert estimated_timings("...", 800) == ()


def test_a_streamed_wav_with_placeholder_sizes_is_read_to_the_end() -> None:
    header = bytearray(wav_header(0, 22_050))
    struct.pack_into("<I", header, 4, 0xFFFFFFFF)
    struct.pack_into("<I", header, 40, 0xFFFFFFFF)
    assert parse_wav(bytes(header) + PCM, TOGETHER) == (PCM, 22_050)


def test_a_stereo_wav_is_refused_permanently() -> None:
    header = bytearray(wav_header(10, 24_000))
    struct.pack_into("<H", header, 22, 2)
    with pytest.raises(PermanentEngineError, match="2 channels"):
        parse_wav(bytes(header) + PCM, TOGETHER)


@pytest.mark.parametrize(
    ("content_type", "rate"),
    [("audio/pcm;rate=22050", 22_050), ("audio/pcm", 24_000), ("application/octet-stream", 24_000)],
)
def test_raw_audio_bodies_take_their_rate_from_the_content_type(
    content_type: str, rate: int
) -> None:
    assert read_audio_body(
        [PCM[:5], PCM[5:]], content_type, default_rate=24_000, provider=TOGETHER
    ) == (PCM, rate)


def test_wav_bodies_take_their_rate_from_the_header() -> None:
    body = wav_header(20, 16_000) + PCM
    assert read_audio_body([body], "audio/wav", default_rate=24_000, provider=TOGETHER) == (
        PCM,
        16_000,
    )


def test_compressed_audio_is_refused_permanently() -> None:
    with pytest.raises(PermanentEngineError, match="audio/mpeg"):
        read_audio_body([b"ID3"], "audio/mpeg", default_rate=24_000, provider=TOGETHER)
