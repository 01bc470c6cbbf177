"""Sentence-level subtitles (SRT and WebVTT) from the timeline.

One cue per sentence; a sentence too long to read in one cue is split between
words into cues of at most two lines. Cue times come from word times; a chunk
without word times gives one cue for the whole chunk.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from ttsbatch.models import ChunkSpan, TimedChunk, TimedWord, Timestamps

MAX_LINE = 42  # characters per subtitle line (BBC and Netflix guidelines)
MAX_LINES = 2


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle: a time range in seconds and its text."""

    start: float
    end: float
    text: str


def chunk_cues(
    chunk: ChunkSpan, timed: TimedChunk, words: Sequence[TimedWord], text: str
) -> list[Cue]:
    """Return the cues of one chunk, in order.

    Args:
        chunk: The chunk (for its sentence spans).
        timed: The chunk on the final timeline.
        words: The chunk's words on the final timeline.
        text: The extracted source text the character offsets index into.
    """
    if not words:  # no word times: the whole chunk is one cue
        return [Cue(timed.start, timed.end, _lines(text[chunk.char_start : chunk.char_end]))]
    word_starts = [w.char_start for w in words]
    cues: list[Cue] = []
    for sentence in chunk.sentences:
        lo = bisect.bisect_left(word_starts, sentence.char_start)
        hi = bisect.bisect_left(word_starts, sentence.char_end)
        groups = _groups(words[lo:hi])
        for n, group in enumerate(groups):
            # The first and last cue take the sentence's quotes and punctuation.
            char_start = sentence.char_start if n == 0 else group[0].char_start
            char_end = sentence.char_end if n == len(groups) - 1 else group[-1].char_end
            cues.append(Cue(group[0].start, group[-1].end, _lines(text[char_start:char_end])))
    return cues


def build_cues(timestamps: Timestamps, chunks: Sequence[ChunkSpan], text: str) -> list[Cue]:
    """Return the cues of a whole document held in memory."""
    word_starts = [w.char_start for w in timestamps.words]
    cues: list[Cue] = []
    for chunk, timed in zip(chunks, timestamps.chunks, strict=True):
        lo = bisect.bisect_left(word_starts, chunk.char_start)
        hi = bisect.bisect_left(word_starts, chunk.char_end)
        cues.extend(chunk_cues(chunk, timed, timestamps.words[lo:hi], text))
    return cues


def _groups(words: Sequence[TimedWord]) -> list[list[TimedWord]]:
    """Split a sentence's words into runs that fit in one cue."""
    groups: list[list[TimedWord]] = []
    for word in words:
        if groups and word.char_end - groups[-1][0].char_start <= MAX_LINE * MAX_LINES:
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups


def _lines(text: str) -> str:
    """Break ``text`` into lines of at most MAX_LINE characters where possible."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > MAX_LINE:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return "\n".join(lines)


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt_block(number: int, cue: Cue) -> str:
    """Render one SubRip cue; blocks are separated by a blank line."""
    return f"{number}\n{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}\n{cue.text}\n"


def vtt_block(cue: Cue) -> str:
    """Render one WebVTT cue."""
    return f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{cue.text}\n"


VTT_HEADER = "WEBVTT\n\n"


def to_srt(cues: Sequence[Cue]) -> str:
    """Render cues as SubRip (.srt)."""
    return "\n".join(srt_block(n, c) for n, c in enumerate(cues, 1))


def to_vtt(cues: Sequence[Cue]) -> str:
    """Render cues as WebVTT (.vtt)."""
    return VTT_HEADER + "\n".join(vtt_block(c) for c in cues)
