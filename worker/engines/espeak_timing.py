"""espeak-ng's word events mapped onto the words of the text (pure: no library calls).

``espeakEVENT_WORD`` gives, for each word espeak speaks, a 1-based index in
code points of the text and the word's first sample; :func:`word_timings`
turns them into a timing for every word of :func:`ttsbatch.audio.words.word_spans`,
including the words espeak split or merged.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Final, NamedTuple

from ttsbatch.audio.words import word_spans
from ttsbatch.models import WordTiming

_TRIM_WINDOW: Final = 8192  # samples scanned at a time for trailing silence


class WordEvent(NamedTuple):
    """An ``espeakEVENT_WORD``: where in the text (0-based code point) and audio it starts."""

    char: int
    sample: int


def word_timings(text: str, events: Sequence[WordEvent], pcm: bytes) -> tuple[WordTiming, ...]:
    """Time every word of ``word_spans(text)`` from espeak's word events.

    Each event is anchored on a word: the one containing its position; for a
    position between words (a symbol such as ``$``, ``%`` or an emoji), the
    word it touches on the left, else the next word. Events anchored on the
    same word (espeak reads "3.5" as three words) form one group, which also
    takes the words that got no event of their own ("e.g.", "déjà vu" often
    do): a group spans the words from its anchor to the next group's anchor,
    and runs from its first event's sample to the next group's. A group with
    as many events as words gives each word its own event; otherwise its time
    is split among its words in proportion to their length in characters.
    Trailing digital silence (espeak's pauses are exact zeros) is trimmed from
    the end of each word, so a word before a comma does not hold the pause.
    """
    spans = word_spans(text)
    if not spans:
        return ()
    total = len(pcm) // 2
    ends = [end for _, end in spans]
    groups: list[tuple[int, list[int]]] = []  # (first word, event samples)
    last_sample = 0
    for char, sample in events:
        word = _anchor(spans, ends, char)
        last_sample = min(max(sample, last_sample), total)
        if groups and word <= groups[-1][0]:
            groups[-1][1].append(last_sample)
        else:
            groups.append((word, [last_sample]))
    if not groups:
        groups = [(0, [0])]
    groups[0] = (0, groups[0][1])  # words before the first event join it
    timings: list[WordTiming] = []
    for g, (first, samples) in enumerate(groups):
        following = groups[g + 1] if g + 1 < len(groups) else (len(spans), [total])
        members = spans[first : following[0]]
        if len(members) > 1 and len(samples) == len(members):
            bounds = [*samples, following[1][0]]
            for k, (start, end) in enumerate(members):
                stop = _trim_silence(pcm, bounds[k], bounds[k + 1])
                timings.append(_timing(text, start, end, bounds[k], stop))
            continue
        begin = samples[0]
        stop = _trim_silence(pcm, begin, following[1][0])
        weights = [end - start for start, end in members]
        whole, done = sum(weights), 0
        for (start, end), weight in zip(members, weights, strict=True):
            a = begin + (stop - begin) * done // whole
            done += weight
            b = begin + (stop - begin) * done // whole
            timings.append(_timing(text, start, end, a, b))
    return tuple(timings)


def _anchor(spans: Sequence[tuple[int, int]], ends: Sequence[int], char: int) -> int:
    """Return the index of the word an event at code point ``char`` belongs to."""
    k = bisect_right(ends, char)  # the first word ending after char
    if k < len(spans) and spans[k][0] <= char:
        return k
    if k > 0 and (k == len(spans) or spans[k - 1][1] == char):
        return k - 1
    return k


def _trim_silence(pcm: bytes, start: int, end: int) -> int:
    """Return ``end`` moved back over trailing zero samples, never before ``start``."""
    while end > start:
        low = max(start, end - _TRIM_WINDOW)  # look at a window, not the whole word
        kept = len(pcm[low * 2 : end * 2].rstrip(b"\0"))
        if kept:
            return low + (kept + 1) // 2
        end = low
    return start


def _timing(text: str, char_start: int, char_end: int, start: int, end: int) -> WordTiming:
    return WordTiming(
        text=text[char_start:char_end],
        char_start=char_start,
        char_end=char_end,
        start=start,
        end=end,
    )
