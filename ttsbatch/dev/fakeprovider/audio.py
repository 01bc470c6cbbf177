"""Deterministic speech of the imitation provider: audio derived from the text alone.

Each word of the text (:func:`ttsbatch.audio.words.word_spans`, the one definition of a
word) becomes a tone whose period and loudness come from a hash of the word and
whose length is proportional to the word's length, followed by a short silence.
A test can therefore compute, sample for sample, what a correct client must
return for any text, and where every word starts and ends.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from dataclasses import dataclass

from ttsbatch.audio.words import word_spans

# Speech-like pacing: 50 ms of tone per character, 100 ms of silence after a word.
_TONE_PER_CHAR = 20  # sample_rate // 20 samples per character
_GAP = 10  # sample_rate // 10 samples of silence after each word
_SENTENCE_END = re.compile(r"[.!?]")


@dataclass(frozen=True, slots=True)
class SpokenWord:
    """A word of the input and its place in the audio, in samples."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Segment:
    """A sentence of the input: its words and its slice of the audio, in samples."""

    words: tuple[SpokenWord, ...]
    start: int
    end: int


def _tone(word: str, samples: int) -> bytes:
    digest = hashlib.sha256(word.encode()).digest()
    period = 16 + digest[0] % 96
    amplitude = 4000 + (digest[1] << 5)
    cycle = b"".join(
        struct.pack("<h", round(amplitude * math.sin(2 * math.pi * i / period)))
        for i in range(period)
    )
    repeats = samples // period + 1
    return (cycle * repeats)[: 2 * samples]


def expected_audio(
    text: str, sample_rate: int = 24_000
) -> tuple[bytes, list[tuple[str, int, int]]]:
    """Return the audio the imitation provider speaks for ``text``.

    Args:
        text: The request's input.
        sample_rate: Samples per second of the result.

    Returns:
        Mono s16le PCM, and each word of ``text`` with its ``[start, end)``
        sample offsets (the tone; the silence after it belongs to no word).
    """
    pcm, segments = render(text, sample_rate)
    return pcm, [(w.text, w.start, w.end) for seg in segments for w in seg.words]


def render(text: str, sample_rate: int) -> tuple[bytes, list[Segment]]:
    """Return the audio of ``text`` and its sentences, as the provider streams them."""
    out = bytearray()
    segments: list[Segment] = []
    current: list[SpokenWord] = []
    seg_start = 0
    spans = word_spans(text)
    for i, (a, b) in enumerate(spans):
        samples = sample_rate // _TONE_PER_CHAR * (b - a)
        start = len(out) // 2
        out += _tone(text[a:b], samples)
        current.append(SpokenWord(text[a:b], start, start + samples))
        out += bytes(2 * (sample_rate // _GAP))
        following = text[b : spans[i + 1][0]] if i + 1 < len(spans) else "."
        if _SENTENCE_END.search(following):
            segments.append(Segment(tuple(current), seg_start, len(out) // 2))
            current, seg_start = [], len(out) // 2
    return bytes(out), segments
