"""What a read-along book highlights, and when: units of text and their clips on the audio.

Both executors feed a :class:`Spoken` chunk by chunk, with the words the
timestamps JSON gets (:func:`ttsbatch.audio.timeline.timed_words`, the same
seconds to the microsecond). A unit is a sentence of the chunk plan (the
splitter's sentences, carried by every :class:`~ttsbatch.models.ChunkSpan`,
so both executors see the same ones) or a word. A chunk without word times
(``timing: none``) counts as one word, and one unit, spanning the chunk: its
sentences are lit together while it plays.

Clips are contiguous (:func:`contiguous`): a unit's clip starts at its first
word's start and runs to the next unit's start, so the pause after a sentence
plays while it stays highlighted. Reading systems jump from clip to clip;
clips that stopped at the last word would skip every pause and make the
narration sound rushed. The last clip ends with its last word.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from ttsbatch.models import ChunkSpan, ReadAlongUnit, TimedChunk, TimedWord

#: Microseconds per second: clip times are kept as integer microseconds, the
#: precision of the timestamps JSON, so that durations add up exactly.
MICROS = 1_000_000


def micros(seconds: float) -> int:
    """Return a time of the timeline (seconds, six decimals) in integer microseconds."""
    return round(seconds * MICROS)


@dataclass(frozen=True, slots=True)
class Clip:
    """A span of text on the audio: characters ``[char_start, char_end)``, ``[begin, end)`` in µs.

    ``target`` is the element it highlights (``text/c001.xhtml#s1``), once placed.
    """

    char_start: int
    char_end: int
    begin: int
    end: int
    target: str = ""


class Spoken:
    """A document's spoken words and its units, collected chunk by chunk in order.

    Memory is a few numbers per word (arrays), not a model per word.
    """

    def __init__(self, unit: ReadAlongUnit) -> None:
        self.unit = unit
        self._chars = array("q")  # each word's first character
        self._begins = array("q")  # its start (µs)
        self._ends = array("q")  # its end (µs)
        self.units: list[tuple[int, int]] = []

    def add(self, chunk: ChunkSpan, timed: TimedChunk, words: Sequence[TimedWord]) -> None:
        """Add the next chunk: its words on the final timeline, and its units."""
        spans = [(w.char_start, w.char_end, w.start, w.end) for w in words]
        if not spans:  # no word times: the chunk is one word
            spans = [(chunk.char_start, chunk.char_end, timed.start, timed.end)]
        for char_start, _end, start, end in spans:
            self._chars.append(char_start)
            self._begins.append(micros(start))
            self._ends.append(micros(end))
        if self.unit == "word" or not words or not chunk.sentences:
            self.units.extend((start, end) for start, end, _, _ in spans)
        else:
            self.units.extend((s.char_start, s.char_end) for s in chunk.sentences)

    def clip(self, char_start: int, char_end: int, target: str = "") -> Clip | None:
        """The clip of the words that start in ``[char_start, char_end)``; ``None``: none does."""
        first = bisect.bisect_left(self._chars, char_start)
        stop = bisect.bisect_left(self._chars, char_end, lo=first)
        if first >= stop:
            return None
        end = max(self._ends[first:stop])
        begin = self._begins[first]
        return Clip(char_start, char_end, begin, max(end, begin), target)


def contiguous(clips: Sequence[Clip]) -> list[Clip]:
    """Each clip stretched to the next one's start (the last keeps its end); empty ones dropped.

    Clips are in reading order; a provider's overlapping word times never make
    one run backwards.
    """
    out: list[Clip] = []
    for number, clip in enumerate(clips):
        end = clips[number + 1].begin if number + 1 < len(clips) else clip.end
        end = max(end, clip.begin)
        if end > clip.begin:
            out.append(Clip(clip.char_start, clip.char_end, clip.begin, end, clip.target))
    return out


def clock(us: int) -> str:
    """Return microseconds as a SMIL full clock value, ``H:MM:SS.ffffff`` (SMIL 3.0, 5.4.2)."""
    seconds, fraction = divmod(us, MICROS)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}.{fraction:06d}"


def by_document(placed: Sequence[Clip], owner: Sequence[int], documents: int) -> list[list[Clip]]:
    """Make ``placed`` contiguous across the whole book, then split it by content document.

    ``owner`` names each clip's document (``0 … documents - 1``), in reading order.
    """
    where = {clip.target: number for clip, number in zip(placed, owner, strict=True)}
    grouped: list[list[Clip]] = [[] for _ in range(documents)]
    for clip in contiguous(placed):
        grouped[where[clip.target]].append(clip)
    return grouped
